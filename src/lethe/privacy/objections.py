"""Objections (GDPR Art. 21) and restrictions (Art. 18): protected templates that only keep a person
out, read here; stored, replaced and withdrawn through the gate (:mod:`lethe.privacy.gate.objections`).

The person's templates are stored encrypted with the master key in a ``suppression`` row (the
table's name), used for nothing but this check: ingest skips faces that match an objection (they are
counted, never stored), and search never returns faces that match an objection or a restriction.
Withdrawing the objection deletes the templates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select

from lethe.calibration import default_thresholds, model_family_of
from lethe.catalog.privacy_tables import SuppressionRow
from lethe.model_ids import model_name

if TYPE_CHECKING:
    from lethe.privacy.gate import Gate
    from lethe.store import Store


def objection_aad(suppression_id: int) -> bytes:
    return f"suppression:{suppression_id}".encode()


SCOPES = ("objection", "restriction")


class Objections:
    """Objections and restrictions as the operator sees them: list, withdraw."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.store = gate.store

    def withdraw(self, suppression_id: int, *, actor: str) -> None:
        """The person withdraws the objection: the templates are deleted (through the gate)."""
        self.gate.withdraw_objection(suppression_id, actor=actor)

    def list_active(self) -> list[dict[str, object]]:
        with self.store.catalog.session() as session:
            rows = session.scalars(select(SuppressionRow).order_by(SuppressionRow.id)).all()
            return [
                {
                    "id": r.id,
                    "request_id": r.request_id,
                    "created_at": r.created_at.isoformat(),
                    "withdrawn_at": r.withdrawn_at.isoformat() if r.withdrawn_at else None,
                    "templates": r.count,
                    "scope": r.scope,
                    "model": model_name(r.model_sha256),
                }
                for r in rows
            ]


def fingerprint(store: Store) -> bytes:
    """Changes whenever an objection is added, replaced or withdrawn (sealed blobs carry a fresh
    random nonce, so a replacement always differs)."""
    digest = hashlib.sha256()
    with store.catalog.session() as session:
        for sid, blob in session.execute(
            select(SuppressionRow.id, SuppressionRow.templates)
            .where(SuppressionRow.withdrawn_at.is_(None))
            .order_by(SuppressionRow.id)
        ):
            digest.update(sid.to_bytes(8, "little") + hashlib.sha256(blob or b"").digest())
    return digest.digest()


def active_templates(store: Store, scopes: tuple[str, ...] = SCOPES) -> np.ndarray:
    """Every active objection's (or restriction's) templates made by the configured model, one unit
    row each (empty (0, dim) when none)."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(SuppressionRow.id, SuppressionRow.templates).where(
                SuppressionRow.withdrawn_at.is_(None),
                SuppressionRow.scope.in_(scopes),
                SuppressionRow.model_sha256 == store.model_sha256,
            )
        ).all()
    vectors = [
        np.frombuffer(store.keyring.open_master(blob, objection_aad(sid)), dtype=np.float32).reshape(
            -1, store.index.dim
        )
        for sid, blob in rows
        if blob
    ]
    return np.vstack(vectors) if vectors else np.zeros((0, store.index.dim), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Entry:
    """An active objection or restriction whose templates another model made."""

    suppression_id: int
    request_id: int | None
    scope: str
    model_sha256: str
    templates: np.ndarray
    #: That model's review threshold: at or above it a face is taken for the person's.
    threshold: float


def entries_of_other_models(store: Store) -> list[Entry]:
    with store.catalog.session() as session:
        rows = session.execute(
            select(
                SuppressionRow.id,
                SuppressionRow.request_id,
                SuppressionRow.scope,
                SuppressionRow.model_sha256,
                SuppressionRow.templates,
            ).where(SuppressionRow.withdrawn_at.is_(None), SuppressionRow.model_sha256 != store.model_sha256)
        ).all()
    return [
        Entry(
            int(sid),
            None if request_id is None else int(request_id),
            str(scope),
            str(sha),
            np.frombuffer(store.keyring.open_master(blob, objection_aad(sid)), dtype=np.float32).reshape(
                -1, store.index.dim
            ),
            default_thresholds(model_family_of(str(sha))).erasure_review_threshold,
        )
        for sid, request_id, scope, sha, blob in rows
        if blob
    ]


def active_of_model(store: Store, request_id: int | None, scope: str) -> np.ndarray:
    with store.catalog.session() as session:
        row = session.execute(
            select(SuppressionRow.id, SuppressionRow.templates).where(
                SuppressionRow.request_id == request_id
                if request_id is not None
                else SuppressionRow.request_id.is_(None),
                SuppressionRow.scope == scope,
                SuppressionRow.withdrawn_at.is_(None),
                SuppressionRow.model_sha256 == store.model_sha256,
            )
        ).first()
    if row is None or not row[1]:
        return np.zeros((0, store.index.dim), dtype=np.float32)
    return np.frombuffer(store.keyring.open_master(row[1], objection_aad(row[0])), dtype=np.float32).reshape(
        -1, store.index.dim
    )


def other_models(store: Store) -> dict[str, int]:
    """Active entries whose templates another model made: model sha256 -> entries."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(SuppressionRow.model_sha256, func.count())
            .where(SuppressionRow.withdrawn_at.is_(None), SuppressionRow.model_sha256 != store.model_sha256)
            .group_by(SuppressionRow.model_sha256)
        ).all()
    return {str(sha): int(n) for sha, n in rows}


class ActiveTemplates:
    """The decrypted templates of the active objections and restrictions, decrypted again whenever
    they changed, in this process or another (a cheap fingerprint query is made on every use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._key: bytes | None = None
        self._hidden = self._excluded = np.zeros((0, store.index.dim), dtype=np.float32)

    def _refresh(self) -> None:
        key = fingerprint(self.store)
        if key != self._key:
            self._hidden = active_templates(self.store)
            self._excluded = active_templates(self.store, ("objection",))
            self._key = key

    @property
    def hidden(self) -> np.ndarray:
        """Objections and restrictions: search never shows these faces."""
        self._refresh()
        return self._hidden

    @property
    def excluded(self) -> np.ndarray:
        """Objections only: these faces are not even ingested (a restriction hides faces from
        search but lets ingest go on)."""
        self._refresh()
        return self._excluded
