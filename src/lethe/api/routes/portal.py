"""The public data-subject portal: anyone may submit an access, erasure or objection request.

It never tells the submitter anything about the gallery: no search runs at submission (the request
waits for a data-protection officer, who verifies the requester first), and the answer is the same
for a person in the gallery and a stranger: a reference, the due date and a fixed message. The only
refusals depend on the submission itself (no face in the photo, not an image, bad contact). Rate
limited per client address.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from lethe.api.routes.login import client_ip
from lethe.http.state import AppState, app_state
from lethe.http.uploads import MAX_PORTAL_PHOTOS, read_photos
from lethe.privacy.requests import KINDS

router = APIRouter(prefix="/api/portal", tags=["portal"])
State = Annotated[AppState, Depends(app_state)]

MESSAGE = (
    "We received your request. A data-protection officer will verify your identity and answer at the "
    "contact address you gave, at the latest by the due date. Keep your reference to ask about it."
)


def _limit(request: Request, state: State) -> None:
    state.portal_limit.check(f"ip:{client_ip(request)}")


@router.post("/requests", status_code=202, dependencies=[Depends(_limit)])
def submit(
    state: State,
    kind: Annotated[str, Form(description=f"One of: {', '.join(KINDS)}.")],
    contact: Annotated[str, Form(min_length=1, max_length=320, description="E-mail or postal address.")],
    photos: Annotated[list[UploadFile], File(description="One to five photos of yourself.")],
) -> dict[str, object]:
    """Submit a request (no authentication). Answers `{reference, due_at, message}` only."""
    blobs = read_photos(photos, state.settings, most=MAX_PORTAL_PHOTOS)
    view = state.engine.requests.open(
        kind=kind, photos=blobs, contact=contact, channel="portal", actor="portal"
    )
    return {"reference": view.ref, "due_at": view.due_at.isoformat(), "message": MESSAGE}
