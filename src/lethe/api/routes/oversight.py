"""Oversight: the data-protection officer's audit log, compliance pack and objections (dpo), and the
administrator's global stop of identification (:mod:`lethe.privacy.oversight`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from lethe.api.downloads import zip_download
from lethe.http.auth import Admin, Dpo, Reader
from lethe.http.params import BeforeSeq, RowId
from lethe.http.state import AppState, app_state
from lethe.storage import private_dir
from lethe.views import audit_rows, audit_verification

router = APIRouter(prefix="/api", tags=["oversight"])
State = Annotated[AppState, Depends(app_state)]


@router.get("/audit")
def audit_list(
    state: State,
    _caller: Dpo,
    action: Annotated[str | None, Query(max_length=60, description="Only this action, e.g. search.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: BeforeSeq = None,
) -> dict[str, object]:
    """Audit entries, newest first; page back with `before` = the last `seq` seen."""
    return {"entries": audit_rows(state.engine, action=action, limit=limit, before=before)}


@router.get("/audit/verify")
def audit_verify(state: State, _caller: Dpo) -> dict[str, object]:
    """Recompute the hash chain: `ok`, entries, head, and the first break if any."""
    return audit_verification(state.engine)


@router.get(
    "/reports/compliance",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The compliance pack."}},
)
def report_compliance(state: State, caller: Dpo) -> Response:
    """The evidence pack for a regulator as a zip (built in a private temporary folder of the data
    folder, deleted once zipped)."""
    scratch = Path(tempfile.mkdtemp(prefix="report-", dir=private_dir(state.settings.data_dir / "tmp")))
    try:
        pack = scratch / "compliance-pack"
        state.engine.compliance_pack(pack, actor=caller.actor)
        return zip_download(pack, name="compliance-pack", filename="lethe-compliance-pack.zip")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@router.get("/objections")
def objection_list(state: State, _caller: Dpo) -> dict[str, object]:
    """Objections, active and withdrawn (no templates)."""
    return {"objections": state.engine.objections.list_active()}


@router.post("/objections/{objection_id}/withdraw")
def objection_withdraw(objection_id: RowId, state: State, caller: Dpo) -> dict[str, object]:
    """The person withdrew the objection: its templates are deleted."""
    state.engine.objections.withdraw(objection_id, actor=caller.actor)
    return {"withdrawn": objection_id}


class StopReason(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, description="Why (audited, off the chain).")


@router.get("/oversight")
def oversight_state(state: State, _caller: Reader) -> dict[str, object]:
    """Whether identification is stopped (human oversight's global stop), since when, by whom."""
    return state.engine.oversight.state().as_dict()


@router.post("/oversight/stop")
def oversight_stop(state: State, caller: Admin, body: StopReason | None = None) -> dict[str, object]:
    """Stop every search by a probe photo at once (admin; audited). Rights requests, ingest and
    erasure go on. Stopping again changes nothing."""
    reason = body.reason if body else None
    return state.engine.oversight.stop(actor=caller.actor, reason=reason).as_dict()


@router.post("/oversight/resume")
def oversight_resume(state: State, caller: Admin, body: StopReason | None = None) -> dict[str, object]:
    """End the stop (admin; audited)."""
    reason = body.reason if body else None
    return state.engine.oversight.resume(actor=caller.actor, reason=reason).as_dict()
