"""Data-subject requests (dpo): open, list, verify, extend, reject, preview, run, review, answer,
export (and delete it)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from lethe.api.downloads import zip_download
from lethe.errors import NotFoundError
from lethe.http.auth import Dpo, Principal
from lethe.http.params import Position, RowId
from lethe.http.state import AppState, app_state
from lethe.http.uploads import MAX_REQUEST_PHOTOS, MEDIA_TYPES, image_type, read_photos
from lethe.privacy.requests import KIND_HELP, MAX_PAGE_SIZE, METHODS, PAGE_SIZE
from lethe.views import CropUrl, candidate_row, candidate_rows, request_detail, request_page

router = APIRouter(prefix="/api/requests", tags=["requests"])
State = Annotated[AppState, Depends(app_state)]


class Verification(BaseModel):
    method: Literal["id_document", "signed_letter", "account_holder", "in_person"] = Field(
        description="How the identity was checked: " + "; ".join(f"`{k}`: {v}" for k, v in METHODS.items())
    )
    attest: bool = Field(
        description="The verifier attests that the person checked is the person in the request's photos "
        "(must be true)."
    )
    note: str | None = Field(
        default=None, max_length=2000, description="Details of the check (kept off the audit chain)."
    )


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class MessageOrder(BaseModel):
    kind: Literal["extension", "refusal"] = Field(
        description="`extension`: the deadline extended, within the first month, by `months` (Art. "
        "12(3)); `refusal`: the request refused, with the complaint route (Art. 12(4))."
    )
    reason: str = Field(min_length=1, max_length=2000, description="Why; the requester reads it.")
    months: int = Field(default=2, ge=1, le=2, description="With `extension`: one or two more months.")


class Run(BaseModel):
    auto: bool = Field(default=False, description="Act on the automatic band only.")


class Decision(BaseModel):
    confirm: bool = Field(description="Is this face the requester's?")


def _crop_url(state: AppState, caller: Principal) -> CropUrl:
    """Crop links signed for the caller (valid for an hour)."""
    # Review links: an access request covers faces of restricted sources too (finding 18).
    return lambda face_id: state.crop_links.url(face_id, caller.id, review=True)


@router.post("", status_code=201)
def open_request(
    state: State,
    caller: Dpo,
    kind: Annotated[str, Form(description=KIND_HELP)],
    contact: Annotated[str, Form(min_length=1, max_length=320, description="Where the answer goes.")],
    photos: Annotated[list[UploadFile], File(description="Photos of the requester.")],
    channel: Annotated[str, Form(max_length=40, description="How the request arrived.")] = "api",
    language: Annotated[
        str | None,
        Form(
            max_length=8,
            description="The language the requester is written to in: `en` or `fr` "
            "(default `LETHE_DEFAULT_LANGUAGE`).",
        ),
    ] = None,
) -> dict[str, object]:
    """Record a request received by mail, e-mail or at the desk; the answer is due in one month.
    The requester is sent (or, with `LETHE_MAIL_CHANNEL=none`, drafted) an acknowledgement and what
    proof of identity is needed (`GET /api/requests/{id}/messages`)."""
    blobs = read_photos(photos, state.settings, most=MAX_REQUEST_PHOTOS)
    view = state.engine.requests.open(
        kind=kind, photos=blobs, contact=contact, channel=channel, actor=caller.actor, language=language
    )
    return view.as_dict()


@router.get("")
def list_requests(
    state: State,
    _caller: Dpo,
    request_state: Annotated[str | None, Query(alias="state", max_length=20)] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Requests per page.")] = PAGE_SIZE,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
) -> dict[str, object]:
    """One page of requests by due date, each with its `overdue` flag; `total` matched and
    `next_page` (null on the last page). Portal requests whose contact address is not confirmed
    are listed only with `state=unconfirmed`."""
    return request_page(state.engine, state=request_state, open_only=open_only, limit=limit, page=page)


@router.get("/{request_id}")
def get_request(request_id: RowId, state: State, _caller: Dpo) -> dict[str, object]:
    """One request: state, dates, candidate counts, history, the contact address to answer, whether
    it can be answered now (`answer_readiness`: `ready`, the `reason` when not, `may_arrive` while
    candidates may still arrive), what its runs acted on per photo (`acted_on`), and once it is
    closed the answer to send to the requester (`answer_draft`)."""
    return request_detail(state.engine, request_id, ingest_running=state.jobs.running())


@router.post("/{request_id}/verify")
def verify(request_id: RowId, body: Verification, state: State, caller: Dpo) -> dict[str, object]:
    """Record a check of the requester's identity (method, attestation, note). An erasure,
    objection or restriction is `verified` after one check; an access request after an
    `id_document` check or checks by two different people. `409` before a portal requester has
    confirmed the contact address, or when the same person checks twice."""
    requests = state.engine.requests
    return requests.verify(
        request_id, actor=caller.actor, method=body.method, attested=body.attest, note=body.note
    ).as_dict()


@router.post("/{request_id}/signoff")
def signoff(request_id: RowId, state: State, caller: Dpo) -> dict[str, object]:
    """Sign off an erasure request's run as a second data-protection officer (needed only with
    `LETHE_ERASURE_SECOND_SIGNOFF` on: then the run is refused, `409`, until a DPO other than the
    one running it signed off). Audited `request.signoff`; once per person (`409`)."""
    return state.engine.requests.signoffs.sign(request_id, actor=caller.actor)


@router.post("/{request_id}/extend")
def extend(request_id: RowId, body: Reason, state: State, caller: Dpo) -> dict[str, object]:
    """Extend the deadline to three months after receipt, with a stated reason (Art. 12(3))."""
    return state.engine.requests.extend(request_id, reason=body.reason, actor=caller.actor).as_dict()


@router.post("/{request_id}/messages", status_code=201)
def write_message(request_id: RowId, body: MessageOrder, state: State, caller: Dpo) -> dict[str, object]:
    """Write to the requester by hand: an `extension` (the deadline extended; `409` after the first
    month or when already extended) or a `refusal` (the request refused and closed). The message is
    recorded, audited (`communication.drafted`, then `communication.sent` when the mail channel
    sent it) and returned; its contact address never is."""
    message = state.engine.requests.message(
        request_id, kind=body.kind, reason=body.reason, actor=caller.actor, months=body.months
    )
    return message.as_dict()


@router.get("/{request_id}/messages")
def list_messages(request_id: RowId, state: State, _caller: Dpo) -> dict[str, object]:
    """The messages written to the requester, oldest first: kind, language, channel, `state`
    (`draft`: to send by hand; `pending`, `failed`: to be sent, retried; `sent`), attempts, error,
    subject, body and the body's SHA-256."""
    return {"messages": [m.as_dict() for m in state.engine.requests.messages(request_id)]}


