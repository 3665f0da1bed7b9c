"""Misuse alerts and the monitoring report (:mod:`lethe.privacy.monitoring`,
:mod:`lethe.privacy.monitoring_report`), for the dpo and admin roles."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from lethe.http.auth import Principal, require
from lethe.http.params import RowId
from lethe.http.state import AppState, app_state

router = APIRouter(prefix="/api/monitoring", tags=["oversight"])
State = Annotated[AppState, Depends(app_state)]
Overseer = Annotated[Principal, require("admin", "dpo")]


@router.get("/alerts")
def alert_list(
    state: State,
    _caller: Overseer,
    show_all: Annotated[bool, Query(alias="all", description="Acknowledged alerts too.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, object]:
    """Misuse alerts, newest first: open ones unless `all`. Each: `seq`, `at`, `kind` (`volume`,
    `repeated_probe`, `off_hours`, `open_uses`), `details`, `open`, `acknowledged_at`, `acknowledged_by`."""
    alerts = state.engine.monitoring.alerts(open_only=not show_all, limit=limit)
    return {"alerts": [a.as_dict() for a in alerts]}


@router.post("/alerts/{seq}/ack")
def alert_ack(seq: RowId, state: State, caller: Overseer) -> dict[str, object]:
    """Acknowledge alert `seq` (audited as `alert.ack`); again changes nothing. `404` for a seq that
    is not an alert."""
    return state.engine.monitoring.acknowledge(seq, actor=caller.actor).as_dict()


@router.post("/scan")
def alert_scan(state: State, caller: Overseer) -> dict[str, object]:
    """Evaluate the misuse rules now (the service's maintenance pass does it too); the new alerts."""
    raised = state.engine.monitoring.scan_for_misuse(actor=caller.actor)
    return {"raised": len(raised), "alerts": [a.as_dict() for a in raised]}


@router.get("/report")
def monitoring_report(
    state: State,
    caller: Overseer,
    since: Annotated[date | None, Query(description="From this day (UTC); default every entry held.")] = None,
) -> dict[str, object]:
    """The monitoring report (EU AI Act Art. 72): aggregated JSON with no personal data (no probe
    hash, face, request id or account name). Audited as `report.monitoring`."""
    start = datetime.combine(since, time.min, tzinfo=UTC) if since else None
    return state.engine.monitoring_report(actor=caller.actor, since=start)
