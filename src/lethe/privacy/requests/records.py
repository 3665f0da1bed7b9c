"""What a request looks like to its readers: :class:`RequestView` and :class:`CandidateView`, built
from the catalog's rows, and the sealed personal data of an open request (contact address, photos,
templates) opened for the workflow. Writing them is the gate's (:mod:`lethe.privacy.gate.probes`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import (
    RequestCandidateRow,
    RequestEventRow,
    RequestProbeBlobRow,
    RequestProbeRow,
    RequestRow,
    RequestVerificationRow,
)
from lethe.catalog.repository import now_utc
from lethe.privacy.gate.probes import contact_aad, probe_aad
from lethe.privacy.requests.workflow import OPEN_STATES, verification_complete

if TYPE_CHECKING:
    from lethe.store import Store


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    ref: str
    kind: str
    state: str
    received_at: datetime
    due_at: datetime
    extension_reason: str | None
    channel: str
    answered_at: datetime | None
    closed_at: datetime | None
    outcome: dict[str, Any] | None
    probe_hashes: list[str] = field(default_factory=list)
    candidates: dict[str, int] = field(default_factory=dict)

    @property
    def overdue(self) -> bool:
        return self.state in OPEN_STATES and now_utc() > self.due_at

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ref": self.ref,
            "kind": self.kind,
            "state": self.state,
            "received_at": self.received_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "overdue": self.overdue,
            "extension_reason": self.extension_reason,
            "channel": self.channel,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "outcome": self.outcome,
            "probe_sha256": self.probe_hashes,
            "candidates": self.candidates,
        }


@dataclass(frozen=True, slots=True)
class CandidateView:
    face_id: int
    score: float
    band: str
    round: int
    decision: str | None
    decided_by: str | None


def view(session: Session, row: RequestRow) -> RequestView:
    (one,) = views(session, [row])
    return one


def views(session: Session, rows: Sequence[RequestRow]) -> list[RequestView]:
    """The views of ``rows``, their probe hashes and candidate counts read with one grouped query
    each (not two per request: a list of thousands of requests is two queries, not thousands)."""
    ids = [r.id for r in rows]
    hashes: dict[int, list[str]] = {i: [] for i in ids}
    bands: dict[int, dict[str, int]] = {i: {} for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for request_id, sha in session.execute(
            select(RequestProbeRow.request_id, RequestProbeRow.sha256)
            .where(RequestProbeRow.request_id.in_(chunk))
            .order_by(RequestProbeRow.id)
        ):
            hashes[request_id].append(sha)
        for request_id, band, decision, n in session.execute(
            select(
                RequestCandidateRow.request_id,
                RequestCandidateRow.band,
                RequestCandidateRow.decision,
                func.count(),
            )
            .where(RequestCandidateRow.request_id.in_(chunk))
            .group_by(RequestCandidateRow.request_id, RequestCandidateRow.band, RequestCandidateRow.decision)
        ):
            key = band if decision is None else decision
            bands[request_id][key] = bands[request_id].get(key, 0) + int(n)
    return [_view(row, hashes[row.id], bands[row.id]) for row in rows]


def _view(row: RequestRow, hashes: list[str], bands: dict[str, int]) -> RequestView:
    return RequestView(
        id=row.id,
        ref=row.ref,
        kind=row.kind,
        state=row.state,
        received_at=row.received_at,
        due_at=row.due_at,
        extension_reason=row.extension_reason,
        channel=row.channel,
        answered_at=row.answered_at,
        closed_at=row.closed_at,
        outcome=_outcome(row.outcome),
        probe_hashes=hashes,
        candidates=bands,
    )


def _outcome(stored: str | None) -> dict[str, Any] | None:
    """The recorded outcome; an export recorded as a server path (before outcomes named it by its
    folder's name) is shown by its name: no reader of a request learns the server's folders."""
    if not stored:
        return None
    outcome: dict[str, Any] = json.loads(stored)
    if isinstance(outcome.get("export"), str):
        outcome["export"] = PurePath(outcome["export"]).name
    return outcome


def verifications(session: Session, request_id: int) -> list[dict[str, object]]:
    """The identity checks of a request, oldest first (method, who, when, attestation, note)."""
    rows = session.scalars(
        select(RequestVerificationRow)
        .where(RequestVerificationRow.request_id == request_id)
        .order_by(RequestVerificationRow.id)
    ).all()
    return [
        {"method": r.method, "verified_by": r.verified_by, "verified_at": r.verified_at.isoformat(),
         "attested": r.attested, "note": r.note}
        for r in rows
    ]  # fmt: skip


def verified(session: Session, request_id: int, kind: str) -> bool:
    """Whether the recorded checks are enough for a request of ``kind``."""
    rows = session.execute(
        select(RequestVerificationRow.method, RequestVerificationRow.verified_by).where(
            RequestVerificationRow.request_id == request_id, RequestVerificationRow.attested.is_(True)
        )
    ).all()
    return verification_complete(kind, [(m, v) for m, v in rows])


def candidates(session: Session, request_id: int, *, pending_only: bool = False) -> list[CandidateView]:
    query = select(RequestCandidateRow).where(RequestCandidateRow.request_id == request_id)
    rows = session.scalars(query.order_by(RequestCandidateRow.score.desc())).all()
    views = [CandidateView(r.face_id, r.score, r.band, r.round, r.decision, r.decided_by) for r in rows]
    if pending_only:
        views = [v for v in views if v.band == "review" and v.decision is None]
    return views


def events(session: Session, request_id: int) -> list[dict[str, object]]:
    rows = session.scalars(
        select(RequestEventRow).where(RequestEventRow.request_id == request_id).order_by(RequestEventRow.id)
    ).all()
    return [
        {"at": r.at.isoformat(), "actor": r.actor, "from": r.from_state, "to": r.to_state, "note": r.note}
        for r in rows
    ]


def contact(store: Store, row: RequestRow) -> str:
    return store.keyring.open_master(row.contact, contact_aad(row.id)).decode()


def probe_photos(store: Store, request_id: int) -> list[tuple[int, bytes]]:
    """(probe id, decrypted photo) of an open request, oldest first."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(RequestProbeRow.id, RequestProbeBlobRow.photo)
            .join(RequestProbeBlobRow, RequestProbeBlobRow.probe_id == RequestProbeRow.id)
            .where(RequestProbeRow.request_id == request_id)
            .order_by(RequestProbeRow.id)
        ).all()
    return [(pid, store.keyring.open_master(blob, probe_aad(pid) + b":photo")) for pid, blob in rows]


def probe_templates(store: Store, request_id: int) -> list[tuple[int, bytes | None, str | None]]:
    """(probe id, decrypted template or None, the model that made it) of an open request."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(RequestProbeRow.id, RequestProbeBlobRow.template, RequestProbeBlobRow.model_sha256)
            .join(RequestProbeBlobRow, RequestProbeBlobRow.probe_id == RequestProbeRow.id)
            .where(RequestProbeRow.request_id == request_id)
        ).all()
    return [
        (pid, None if blob is None else store.keyring.open_master(blob, probe_aad(pid) + b":template"), model)
        for pid, blob, model in rows
    ]