@router.post("/{request_id}/reject")
def reject(request_id: RowId, body: Reason, state: State, caller: Dpo) -> dict[str, object]:
    """Refuse the request (the requester's photos are deleted)."""
    return state.engine.requests.reject(request_id, reason=body.reason, actor=caller.actor).as_dict()


@router.get("/{request_id}/preview")
def preview(
    request_id: RowId,
    state: State,
    caller: Dpo,
    auto: Annotated[bool, Query(description="The automatic band only (what `run` with `auto` does).")] = True,
) -> dict[str, object]:
    """What `run` would act on now, changing nothing: the faces grouped by photo (`by_photo`: each
    photo's name, source and source page, and its faces with score and crop link), the counts
    (`faces`, `photos`) and how many candidates would wait for review. A search for the requester:
    audited as `request.preview`; `409` unless the request is verified."""
    found = state.engine.requests.preview(request_id, actor=caller.actor, auto_only=auto)
    crop_url = _crop_url(state, caller)
    for photo in found["by_photo"]:
        for face in photo["faces"]:
            face["crop_url"] = crop_url(face["face_id"])
    return found


@router.post("/{request_id}/run")
def run(request_id: RowId, state: State, caller: Dpo, body: Run | None = None) -> dict[str, object]:
    """Find the person and act (erase / export / suppress); review candidates wait for a reviewer.
    With `auto` only the automatic band is acted on. `409` unless the request is verified."""
    auto = body.auto if body else False
    return state.engine.requests.run(request_id, actor=caller.actor, auto_only=auto)


