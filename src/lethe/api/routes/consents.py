"""The consent ledger of ``enrolled_only`` sources: read it (dpo, admin), enrol a consenting person at
the desk (operator, dpo), withdraw a consent (dpo), and the versions of a source's consent text (read
by any reader, a new version by an admin or a dpo). No answer holds a template or a contact address.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from pydantic import BaseModel, Field

from lethe.http.auth import ConsentDesk, Dpo, LedgerKeeper, Reader
from lethe.http.params import RowId
from lethe.http.state import AppState, app_state
from lethe.http.uploads import read_photos
from lethe.views import consent_rows, consent_text

router = APIRouter(tags=["consents"])
State = Annotated[AppState, Depends(app_state)]
SourceName = Annotated[str, Path(min_length=1, max_length=200, description="The source's name.")]


class ConsentText(BaseModel):
    text: str = Field(
        min_length=20,
        max_length=20_000,
        description="The new version of the text a person agrees to; earlier consents keep theirs.",
    )


@router.get("/api/consents")
def list_consents(
    state: State,
    _caller: LedgerKeeper,
    source: Annotated[str | None, Query(max_length=200, description="Only this source's.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many consents.")] = 500,
    offset: Annotated[int, Query(ge=0, description="Skip this many (the ledger is oldest first).")] = 0,
) -> dict[str, object]:
    """The consent ledger, oldest first, a page at a time: per consent its source, text version and
    sha256, channel, age attestation, when and by whom given, withdrawn and the erasure job that ran;
    `total` counts the whole ledger (of the source)."""
    wanted = source or None
    rows = consent_rows(state.engine, source=wanted, limit=limit, offset=offset)
    return {"consents": rows, "total": state.engine.consents.count(wanted), "limit": limit, "offset": offset}


@router.post("/api/sources/{name}/consents", status_code=201)
def enrol(
    name: SourceName,
    state: State,
    caller: ConsentDesk,
    photo: Annotated[UploadFile, File(description="A photo of the consenting person (one face).")],
    contact: Annotated[
        str | None, Form(max_length=320, description="The person's address (stored sealed).")
    ] = None,
    channel: Annotated[
        Literal["desk", "form"], Form(description="`desk` (in person) or `form` (a signed paper form).")
    ] = "desk",
    age_attestation: Annotated[
        Literal["of_age", "parental"],
        Form(
            description="`of_age`: the person attests the age of digital consent of the source's "
            "country; `parental`: a parent or guardian consents for a child."
        ),
    ] = "of_age",
) -> dict[str, object]:
    """Record a person's consent to the text in force, from one photo of them (read in memory: only
    its template is kept, sealed), then find them in the photos the source already holds."""
    (data,) = read_photos([photo], state.settings, most=1)
    view = state.engine.consents.add(
        name, data, actor=caller.actor, contact=contact, channel=channel, age_attestation=age_attestation
    )
    return view.as_dict()


@router.post("/api/consents/{consent_id}/withdraw")
def withdraw(consent_id: RowId, state: State, caller: Dpo) -> dict[str, object]:
    """The person withdrew their consent: the faces it matched are erased (a receipt), its template
    and contact deleted; the ledger keeps the consent and its withdrawal."""
    result = state.engine.consents.withdraw(consent_id, actor=caller.actor)
    receipt = result.pop("receipt")
    summary = None
    if isinstance(receipt, dict):
        summary = {
            "job_id": receipt["job_id"],
            "reason": receipt["reason"],
            "erased_faces": len(receipt["erased_faces"]),
            "erased_images": len(receipt["erased_images"]),
            "crops_deleted": receipt["crops_deleted"],
            "vectors_removed": receipt["vectors_removed"],
            "completed_at": receipt["completed_at"],
        }
    return result | {"receipt": summary}


@router.get("/api/sources/{name}/consent-text")
def get_consent_text(name: SourceName, state: State, _caller: Reader) -> dict[str, object]:
    """The consent text in force (the first read records version 1 from the declaration) and every
    version with its sha256."""
    return consent_text(state.engine, name)


@router.put("/api/sources/{name}/consent-text")
def put_consent_text(
    name: SourceName, body: ConsentText, state: State, caller: LedgerKeeper
) -> dict[str, object]:
    """Record a new version of the consent text; consents given before keep the version they saw."""
    state.engine.consents.set_text(name, body.text, actor=caller.actor)
    return consent_text(state.engine, name)
