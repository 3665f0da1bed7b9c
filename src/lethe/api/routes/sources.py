"""Sources: list (any role), register with a lawful basis (admin), and open or close the guest page
of an ``enrolled_only`` source (admin, operator)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from lethe.http.auth import Admin, EventOrganiser, Reader
from lethe.http.state import AppState, app_state
from lethe.privacy import ART6_BASES, ART9_CONDITIONS, SourceSpec
from lethe.privacy.guests import guest_settings
from lethe.privacy.sources import COLLECTIONS, MODES, REFUSED_COLLECTIONS
from lethe.views import source_rows

router = APIRouter(prefix="/api/sources", tags=["sources"])
State = Annotated[AppState, Depends(app_state)]


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
    name: Annotated[str, Path(min_length=1, max_length=200, description="The source's name.")],
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
