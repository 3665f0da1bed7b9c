"""Objection / opt-out (GDPR Art. 21): a protected template that only keeps a person out.

The person's templates are stored encrypted with the master key in a ``suppression`` entry, used for
nothing but this check: ingest skips faces that match (they are counted, never stored), and search
never returns them. Withdrawing the objection deletes the templates.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from lethe.catalog.privacy_tables import SuppressionRow
from lethe.catalog.repository import now_utc
from lethe.errors import NotFoundError, PrivacyError
from lethe.privacy import audit

if TYPE_CHECKING:
    from lethe.engine import Lethe


def _aad(suppression_id: int) -> bytes:
    return f"suppression:{suppression_id}".encode()


SCOPES = ("objection", "restriction")


def suppress(
    engine: Lethe, templates: np.ndarray, *, request_id: int | None, actor: str, scope: str = "objection"
) -> int:
    """Store an objection; returns how many templates protect it. A request run again (after a
    reviewer's decisions) replaces the templates of its active objection: one request, one
    objection, so that one withdrawal lifts it."""
    vectors = np.ascontiguousarray(templates, dtype=np.float32)
    at = now_utc()
    with engine.catalog.session() as session, session.begin():
        row = None
        if request_id is not None:
            row = session.scalars(
                select(SuppressionRow)
                .where(SuppressionRow.request_id == request_id, SuppressionRow.withdrawn_at.is_(None))
                .order_by(SuppressionRow.id)
            ).first()
        action = "suppression.add" if row is None else "suppression.update"
        if row is None:
            row = SuppressionRow(
                request_id=request_id, created_at=at, templates=b"", count=len(vectors), scope=scope
            )
            session.add(row)
            session.flush()
        row.count = len(vectors)
        row.templates = engine.keyring.seal_master(vectors.tobytes(), _aad(row.id))
        audit.append(
            session,
            actor=actor,
            action=action,
            details={
                "suppression_id": row.id,
                "request_id": request_id,
                "templates": len(vectors),
                "scope": scope,
            },
            at=at,
        )
    engine.reload_suppression()
    return len(vectors)


def withdraw(engine: Lethe, suppression_id: int, *, actor: str) -> None:
    """The person withdraws the objection: the templates are deleted."""
    at = now_utc()
    with engine.catalog.session() as session, session.begin():
        row = session.get(SuppressionRow, suppression_id)
        if row is None:
            raise NotFoundError(f"no objection {suppression_id}")
        if row.withdrawn_at is not None:
            raise PrivacyError(f"objection {suppression_id} was already withdrawn")
        row.withdrawn_at, row.templates = at, None
        audit.append(
            session,
            actor=actor,
            action="suppression.withdraw",
            details={"suppression_id": suppression_id},
            at=at,
        )
    engine.catalog.checkpoint()
    engine.reload_suppression()


def fingerprint(engine: Lethe) -> bytes:
    """Changes whenever an objection is added, replaced or withdrawn (sealed blobs carry a fresh
    random nonce, so a replacement always differs)."""
    digest = hashlib.sha256()
    with engine.catalog.session() as session:
        for sid, blob in session.execute(
            select(SuppressionRow.id, SuppressionRow.templates)
            .where(SuppressionRow.withdrawn_at.is_(None))
            .order_by(SuppressionRow.id)
        ):
            digest.update(sid.to_bytes(8, "little") + hashlib.sha256(blob or b"").digest())
    return digest.digest()


def active_templates(engine: Lethe, scopes: tuple[str, ...] = SCOPES) -> np.ndarray:
    """Every active objection's (or restriction's) templates, one unit row each (empty (0, dim)
    when none)."""
    with engine.catalog.session() as session:
        rows = session.execute(
            select(SuppressionRow.id, SuppressionRow.templates).where(
                SuppressionRow.withdrawn_at.is_(None), SuppressionRow.scope.in_(scopes)
            )
        ).all()
    vectors = [
        np.frombuffer(engine.keyring.open_master(blob, _aad(sid)), dtype=np.float32).reshape(
            -1, engine.index.dim
        )
        for sid, blob in rows
        if blob
    ]
    return np.vstack(vectors) if vectors else np.zeros((0, engine.index.dim), dtype=np.float32)


def list_active(engine: Lethe) -> list[dict[str, object]]:
    with engine.catalog.session() as session:
        rows = session.scalars(select(SuppressionRow).order_by(SuppressionRow.id)).all()
        return [
            {
                "id": r.id,
                "request_id": r.request_id,
                "created_at": r.created_at.isoformat(),
                "withdrawn_at": r.withdrawn_at.isoformat() if r.withdrawn_at else None,
                "templates": r.count,
                "scope": r.scope,
            }
            for r in rows
        ]


def matches(templates: np.ndarray, vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean per row of ``vectors``: does it match any suppressed template?"""
    if len(templates) == 0 or len(vectors) == 0:
        return np.zeros(len(vectors), dtype=bool)
    return (np.asarray(vectors, np.float32) @ templates.T).max(axis=1) >= threshold
