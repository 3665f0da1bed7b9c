"""The public data-subject portal: anyone may submit an access, erasure, objection or restriction
request about their own face; a photo of someone else is refused by the data-protection officer.

It never tells the submitter anything about the gallery: no search runs at submission (the request
waits for a data-protection officer, who verifies the requester first), and the answer is the same
for a person in the gallery and a stranger: a reference, the due date and a fixed message. The only
refusals depend on the submission itself (no face in the photo, not an image, bad contact). Rate
limited per client address.

A submitted request reaches the DPO's queue only once its requester returns the one-time code sent
to the contact address they gave (``POST /api/portal/confirm``); the message carrying the code is
written to the outbox that the operator's mailer sends (``LETHE_CONTACT_OUTBOX_DIR``). With that
code and the reference, ``POST /api/portal/status`` tells the requester where the request stands —
a stage and the due date, nothing else — with one answer for an unknown reference and a wrong code.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from lethe.api.routes.login import client_ip
from lethe.http.state import AppState, app_state
from lethe.privacy.requests import KIND_HELP

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


class Status(BaseModel):
    reference: str = Field(description="The reference on the receipt.")
    stage: str = Field(
        description="`waiting_for_confirmation`, `identity_check` (with the data-protection officer), "
        "`in_progress`, `answered`, `refused` or `expired`."
    )
    due_at: str = Field(description="When the answer is due (ISO 8601).")
    answered_on: str | None = Field(description="The day the answer was sent, once `answered`.")
    message: str = Field(description="The stage in plain words.")


def _limit(request: Request, state: State) -> None:
    state.portal_limit.check(f"ip:{client_ip(request)}")


@router.post("/requests", status_code=202, dependencies=[Depends(_limit)])
def submit(
    state: State,
    kind: Annotated[str, Form(description=KIND_HELP)],
    contact: Annotated[str, Form(min_length=1, max_length=320, description="E-mail or postal address.")],
    photos: Annotated[list[UploadFile], File(description="One to five photos of yourself.")],
    language: Annotated[
        str | None, Form(max_length=8, description="The language we write to you in: `en` or `fr`.")
    ] = None,
) -> dict[str, object]:
    """Submit a request (no authentication). Answers `{reference, due_at, message}` only; a code is
    sent to `contact`, and the request waits for it (`POST /api/portal/confirm`)."""
    with state.portal_uploads.submission(photos) as blobs:  # bounded bytes, pixels, slots, budget
        view = state.engine.requests.open(
            kind=kind, photos=blobs, contact=contact, channel="portal", actor="portal", confirm_contact=True,
            language=language,
        )  # fmt: skip
    return {"reference": view.ref, "due_at": view.due_at.isoformat(), "message": MESSAGE}


@router.post("/confirm", dependencies=[Depends(_limit)])
def confirm(body: Confirmation, state: State) -> dict[str, object]:
    """Return the code sent to the contact address: the request goes to a data-protection officer.
    One `422` for an unknown reference, a wrong code or an expired request (five wrong codes expire
    it)."""
    state.engine.requests.confirm_contact(body.reference, body.code)
    return {"confirmed": True, "message": CONFIRMED}


@router.post("/status", dependencies=[Depends(_limit)])
def status(body: Confirmation, state: State) -> Status:
    """Where a request stands, for its requester: the reference on the receipt and the code sent to
    the contact address. Only the stage and the due date, never anything about the gallery. One
    `422` for an unknown reference and a wrong code; wrong codes count as on `/confirm` (after five,
    an unconfirmed request expires and a confirmed one's status is no longer shown here)."""
    return Status.model_validate(state.engine.requests.status(body.reference, body.code))
