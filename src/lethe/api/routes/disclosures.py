"""The disclosure ledger and the notices to recipients (:mod:`lethe.privacy.disclosures`,
:mod:`lethe.privacy.recipient_notices`; GDPR Arts. 15(1)(c), 17(2), 19): recipients, API tokens
bound to one, disclosures recorded by hand, and the notices an erasure, restriction or objection
owes them. Administrators and data-protection officers only; no answer holds a recipient's address.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from lethe.http.auth import LedgerKeeper
from lethe.http.errors import ApiError
from lethe.http.params import ROW_ID_MAX, RowId
from lethe.http.state import AppState, app_state
from lethe.privacy.disclosures import MIN_REASON

router = APIRouter(prefix="/api", tags=["disclosures"])
State = Annotated[AppState, Depends(app_state)]
OptionalId = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)]


class RecipientIn(BaseModel):
    name: str = Field(
        min_length=2, max_length=200, description="The organisation or role (never a data subject)."
    )
    kind: Literal["processor", "third_party", "public_authority", "controller"]
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. FR or US.")
    contact: str | None = Field(
        default=None,
        max_length=320,
        description="An e-mail address for notices (stored sealed, never shown).",
    )
    safeguard: str | None = Field(
        default=None, max_length=500, description="Outside the EEA: the transfer's safeguard, in words."
    )


class TokenBinding(BaseModel):
    token_id: int = Field(ge=1, le=ROW_ID_MAX, description="The API token (`GET /api/tokens`).")
    reason: str = Field(
        min_length=MIN_REASON, max_length=2000, description="The disclosures' legal basis, in words."
    )


class DisclosureIn(BaseModel):
    recipient: int = Field(ge=1, le=ROW_ID_MAX)
    faces: list[int] = Field(min_length=1, max_length=10_000, description="The faces it carried.")
    reason: str = Field(
        min_length=MIN_REASON, max_length=2000, description="The legal basis or reason, in words."
    )
    reference: str | None = Field(
        default=None, max_length=100, description="Your reference (a letter, a file)."
    )


class SentNote(BaseModel):
    note: str | None = Field(
        default=None, max_length=2000, description="How it was sent (post, a portal...)."
    )


class NotRequired(BaseModel):
    reason: str = Field(
        min_length=10, max_length=2000, description="Why (Art. 19: impossible or a disproportionate effort)."
    )


# -- recipients ------------------------------------------------------------------------------------


@router.get("/recipients")
def list_recipients(state: State, _caller: LedgerKeeper) -> dict[str, object]:
    """Every recipient: name, kind, country, outside the EEA, the transfer's safeguard, whether an
    e-mail address is held (never the address), how many disclosures."""
    return {"recipients": [r.as_dict() for r in state.engine.disclosures.recipients()]}


@router.post("/recipients", status_code=201)
def add_recipient(body: RecipientIn, state: State, caller: LedgerKeeper) -> dict[str, object]:
    """Add a recipient (audited `recipient.add`; `409` when the name exists)."""
    recipient = state.engine.disclosures.add_recipient(
        body.name, body.kind, body.country, actor=caller.actor, contact=body.contact, safeguard=body.safeguard
    )
    return recipient.as_dict()


@router.get("/recipients/{recipient_id}/tokens")
def list_bound_tokens(recipient_id: RowId, state: State, _caller: LedgerKeeper) -> dict[str, object]:
    """The API tokens bound to the recipient (never their secret)."""
    state.engine.disclosures.recipient(recipient_id)  # 404 for an unknown recipient
    return {"tokens": state.engine.disclosures.tokens(recipient_id)}


@router.post("/recipients/{recipient_id}/tokens", status_code=201)
def bind_token(
    recipient_id: RowId, body: TokenBinding, state: State, caller: LedgerKeeper
) -> dict[str, object]:
    """Bind an API token to the recipient: every search answered to it is then recorded as a
    disclosure of the faces it returned (audited `recipient.token_bind`)."""
    return state.engine.disclosures.bind_token(
        body.token_id, recipient_id, reason=body.reason, actor=caller.actor
    )


@router.delete("/recipients/{recipient_id}/tokens/{token_id}")
def unbind_token(
    recipient_id: RowId, token_id: RowId, state: State, caller: LedgerKeeper
) -> dict[str, object]:
    """Unbind the token: its searches are no longer disclosures (the ledger keeps earlier ones)."""
    ledger = state.engine.disclosures
    if not any(t["token_id"] == token_id for t in ledger.tokens(recipient_id)):
        raise ApiError(404, "not_found", f"token {token_id} is not bound to recipient {recipient_id}")
    ledger.unbind_token(token_id, actor=caller.actor)
    return {"token_id": token_id, "recipient_id": recipient_id, "bound": False}


# -- the ledger ------------------------------------------------------------------------------------


@router.get("/disclosures")
def list_disclosures(
    state: State,
    _caller: LedgerKeeper,
    recipient: Annotated[OptionalId, Query(description="Only to this recipient.")] = None,
    face: Annotated[OptionalId, Query(description="Only those that carried this face.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many, newest first.")] = 500,
) -> dict[str, object]:
    """Disclosures, newest first: recipient, when, by whom, channel (`manual`, `api_token`,
    `use_export`), reason, reference and the faces carried."""
    found = state.engine.disclosures.list_disclosures(recipient_id=recipient, face_id=face, limit=limit)
    return {"disclosures": [d.as_dict() for d in found]}


@router.post("/disclosures", status_code=201)
def record_disclosure(body: DisclosureIn, state: State, caller: LedgerKeeper) -> dict[str, object]:
    """Record what left by other means (audited `disclosure.record`). An unknown recipient or face:
    `404`, and nothing is recorded."""
    disclosure = state.engine.disclosures.record(
        body.recipient,
        body.faces,
        reason=body.reason,
        actor=caller.actor,
        channel="manual",
        reference=body.reference,
    )
    return disclosure.as_dict()


# -- notices ---------------------------------------------------------------------------------------


@router.get("/recipient-notices")
def list_notices(
    state: State,
    _caller: LedgerKeeper,
    notice_state: Annotated[
        Literal["pending", "sent", "not_required"] | None,
        Query(alias="state", description="Only in this state."),
    ] = None,
    request: Annotated[OptionalId, Query(description="Only those of this request.")] = None,
    recipient: Annotated[OptionalId, Query(description="Only those to this recipient.")] = None,
) -> dict[str, object]:
    """The notices owed to recipients (Art. 19) and to the other controllers of published photos
    (Art. 17(2)), oldest first, with their text and state."""
    found = state.engine.recipient_notices.list_notices(
        state=notice_state, request_id=request, recipient_id=recipient
    )
    return {"notices": [n.as_dict() for n in found]}


@router.get("/recipient-notices/{notice_id}")
def get_notice(notice_id: RowId, state: State, _caller: LedgerKeeper) -> dict[str, object]:
    return state.engine.recipient_notices.get(notice_id).as_dict()


@router.post("/recipient-notices/{notice_id}/send")
def send_notice(notice_id: RowId, state: State, caller: LedgerKeeper) -> dict[str, object]:
    """Send it to the recipient's e-mail address through the mail channel (`409` without a channel
    or an address: send it by hand and mark it sent; `502` when the send failed, it stays pending)."""
    return state.engine.recipient_notices.send(notice_id, actor=caller.actor).as_dict()


@router.post("/recipient-notices/{notice_id}/sent")
def mark_sent(
    notice_id: RowId, state: State, caller: LedgerKeeper, body: SentNote | None = None
) -> dict[str, object]:
    """Record that it was sent by hand: who and when (audited `recipient_notice.sent`)."""
    note = body.note if body is not None else None
    return state.engine.recipient_notices.mark_sent(notice_id, actor=caller.actor, note=note).as_dict()


@router.post("/recipient-notices/{notice_id}/not-required")
def not_required(
    notice_id: RowId, body: NotRequired, state: State, caller: LedgerKeeper
) -> dict[str, object]:
    """Record that it is not required, and why (audited `recipient_notice.not_required`)."""
    return state.engine.recipient_notices.not_required(
        notice_id, actor=caller.actor, reason=body.reason
    ).as_dict()
