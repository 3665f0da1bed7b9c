"""The public data-subject portal: anyone may submit an access, erasure, objection or restriction
request about their own face; a photo of someone else is refused by the data-protection officer.

It never tells the submitter anything about the gallery: no search runs at submission (the request
waits for a data-protection officer, who verifies the requester first), and the answer is the same
for a person in the gallery and a stranger: a reference, the due date and a fixed message. The only
refusals depend on the submission itself (no face in the photo, not an image, bad contact). Rate
limited per client address.

A submitted request reaches the DPO's queue only once its requester returns the one-time code sent
to the contact address they gave (``POST /api/portal/confirm``); the message carrying the code is
written to the outbox that the operator's mailer sends (``LETHE_CONTACT_OUTBOX_DIR``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from lethe.api.routes.login import client_ip
from lethe.http.state import AppState, app_state
from lethe.privacy.requests import KINDS

router = APIRouter(prefix="/api/portal", tags=["portal"])
State = Annotated[AppState, Depends(app_state)]

MESSAGE = (
    "We received your request and sent a confirmation code to the contact address you gave. Your "
    "request goes to a data-protection officer only once you enter that code here. The officer then "
    "checks that you are the person in the photos (a request about someone else is refused) and "
    "answers at that address, at the latest by the due date."
)
CONFIRMED = (
    "Thank you: your contact address is confirmed. A data-protection officer will check your identity "
    "and answer at that address."
)


class Confirmation(BaseModel):
    reference: str = Field(min_length=1, max_length=32, description="The reference on the receipt.")
    code: str = Field(min_length=1, max_length=64, description="The code sent to the contact address.")


def _limit(request: Request, state: State) -> None:
    state.portal_limit.check(f"ip:{client_ip(request)}")


@router.post("/requests", status_code=202, dependencies=[Depends(_limit)])
def submit(
    state: State,
    kind: Annotated[str, Form(description=f"One of: {', '.join(KINDS)}.")],
    contact: Annotated[str, Form(min_length=1, max_length=320, description="E-mail or postal address.")],
    photos: Annotated[list[UploadFile], File(description="One to five photos of yourself.")],
) -> dict[str, object]:
    """Submit a request (no authentication). Answers `{reference, due_at, message}` only; a code is
    sent to `contact`, and the request waits for it (`POST /api/portal/confirm`)."""
    with state.portal_uploads.submission(photos) as blobs:  # bounded bytes, pixels, slots, budget
        view = state.engine.requests.open(
            kind=kind, photos=blobs, contact=contact, channel="portal", actor="portal", confirm_contact=True
        )
    return {"reference": view.ref, "due_at": view.due_at.isoformat(), "message": MESSAGE}


@router.post("/confirm", dependencies=[Depends(_limit)])
def confirm(body: Confirmation, state: State) -> dict[str, object]:
    """Return the code sent to the contact address: the request goes to a data-protection officer.
    One `422` for an unknown reference, a wrong code or an expired request (five wrong codes expire
    it)."""
    state.engine.requests.confirm_contact(body.reference, body.code)
    return {"confirmed": True, "message": CONFIRMED}
