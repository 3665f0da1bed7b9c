"""Sources: list (any role) and register with a lawful basis (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from lethe.http.auth import Admin, Reader
from lethe.http.state import AppState, app_state
from lethe.privacy import ART6_BASES, ART9_CONDITIONS, SourceSpec
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


@router.get("")
def list_sources(state: State, _caller: Reader) -> dict[str, object]:
    """Every source with its basis, jurisdiction, retention, status and counts."""
    return {"sources": source_rows(state.engine)}


@router.post("", status_code=201)
def add_source(body: NewSource, state: State, caller: Admin) -> dict[str, object]:
    """Register a source; ingest refuses photos without one."""
    spec = SourceSpec.validated(
        name=body.name,
        lawful_basis=body.basis,
        art9_condition=body.art9,
        purpose=body.purpose,
        jurisdiction=body.jurisdiction,
        retention_days=body.retention_days,
    )
    source = state.engine.add_source(spec, actor=caller.actor)
    return {
        "source": source.name,
        "id": source.id,
        "jurisdiction": source.jurisdiction,
        "status": source.status,
    }
