"""The breach and serious-incident register (:mod:`lethe.privacy.incidents`), for the dpo and admin
roles: open an incident, read it with its clocks (computed at the service's time), record actions,
notifications and decisions not to notify, close it, and read its notification drafts
(:mod:`lethe.privacy.incident_drafts`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from lethe.http.auth import Principal, require
from lethe.http.params import RowId
from lethe.http.state import AppState, app_state
from lethe.privacy import incident_drafts
from lethe.privacy.incident_clocks import AI_CATEGORIES, Incident
from lethe.privacy.incidents import MAX_REFERENCE, MAX_TEXT, MIN_DESCRIPTION, MIN_TEXT

router = APIRouter(prefix="/api/incidents", tags=["incidents"])
State = Annotated[AppState, Depends(app_state)]
Responder = Annotated[Principal, require("admin", "dpo")]

Recipient = Literal["supervisory_authority", "market_surveillance_authority", "provider", "data_subjects"]


class IncidentOpen(BaseModel):
    description: str = Field(
        min_length=MIN_DESCRIPTION, max_length=MAX_TEXT, description="What happened (audited, erasable)."
    )
    aware_at: datetime = Field(description="When the controller became aware: every clock runs from here.")
    personal_data_breach: bool = Field(default=True, description="A personal-data breach (GDPR Arts. 33-34).")
    ai_category: str | None = Field(
        default=None,
        description=f"A serious incident (AI Act Art. 73) of this category: {', '.join(AI_CATEGORIES)}.",
    )
    detected_at: datetime | None = Field(default=None, description="When it was detected (default aware_at).")
    occurred_at: datetime | None = None
    sources: list[str] = Field(default_factory=list, max_length=1000, description="Sources it concerns.")
    window_start: datetime | None = None
    window_end: datetime | None = Field(
        default=None, description="End of the time it concerns (default now)."
    )


class IncidentAction(BaseModel):
    action: str = Field(min_length=MIN_TEXT, max_length=MAX_TEXT, description="An action taken.")


class IncidentNotification(BaseModel):
    recipient: Recipient
    at: datetime | None = Field(default=None, description="When it was notified (default now).")
    reference: str | None = Field(default=None, max_length=MAX_REFERENCE)
    note: str | None = Field(default=None, max_length=MAX_TEXT, description="e.g. the reasons for a delay.")


class IncidentDecision(BaseModel):
    recipient: Literal["supervisory_authority", "data_subjects"]
    ground: str = Field(description="`not_required` (authority); `no_high_risk`, `art34_3_a|b|c` (subjects).")
    reason: str = Field(min_length=MIN_DESCRIPTION, max_length=MAX_TEXT)


class IncidentClose(BaseModel):
    note: str | None = Field(default=None, max_length=MAX_TEXT)


def _answer(state: AppState, incident: Incident) -> dict[str, object]:
    return incident.as_dict(state.engine.incidents.clock())


@router.get("")
def incident_list(
    state: State,
    _caller: Responder,
    open_only: Annotated[bool, Query(alias="open", description="Only incidents not closed.")] = False,
) -> dict[str, object]:
    """Incidents, newest awareness first, each with its clocks now (`overdue` marks a clock past due)."""
    now = state.engine.incidents.clock()
    listed = state.engine.incidents.list(open_only=open_only)
    return {
        "incidents": [i.as_dict(now) for i in listed],
        "overdue": [i.id for i in listed if i.overdue(now)],
    }


@router.post("", status_code=201)
def incident_open(state: State, caller: Responder, body: IncidentOpen) -> dict[str, object]:
    """Register an incident (audited `incident.open`); `404` for an unknown source, `422` for an
    awareness in the future or times out of order: nothing is recorded then."""
    incident = state.engine.incidents.open(actor=caller.actor, **body.model_dump())
    return _answer(state, incident)


@router.get("/{incident_id}")
def incident_get(incident_id: RowId, state: State, _caller: Responder) -> dict[str, object]:
    """One incident with its sources, clocks and steps."""
    return _answer(state, state.engine.incidents.get(incident_id))


@router.post("/{incident_id}/actions")
def incident_act(
    incident_id: RowId, state: State, caller: Responder, body: IncidentAction
) -> dict[str, object]:
    """Record an action taken (audited `incident.action`)."""
    return _answer(state, state.engine.incidents.act(incident_id, actor=caller.actor, action=body.action))


@router.post("/{incident_id}/notifications")
def incident_notify(
    incident_id: RowId, state: State, caller: Responder, body: IncidentNotification
) -> dict[str, object]:
    """Record a notification made, with the sha256 of the current draft for that recipient (audited
    `incident.notify`)."""
    incident = incident_drafts.notify(
        state.engine.incidents, incident_id, actor=caller.actor, **body.model_dump()
    )
    return _answer(state, incident)


@router.post("/{incident_id}/decisions")
def incident_decide(
    incident_id: RowId, state: State, caller: Responder, body: IncidentDecision
) -> dict[str, object]:
    """Record a decision not to notify, on a legal ground and with its reason (audited
    `incident.decide`)."""
    incident = state.engine.incidents.decide(
        incident_id, actor=caller.actor, recipient=body.recipient, ground=body.ground, reason=body.reason
    )
    return _answer(state, incident)


@router.post("/{incident_id}/close")
def incident_close(
    incident_id: RowId, state: State, caller: Responder, body: IncidentClose | None = None
) -> dict[str, object]:
    """Close an incident (audited `incident.close`); `409` while a notification is neither recorded
    nor decided against."""
    note = body.note if body else None
    return _answer(state, state.engine.incidents.close(incident_id, actor=caller.actor, note=note))


@router.get("/{incident_id}/drafts")
def incident_drafts_get(incident_id: RowId, state: State, _caller: Responder) -> dict[str, object]:
    """The notification drafts (GDPR Art. 33(3), Art. 34(2), AI Act Art. 73), prefilled from the
    catalog and the audit log, each with its sha256, the audit chain's head and the fields a person
    must complete; the facts they were made from."""
    now = state.engine.incidents.clock()
    return incident_drafts.drafts(state.engine.store, state.engine.incidents.get(incident_id), now=now)
