"""Regulator's orders, retention, keys and the erasure override (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from lethe.http.auth import Admin, OrderReader
from lethe.http.params import ROW_ID_MAX, RowId
from lethe.http.state import AppState, app_state
from lethe.views import order_rows

router = APIRouter(prefix="/api", tags=["admin"])
State = Annotated[AppState, Depends(app_state)]


class Stop(BaseModel):
    jurisdiction: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code, e.g. FR.")
    then_delete: bool = Field(default=False, description="Erase once open access requests are answered.")
    reference: str | None = Field(default=None, max_length=200, description="The order's reference.")


@router.post("/orders/stop")
def order_stop(body: Stop, state: State, caller: Admin) -> dict[str, object]:
    """Restrict every source of a jurisdiction at once (no search result, no ingest). Where no source
    has that jurisdiction, nothing is restricted and the answer carries a `warning`."""
    return state.engine.orders.stop(
        body.jurisdiction,
        then_delete=body.then_delete,
        actor=caller.actor,
        reference=body.reference,
    )


@router.get("/orders")
def order_list(state: State, _caller: OrderReader) -> dict[str, object]:
    """Orders with their state and proof (admin, or dpo to oversee them)."""
    return {"orders": order_rows(state.engine)}


class Lift(BaseModel):
    reason: str = Field(
        min_length=10, max_length=2000, description="Why the order ends (audited, kept off the chain)."
    )


@router.post("/orders/{order_id}/lift")
def order_lift(order_id: RowId, body: Lift, state: State, caller: Admin) -> dict[str, object]:
    """End a stop order in force (withdrawn by the regulator, or issued in error): the sources it
    covers become active and searchable again, except those another order in force covers; a
    pending deletion is cancelled. `409` once its deletion ran. Audited as `order.lift`."""
    return state.engine.orders.lift(order_id, reason=body.reason, actor=caller.actor)


@router.post("/orders/complete")
def order_complete(state: State, caller: Admin) -> dict[str, object]:
    """Carry out pending deletions whose access requests have been answered."""
    return {"orders": state.engine.orders.complete_pending(actor=caller.actor)}


@router.post("/retention/run")
def retention_run(state: State, caller: Admin) -> dict[str, object]:
    """Erase every face kept longer than its source's retention period."""
    return state.engine.retention.purge(actor=caller.actor)


@router.post("/keys/rotate")
def keys_rotate(state: State, caller: Admin) -> dict[str, object]:
    """Replace the master key and re-wrap every source key with it."""
    count = state.engine.rotate_master_key(actor=caller.actor)
    return {"rotated": True, "keys": count}


class LiftErasure(BaseModel):
    job_id: int | None = Field(default=None, ge=1, le=ROW_ID_MAX, description="An erasure job (its receipt).")
    sha256: str | None = Field(
        default=None, min_length=64, max_length=64, pattern="^[0-9a-fA-F]{64}$", description="A photo's hash."
    )
    reason: str = Field(
        min_length=10, max_length=2000, description="Why the erasure is overridden (audited)."
    )


@router.post("/erasures/lift")
def erasure_lift(body: LiftErasure, state: State, caller: Admin) -> dict[str, object]:
    """The only way back for an erased photo: delete the tombstones of one photo hash, or those of
    one erasure job with its request's erasure suppression, so the photos may be ingested again.
    Audited as `erasure.lift` (the reason off the chain)."""
    return state.engine.lift_erasure(
        actor=caller.actor, reason=body.reason, job_id=body.job_id, sha256=body.sha256
    )
