"""Public transparency notices (no login; GDPR Arts. 13 and 14, AI Act Art. 26(11)): each source's,
generated from its declaration. No count of any kind, no face."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from lethe.http.state import AppState, app_state
from lethe.views import notice_index, source_notice

router = APIRouter(prefix="/api/notices", tags=["notices"])
State = Annotated[AppState, Depends(app_state)]


@router.get("")
def list_notices(state: State) -> dict[str, object]:
    """Every source's name and purpose, with the address of its notice page."""
    return {"notices": notice_index(state.engine)}


@router.get("/{name}")
def notice(
    name: Annotated[str, Path(min_length=1, max_length=200, description="The source's name.")], state: State
) -> dict[str, object]:
    """A source's notice: purpose, lawful basis and Art. 9(2) condition (codes and plain words), legal
    reference, where the photos come from, the indexing mode in plain words, retention, the rights
    and how to use them, the data-protection officer's contact, and the supervisory authority."""
    return source_notice(state.engine, name)
