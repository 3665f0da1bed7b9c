"""Health, metrics, who am I, and the dashboard's figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from lethe.http.auth import Authenticated, MetricsReader, Reader
from lethe.http.metrics import CONTENT_TYPE
from lethe.http.state import AppState, app_state
from lethe.views import dashboard_stats

router = APIRouter()
State = Annotated[AppState, Depends(app_state)]


@router.get("/api/health", tags=["service"])
def health() -> dict[str, object]:
    """Liveness, no authentication: `{"status": "ok"}` and nothing else. No count: a public figure
    that drops when an erasure runs would tell a stranger whether a person was in the gallery. The
    counts are in `/metrics` (admin, monitor) and `/api/stats` (readers)."""
    return {"status": "ok"}


@router.get("/metrics", tags=["service"], response_class=PlainTextResponse)
def metrics(state: State, _caller: MetricsReader) -> PlainTextResponse:
    """Prometheus text format (roles admin or monitor)."""
    return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/api/me", tags=["service"])
def me(caller: Authenticated) -> dict[str, object]:
    """The calling user, its roles and how it authenticated."""
    return caller.user.as_dict() | {"via": caller.via}


@router.get("/api/stats", tags=["service"])
def stats(state: State, _caller: Reader) -> dict[str, object]:
    """Figures for a dashboard: gallery size, searches today, open requests and the next due date."""
    return dashboard_stats(state.engine)
