"""The request state machine (GDPR Art. 12): states, the transitions allowed, due dates, and the
moves that record an event and an audit entry.

States: ``received`` → ``verified`` → ``in_review`` → ``answered`` | ``rejected``. The answer is due
one calendar month after receipt; an extension to three months needs a recorded reason (Art. 12(3)).
Closing (answered or rejected) deletes the requester's photos and templates through the gate.
"""

from __future__ import annotations

import json
from calendar import monthrange
from datetime import datetime

from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestEventRow, RequestRow
from lethe.catalog.repository import now_utc
from lethe.errors import NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.gate import Gate

KINDS = ("access", "erasure", "objection", "restriction")
OPEN_STATES = ("received", "verified", "in_review")
TRANSITIONS = {
    "received": {"verified", "rejected"},
    "verified": {"in_review", "answered", "rejected"},
    "in_review": {"in_review", "answered", "rejected"},
}
MAX_CONTACT = 320


def add_months(when: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months later (clamped to the month's last day)."""
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, monthrange(year, month)[1]))


def row_of(session: Session, request_id: int) -> RequestRow:
    row = session.get(RequestRow, request_id)
    if row is None:
        raise NotFoundError(f"no request {request_id}")
    return row


def require_open(row: RequestRow, doing: str) -> None:
    if row.state not in OPEN_STATES:
        raise PrivacyError(f"request {row.id} is {row.state}; {doing}")


def require_decided(pending: int) -> None:
    """A request is answered only once every candidate in the review band is decided."""
    if pending:
        raise PrivacyError(f"{pending} candidate(s) still wait for a decision")


def move(session: Session, row: RequestRow, to: str, actor: str, note: str | None) -> None:
    if to not in TRANSITIONS.get(row.state, set()):
        raise PrivacyError(f"request {row.id} is {row.state}; it cannot become {to}")
    event(session, row, row.state, to, actor, note)
    audit.append(
        session,
        actor=actor,
        action="request.state",
        details={"request_id": row.id, "from": row.state, "to": to},
        at=now_utc(),
    )
    row.state = to


def event(session: Session, row: RequestRow, frm: str | None, to: str, actor: str, note: str | None) -> None:
    session.add(
        RequestEventRow(request_id=row.id, at=now_utc(), actor=actor, from_state=frm, to_state=to, note=note)
    )


def close(session: Session, row: RequestRow, outcome: dict[str, object]) -> None:
    """Answered or rejected: delete the requester's photos and templates, keep their hashes."""
    at = now_utc()
    row.closed_at = at
    if row.state == "answered":
        row.answered_at = at
    row.outcome = json.dumps(outcome)
    photos = Gate.drop_probes(session, row.id)
    audit.append(
        session,
        actor="system",
        action="request.close",
        details={"request_id": row.id, "state": row.state, "photos_deleted": photos},
        at=at,
    )
