"""Sources: list (any role), register with a lawful basis (admin), edit, suspend, resume and delete
(admin; :mod:`lethe.privacy.sources_lifecycle`), and open or close the guest page of an
``enrolled_only`` source (admin, operator)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from lethe.errors import ConflictError, InputError
from lethe.http.auth import Admin, EventOrganiser, Reader
from lethe.http.state import AppState, app_state
from lethe.privacy import ART6_BASES, ART9_CONDITIONS, SourceSpec
from lethe.privacy.guests import guest_settings
from lethe.privacy.sources import COLLECTIONS, MODES, REFUSED_COLLECTIONS
from lethe.views import source_rows

router = APIRouter(prefix="/api/sources", tags=["sources"])
State = Annotated[AppState, Depends(app_state)]
SourceName = Annotated[str, Path(min_length=1, max_length=200, description="The source's name.")]


class NewSource(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Unique source name.")
    basis: str = Field(description=f"GDPR Art. 6(1) basis: {', '.join(ART6_BASES)}.")
    art9: str = Field(description=f"GDPR Art. 9(2) condition: {', '.join(ART9_CONDITIONS)}.")
    purpose: str = Field(min_length=1, max_length=2000, description="Why these photos are processed.")
    jurisdiction: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code, e.g. FR.")
    retention_days: int = Field(ge=1, description="How long faces may be kept.")
    mode: str | None = Field(
        default=None,
        max_length=20,
        description=f"{' or '.join(MODES)}: `enrolled_only` stores only the faces of people who consented "
        "(the others are compared in memory and discarded); default `enrolled_only` for the consent "
        "basis, `all_faces` otherwise.",
    )
    legal_reference: str | None = Field(
        default=None,
        max_length=2000,
        description="The law a legal-obligation or public-task basis, or a law-based Art. 9(2) "
        "condition, rests on.",
    )
    lia_reference: str | None = Field(
        default=None,
        max_length=2000,
        description="Where the legitimate-interests assessment (Art. 6(1)(f)) is recorded.",
    )
    collection: str = Field(
        default="operator_controlled",
        max_length=40,
        description=f"How the photos were collected (an attestation): {', '.join(COLLECTIONS)}; "
        f"{', '.join(REFUSED_COLLECTIONS)} are refused.",
    )


@router.get("")
def list_sources(state: State, _caller: Reader) -> dict[str, object]:
    """Every source with its declaration (basis, Art. 9 condition, jurisdiction, retention, mode,
    collection, references), its `warnings`, status and counts (photos, faces, `enrolled`: active
    consents, `withdrawn`)."""
    return {"sources": source_rows(state.engine)}


@router.post("", status_code=201)
def add_source(body: NewSource, state: State, caller: Admin) -> dict[str, object]:
    """Register a source; ingest refuses photos without one. The answer's `warnings` name what a
    data-protection officer should look at again in the declaration (with
    `LETHE_STRICT_DECLARATIONS`, a declaration that draws one is refused with 422)."""
    spec = SourceSpec.validated(
        name=body.name,
        lawful_basis=body.basis,
        art9_condition=body.art9,
        purpose=body.purpose,
        jurisdiction=body.jurisdiction,
        retention_days=body.retention_days,
        mode=body.mode,
        legal_reference=body.legal_reference,
        lia_reference=body.lia_reference,
        collection=body.collection,
    )
    source = state.engine.add_source(spec, actor=caller.actor)
    return {
        "source": source.name,
        "id": source.id,
        "jurisdiction": source.jurisdiction,
        "status": source.status,
        "mode": source.mode,
        "collection": source.collection,
        "warnings": spec.warnings(),
    }


class GuestSettings(BaseModel):
    enable: bool = Field(
        description="`true`: open the guest page with a new random event code (the old one, and "
        "every private link made under it, stops working); `false`: close it."
    )
    downloads: bool | None = Field(
        default=None, description="Guests may download the photos they were found in (omitted: as it was)."
    )
    browse: bool | None = Field(
        default=None,
        description="Guests may browse every photo of the event, with no face matching (omitted: as it was).",
    )


@router.post("/{name}/guest")
def guest_page(
    name: SourceName,
    body: GuestSettings,
    state: State,
    caller: EventOrganiser,
) -> dict[str, object]:
    """Open or close the guest page (`/e/<event code>`) of an `enrolled_only` source, where guests
    consent with a selfie and see the photos they are in (`422` for an `all_faces` source). Audited
    as `source.guest`. Answers `{source, event_code, url_path, downloads, browse}`."""
    source = state.engine.guests.configure(
        name, enable=body.enable, downloads=body.downloads, browse=body.browse, actor=caller.actor
    )
    return guest_settings(source)


class SourceEdit(BaseModel):
    """The declaration fields to change; a field left out stays as it is."""

    purpose: str | None = Field(default=None, min_length=1, max_length=2000, description="The new purpose.")
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="The new retention period; the photos already stored follow it at the next retention "
        "sweep.",
    )
    basis: str | None = Field(default=None, description=f"GDPR Art. 6(1) basis: {', '.join(ART6_BASES)}.")
    art9: str | None = Field(
        default=None, description=f"GDPR Art. 9(2) condition: {', '.join(ART9_CONDITIONS)}."
    )
    legal_reference: str | None = Field(
        default=None, max_length=2000, description="The law the basis rests on; an empty text clears it."
    )
    lia_reference: str | None = Field(
        default=None,
        max_length=2000,
        description="Where the legitimate-interests assessment is recorded; an empty text clears it.",
    )
    collection: str | None = Field(
        default=None, max_length=40, description=f"How the photos were collected: {', '.join(COLLECTIONS)}."
    )


@router.patch("/{name}")
def edit_source(name: SourceName, body: SourceEdit, state: State, caller: Admin) -> dict[str, object]:
    """Change a source's purpose, retention or declaration fields (name, jurisdiction and mode
    stay), validated as a new source is (`422`, with the same `warnings`). Audited as `source.edit`
    with the values before and after. Answers `{source, changed, warnings}`, and `retention_note`
    when the retention changed (it applies to stored photos at the next retention sweep)."""
    changes = body.model_dump(exclude_unset=True)
    cleared = [k for k, v in changes.items() if v is None and k not in ("legal_reference", "lia_reference")]
    if cleared:
        raise InputError(f"{', '.join(cleared)} cannot be cleared, only changed")
    return state.engine.source_lifecycle.edit(name, changes, actor=caller.actor)


@router.post("/{name}/suspend")
def suspend_source(name: SourceName, state: State, caller: Admin) -> dict[str, object]:
    """Suspend a source: its faces leave search results at once and ingest into it is refused;
    rights requests (access, erasure, objection) still reach its faces. `409` when it is suspended
    or deleted already. Audited as `source.suspend`. Answers `{source, status, was}`."""
    return state.engine.source_lifecycle.suspend(name, actor=caller.actor)


@router.post("/{name}/resume")
def resume_source(name: SourceName, state: State, caller: Admin) -> dict[str, object]:
    """Undo a suspension: the source is `active` again, or `restricted` while a stop order on its
    country is in force (`orders_in_force` names them). `409` when it is not suspended. Audited as
    `source.resume`."""
    return state.engine.source_lifecycle.resume(name, actor=caller.actor)


class DeleteSource(BaseModel):
    confirm: str = Field(max_length=200, description="The source's name, typed again.")


@router.post("/{name}/delete")
def delete_source(name: SourceName, body: DeleteSource, state: State, caller: Admin) -> dict[str, object]:
    """Delete a source for good: every face, template, crop and photo record of it erased through
    the privacy gate with an erasure receipt, its key shredded, its guest page closed; the source
    stays listed as `deleted`. `422` unless `confirm` is its name; `409` while an ingest job runs
    into it or a verified access request may still need its faces. Audited as `source.delete`,
    `erasure.*` and `source.purge`. Answers `{source, status, erased_faces, erased_photos,
    erasure_job_id, receipt}`."""
    if state.jobs.running_on(name):
        raise ConflictError(f"an ingest job is running into source {name!r}: wait for it or cancel it")
    return state.engine.source_lifecycle.delete(name, confirm=body.confirm, actor=caller.actor)
