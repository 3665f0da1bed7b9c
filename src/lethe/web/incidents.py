"""The incident register's pages (dpo and admin): every incident with its clocks, the overdue ones
marked in red and in words, due times in UTC; one incident with its steps and its notification
drafts. The pages read; changes go through ``lethe incident ...`` or the JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from lethe.errors import NotFoundError
from lethe.http.params import RowId
from lethe.privacy import incident_drafts
from lethe.web.common import IncidentPage, PageNotFound, State, render

router = APIRouter(include_in_schema=False)


@router.get("/incidents", response_class=HTMLResponse)
def incident_register(
    request: Request,
    state: State,
    viewer: IncidentPage,
    show: Annotated[str, Query(pattern="^(open|all)$")] = "open",
) -> HTMLResponse:
    """The register, newest awareness first, with each clock as it stands now."""
    incidents = state.engine.incidents
    now = incidents.clock()
    listed = [i.as_dict(now) for i in incidents.list(open_only=show == "open")]
    return render(request, "incidents.html", viewer, incidents=listed, show=show, now=now, title="Incidents")


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_detail(request: Request, incident_id: RowId, state: State, viewer: IncidentPage) -> HTMLResponse:
    """One incident: its clocks, sources, steps and the notification drafts."""
    incidents = state.engine.incidents
    now = incidents.clock()
    try:
        incident = incidents.get(incident_id)
    except NotFoundError:
        raise PageNotFound(viewer, f"There is no incident number {incident_id}.") from None
    made = incident_drafts.drafts(state.engine.store, incident, now=now)
    return render(
        request,
        "incident.html",
        viewer,
        i=incident.as_dict(now),
        drafts=made["drafts"],
        facts=made["facts"],
        now=now,
        title=f"Incident {incident_id}",
    )
