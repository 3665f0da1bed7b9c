"""Search by photo (operator; purpose required, audited with the user) and face crops."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from lethe.http.auth import CropViewer, Operator
from lethe.http.errors import ApiError
from lethe.http.params import ROW_ID_MAX, RowId
from lethe.http.state import AppState, app_state
from lethe.http.uploads import read_upload
from lethe.privacy.searches import MIN_PURPOSE

router = APIRouter(prefix="/api", tags=["search"])
State = Annotated[AppState, Depends(app_state)]


@router.post("/search")
def search(
    state: State,
    caller: Operator,
    probe: Annotated[UploadFile, File(description="A photo of the person to look for.")],
    purpose: Annotated[
        str,
        Form(
            min_length=MIN_PURPOSE,
            max_length=500,
            description=f"Why you search (at least {MIN_PURPOSE} characters); recorded in the audit log.",
        ),
    ],
    top: Annotated[int, Form(ge=1, le=200, description="At most this many matches.")] = 10,
    threshold: Annotated[
        float | None,
        Form(
            ge=-1.0,
            le=1.0,
            description="Similarity for a match (default: calibrated); never below the calibrated "
            "match threshold (409 otherwise).",
        ),
    ] = None,
    face: Annotated[int | None, Form(ge=0, description="Which probe face to use (0 = largest).")] = None,
    use: Annotated[
        int | None,
        Form(
            ge=1,
            le=ROW_ID_MAX,
            description="The use (case) this search belongs to (`POST /api/uses`); default: your "
            "current use, or a new one opened with this purpose. Another's or a closed use: 409.",
        ),
    ] = None,
) -> dict[str, object]:
    """Find the photos of the person in the probe, best first; only matches at or above the
    threshold. Every search is audited: who, the stated purpose, the probe's hash, what it found."""
    state.search_limit.check(f"user:{caller.id}")
    data = read_upload(probe, state.settings, what="probe")
    result = state.engine.search.on_request(
        data,
        purpose=purpose,
        actor=caller.actor,
        top_k=top,
        threshold=threshold,
        face=face,
        use=use,
        token_sha256=caller.token_sha256,  # a token bound to a recipient: a disclosure
    )
    state.metrics.count_search()
    payload = result.as_dict()
    payload["matches"] = [
        {k: v for k, v in m.as_dict().items() if k != "crop"}
        | {
            "crop_url": state.crop_links.url(m.face_id, caller.id),
            "photo_url": None
            if m.image.startswith("upload:")  # an upload's photo is not kept
            else state.crop_links.photo_url(m.face_id, caller.id, int(result.audit_seq or 0)),
            "candidate_url": f"/api/searches/{result.audit_seq}/candidates/{m.face_id}",
            "candidate_page": f"/searches/{result.audit_seq}/candidates/{m.face_id}",
            "likelihood": state.engine.search.likelihood(m.score).as_dict(),
        }
        for m in result.matches
    ]
    return payload


@router.get(
    "/faces/{face_id}/photo",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The photo, its face boxed (JPEG)."}},
)
def face_photo(
    face_id: RowId,
    state: State,
    caller: Operator,
    t: Annotated[str, Query(max_length=500, description="The signature from a photo_url.")] = "",
) -> Response:
    """The photo a search matched, read again from the path it was ingested from, with the face's
    box drawn, as a JPEG without the original's metadata. Only through a `photo_url` given to the
    same user by a search, for an hour; refused once the face's source is restricted; `404` when
    the face was erased, the photo was uploaded (not kept) or the file changed or moved; `409` until
    two verifiers confirmed the candidate (`/api/searches/{seq}/candidates/{face_id}`). Every view
    is audited (`photo.view`)."""
    search_seq = state.crop_links.photo_search(t, face_id, caller.id)
    if search_seq is None:
        raise ApiError(
            403,
            "forbidden",
            "photo links are only valid for the user whose search showed the face, for an hour",
        )
    if not _source_active(state, face_id):
        raise ApiError(403, "forbidden", "this face's source is restricted: search no longer shows it")
    jpeg = state.engine.matched_photo(face_id, actor=caller.actor, search=search_seq)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.get(
    "/faces/{face_id}/crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The face crop (JPEG)."}},
)
def face_crop(
    face_id: RowId,
    state: State,
    caller: CropViewer,
    t: Annotated[str, Query(max_length=500, description="The signature from a crop_url.")] = "",
) -> Response:
    """A face's crop, decrypted (operator or dpo). Only through a `crop_url` given to the same user by
    a search or a review screen, for an hour: crops cannot be browsed by face id. A search's link
    stops working as soon as the face's source is restricted (a stop order)."""
    kind = state.crop_links.kind(t, face_id, caller.id)
    if kind is None:
        raise ApiError(
            403, "forbidden", "crop links are only valid for the user who was shown the face, for an hour"
        )
    if kind == "search" and not _source_active(state, face_id):
        raise ApiError(403, "forbidden", "this face's source is restricted: search no longer shows it")
    jpeg = state.engine.crop_jpeg(face_id)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


def _source_active(state: AppState, face_id: int) -> bool:
    """Whether the face's source is active now (read when the link is served, not when it was made)."""
    catalog = state.engine.catalog
    source_id = catalog.face_source_ids([face_id]).get(face_id)
    if source_id is None:
        return True  # no such face: crop_jpeg answers 404 as before
    return any(s.id == source_id and s.status == "active" for s in catalog.sources())