@router.post("/{request_id}/answer")
def answer(request_id: RowId, state: State, caller: Dpo) -> dict[str, object]:
    """Act on the automatic and confirmed faces and close the request; the answer holds the request's
    `state` and a `message` built from it. `409`, with nothing changed, unless the request was run,
    no search of it nor ingest job is running, and every candidate is decided (the message names the
    missing step); also when the answer's own search finds new candidates (kept for review)."""
    return state.engine.requests.answer(request_id, actor=caller.actor, ingest_running=state.jobs.running())


@router.get("/{request_id}/candidates")
def candidates(
    request_id: RowId, state: State, caller: Dpo, pending: Annotated[bool, Query()] = False
) -> dict[str, object]:
    """The faces found for the request, best first, with band, decision and a crop link. The same face
    of the same photo in several sources is one entry: its `members` (face ids and sources) and
    `also_in` (the other members' sources)."""
    rows = candidate_rows(state.engine, request_id, crop_url=_crop_url(state, caller), pending_only=pending)
    return {"candidates": rows}


@router.post("/{request_id}/candidates/{face_id}")
def decide(request_id: RowId, face_id: RowId, body: Decision, state: State, caller: Dpo) -> dict[str, object]:
    """A reviewer confirms or rejects one candidate face: the decision applies to every member of its
    entry (the same photo in other sources), audited once with all their face ids."""
    view = state.engine.requests.decide(request_id, face_id, confirm=body.confirm, actor=caller.actor)
    return candidate_row(view, _crop_url(state, caller))


@router.get(
    "/{request_id}/photos/{number}",
    response_class=Response,
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": "The photo."}},
)
def photo(request_id: RowId, number: Position, state: State, _caller: Dpo) -> Response:
    """The requester's photo number `number` (0-based), while the request is open (for review)."""
    data = _probe_photo(state, request_id, number)
    return Response(
        data, media_type=image_type(data, state.settings), headers={"Cache-Control": "private, no-store"}
    )


@router.get(
    "/{request_id}/photos/{number}/face",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The face crop (JPEG)."}},
)
def photo_face(request_id: RowId, number: Position, state: State, _caller: Dpo) -> Response:
    """The largest face of the requester's photo `number`, cropped and aligned like the gallery's
    crops (JPEG), while the request is open: the review screen compares like with like."""
    return Response(
        state.engine.requests.probe_face_crop(request_id, number),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-store"},
    )


def _probe_photo(state: AppState, request_id: int, number: int) -> bytes:
    requests = state.engine.requests
    requests.get(request_id)
    photos = requests.probe_photos(request_id)
    if not 0 <= number < len(photos):
        raise NotFoundError(f"request {request_id} holds {len(photos)} photo(s) (closed requests hold none)")
    return photos[number]


@router.get(
    "/{request_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The access export."}},
)
def export(request_id: RowId, state: State, _caller: Dpo) -> Response:
    """The access export (JSON, HTML page and crops) as a zip, once the access request was run."""
    path = state.engine.requests.export_path(request_id)
    return zip_download(path, name=path.name, filename=f"{path.name}.zip")


@router.delete("/{request_id}/export")
def delete_export(request_id: RowId, state: State, caller: Dpo) -> dict[str, object]:
    """Delete the access export once it is delivered: its files are unlinked and its folder removed
    (audited as `request.export.delete`). `404` when the request has no export."""
    return state.engine.requests.delete_export(request_id, actor=caller.actor)
