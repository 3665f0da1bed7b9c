"""Uses (cases) that group searches (:mod:`lethe.privacy.uses`), and one use's whole record for a
regulator (:mod:`lethe.privacy.use_export`). An operator opens, closes, lists and reads their own
uses; the dpo and admin roles list and read everyone's and export them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from lethe.http.auth import Principal, Reader, require
from lethe.http.errors import ApiError
from lethe.http.params import ROW_ID_MAX, RowId
from lethe.http.state import AppState, app_state
from lethe.privacy.use_export import export_use
from lethe.privacy.uses import MAX_REFERENCE, MIN_PURPOSE, Use

router = APIRouter(prefix="/api", tags=["uses"])
State = Annotated[AppState, Depends(app_state)]
Overseer = Annotated[Principal, require("admin", "dpo")]
UseOperator = Annotated[Principal, require("operator", "admin", "dpo")]

_OVERSEERS = ("admin", "dpo")


class UseOpen(BaseModel):
    purpose: str = Field(
        min_length=MIN_PURPOSE, max_length=500, description="Why (audited, erasable like a search's)."
    )
    reference: str | None = Field(
        default=None, max_length=MAX_REFERENCE, description="A case reference (audited, erasable)."
    )


def _own_or_overseen(use: Use, caller: Principal) -> Use:
    if use.actor != caller.actor and not caller.user.has_any(_OVERSEERS):
        raise ApiError(403, "forbidden", "this use belongs to another user (dpo or admin may read it)")
    return use


@router.post("/uses")
def use_open(state: State, caller: UseOperator, body: UseOpen) -> dict[str, object]:
    """Open a use; your searches without a `use` go into it until it is closed or times out."""
    return state.engine.uses.open(
        actor=caller.actor, purpose=body.purpose, reference=body.reference
    ).as_dict()


@router.get("/uses")
def use_list(
    state: State,
    caller: Reader,
    mine: Annotated[bool, Query(description="Only your own uses (always so for an operator).")] = False,
    open_only: Annotated[bool, Query(alias="open", description="Only open uses.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, object]:
    """Uses newest first: an operator's own; everyone's for the dpo and admin roles."""
    everyone = caller.user.has_any(_OVERSEERS) and not mine
    uses = state.engine.uses.list(actor=None if everyone else caller.actor, open_only=open_only, limit=limit)
    return {"uses": [u.as_dict() for u in uses]}


@router.get("/uses/current")
def use_current(state: State, caller: UseOperator) -> dict[str, object]:
    """Your current use (the one your next search without a `use` continues), or `null`."""
    use = state.engine.uses.current(caller.actor)
    return {"use": use.as_dict() if use else None}


@router.get("/uses/{use_id}")
def use_get(use_id: RowId, state: State, caller: Reader) -> dict[str, object]:
    """One use: your own, or any for the dpo and admin roles."""
    return _own_or_overseen(state.engine.uses.get(use_id), caller).as_dict()


@router.post("/uses/{use_id}/close")
def use_close(use_id: RowId, state: State, caller: UseOperator) -> dict[str, object]:
    """Close a use of yours (an admin may close any); a search can no longer name it."""
    is_admin = caller.user.has_any(["admin"])
    return state.engine.uses.close(use_id, actor=caller.actor, admin=is_admin).as_dict()


@router.get("/uses/{use_id}/export")
def use_export(
    use_id: RowId,
    state: State,
    caller: Overseer,
    with_probes: Annotated[
        bool, Query(description="Include the kept probe photos, decrypted (base64); audited.")
    ] = False,
    recipient: Annotated[
        int | None,
        Query(
            ge=1,
            le=ROW_ID_MAX,
            description="The recipient it is handed to (`GET /api/recipients`): "
            "recorded as a disclosure of the faces its searches returned.",
        ),
    ] = None,
    reason: Annotated[
        str | None, Query(max_length=2000, description="With recipient: the legal basis or reason, in words.")
    ] = None,
) -> dict[str, object]:
    """One use's whole record for a regulator (dpo or admin): the use, each search's audit entry
    (reference database, probe hash, results), the probes kept and the verifiers. Audited. Handed
    to a `recipient`, it is recorded in the disclosure ledger (a reason is then required)."""
    engine = state.engine
    if recipient is not None:
        return engine.disclosures.export_use_to(
            engine.uses, engine.gate, use_id, recipient_id=recipient, reason=reason or "",
            actor=caller.actor, with_probes=with_probes,
        )  # fmt: skip
    return export_use(engine.uses, engine.gate, use_id, actor=caller.actor, with_probes=with_probes)
