"""Objection, restriction and erasure-suppression templates (GDPR Arts. 17, 18, 21): storing,
replacing, withdrawing, lifting and expiring them. Reading them (what ingest and search keep out) is
:mod:`lethe.privacy.objections`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from lethe.catalog.privacy_tables import SuppressionRow
from lethe.catalog.repository import now_utc
from lethe.errors import ConflictError, NotFoundError
from lethe.privacy import audit
from lethe.privacy.objections import ERASURE, erasure_cutoff, objection_aad

if TYPE_CHECKING:
    from lethe.store import Store


def suppress(store: Store, templates: np.ndarray, *, request_id: int | None, actor: str, scope: str) -> int:
    """Store an objection; returns how many templates protect it. A request run again (after a
    reviewer's decisions) replaces the templates of its active objection: one request, one
    objection, so that one withdrawal lifts it. An erasure suppression (scope ``erasure``) gathers
    instead: each run of the request erases other faces, whose templates join the earlier ones."""
    vectors = np.ascontiguousarray(templates, dtype=np.float32)
    at = now_utc()
    with store.catalog.session() as session, session.begin():
        row = None
        if request_id is not None:
            row = session.scalars(
                select(SuppressionRow)
                .where(
                    SuppressionRow.request_id == request_id,
                    SuppressionRow.withdrawn_at.is_(None),
                    SuppressionRow.model_sha256 == store.model_sha256,
                    SuppressionRow.scope == scope,
                )
                .order_by(SuppressionRow.id)
            ).first()
        if row is not None and scope == ERASURE and row.templates:
            earlier = np.frombuffer(
                store.keyring.open_master(row.templates, objection_aad(row.id)), np.float32
            )
            vectors = np.unique(np.vstack([earlier.reshape(-1, vectors.shape[1]), vectors]), axis=0)
        action = "suppression.add" if row is None else "suppression.update"
        if row is None:
            row = SuppressionRow(
                request_id=request_id,
                created_at=at,
                templates=b"",
                count=len(vectors),
                scope=scope,
                model_sha256=store.model_sha256,
            )
            session.add(row)
            session.flush()
        row.count = len(vectors)
        row.model_sha256 = store.model_sha256
        row.templates = store.keyring.seal_master(vectors.tobytes(), objection_aad(row.id))
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
    return len(vectors)


def withdraw(store: Store, suppression_id: int, *, actor: str) -> None:
    """The person withdraws the objection: the templates are deleted."""
    at = now_utc()
    with store.catalog.session() as session, session.begin():
        row = session.get(SuppressionRow, suppression_id)
        if row is None:
            raise NotFoundError(f"no objection {suppression_id}")
        if row.withdrawn_at is not None:
            raise ConflictError(f"objection {suppression_id} was already withdrawn")
        if row.scope == ERASURE:
            raise ConflictError(
                f"suppression {suppression_id} keeps an erasure effective: only an admin's override "
                "(lethe erasure lift) lifts it"
            )
        row.withdrawn_at, row.templates = at, None
        audit.append(
            session,
            actor=actor,
            action="suppression.withdraw",
            details={"suppression_id": suppression_id},
            at=at,
        )
    store.catalog.checkpoint()


def expire(store: Store) -> int:
    """Delete the templates of every erasure suppression past its period; how many (audited)."""
    at = now_utc()
    with store.catalog.session() as session, session.begin():
        rows = session.scalars(
            select(SuppressionRow).where(
                SuppressionRow.scope == ERASURE,
                SuppressionRow.withdrawn_at.is_(None),
                SuppressionRow.created_at < erasure_cutoff(store),
            )
        ).all()
        for row in rows:
            row.withdrawn_at, row.templates = at, None
        if rows:
            audit.append(
                session,
                actor="system",
                action="suppression.expire",
                details={
                    "suppression_ids": [r.id for r in rows],
                    "days": store.settings.erasure_suppression_days,
                },
                at=at,
            )
    if rows:
        store.catalog.checkpoint()
    return len(rows)
