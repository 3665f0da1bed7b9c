"""Objections (GDPR Art. 21), restrictions (Art. 18) and erasure suppressions (Art. 17): protected
templates that only keep a person out, read here; stored, replaced, withdrawn and lifted through the
gate (:mod:`lethe.privacy.gate.objections`).

The person's templates are stored encrypted with the master key in a ``suppression`` row (the
table's name), used for nothing but this check: ingest skips faces that match an objection or an
erasure suppression (they are counted, never stored), and search never returns faces that match an
objection or a restriction. Withdrawing the objection deletes the templates.

An *erasure suppression* (scope ``erasure``) holds the templates of a person erased on their
request (their probe templates and the erased faces' templates): a re-encoded or resized copy of an
erased photo, offered to any source, is then kept out at ingest. It is kept for
``erasure_suppression_days`` (docs/privacy.md, "Erasure that stays erased"), then deleted; only an
audited admin override lifts it earlier. Search does not use it: the erased faces are gone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import and_, func, or_, select

from lethe.calibration import default_thresholds, model_family_of
from lethe.catalog.privacy_tables import SuppressionRow
from lethe.catalog.repository import now_utc
from lethe.model_ids import model_name

if TYPE_CHECKING:
    from lethe.privacy.gate import Gate
    from lethe.store import Store


def objection_aad(suppression_id: int) -> bytes:
    return f"suppression:{suppression_id}".encode()


#: What search hides (objections and restrictions); ingest keeps out objections and erasures.
SCOPES = ("objection", "restriction")
ERASURE = "erasure"
#: The scopes that keep a face out of ingest.
INGEST_SCOPES = ("objection", ERASURE)


class Objections:
    """Objections and restrictions as the operator sees them: list, withdraw."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.store = gate.store

    def withdraw(self, suppression_id: int, *, actor: str) -> None:
        """The person withdraws the objection: the templates are deleted (through the gate)."""
        self.gate.withdraw_objection(suppression_id, actor=actor)

    def list_active(self) -> list[dict[str, object]]:
        """Objections and restrictions (erasure suppressions: :meth:`erasure_suppressions`)."""
        return self._rows(SuppressionRow.scope != ERASURE)

    def erasure_suppressions(self) -> list[dict[str, object]]:
        """The templates kept to make erasures stick, with when each expires (ids and counts only)."""
        days = self.store.settings.erasure_suppression_days
        return [
            row
            | {
                "expires_at": (
                    datetime.fromisoformat(str(row["created_at"])) + timedelta(days=days)
                ).isoformat()
            }
            for row in self._rows(SuppressionRow.scope == ERASURE)
        ]

    def _rows(self, where: Any) -> list[dict[str, object]]:
        with self.store.catalog.session() as session:
            rows = session.scalars(select(SuppressionRow).where(where).order_by(SuppressionRow.id)).all()
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
    """Changes whenever an objection is added, replaced, withdrawn or lifted, or an erasure
    suppression expires (sealed blobs carry a fresh random nonce, so a replacement always differs)."""
    digest = hashlib.sha256()
    with store.catalog.session() as session:
        for sid, blob in session.execute(
            select(SuppressionRow.id, SuppressionRow.templates)
            .where(_in_force(store))
            .order_by(SuppressionRow.id)
        ):
            digest.update(sid.to_bytes(8, "little") + hashlib.sha256(blob or b"").digest())
    return digest.digest()


def erasure_cutoff(store: Store) -> datetime:
    """Erasure suppressions created before this have expired (they are no longer used, and the gate
    deletes them on its next ingest)."""
    return now_utc() - timedelta(days=store.settings.erasure_suppression_days)


def _in_force(store: Store) -> Any:
    """Active (not withdrawn or lifted), and for an erasure suppression not expired."""
    return and_(
        SuppressionRow.withdrawn_at.is_(None),
        or_(SuppressionRow.scope != ERASURE, SuppressionRow.created_at >= erasure_cutoff(store)),
    )


def active_templates(store: Store, scopes: tuple[str, ...] = SCOPES) -> np.ndarray:
    """Every active objection's (or restriction's, or erasure suppression's) templates made by the
    configured model, one unit row each (empty (0, dim) when none)."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(SuppressionRow.id, SuppressionRow.templates).where(
                _in_force(store),
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
    #: That model's threshold for the scope (see :func:`keep_out_threshold`).
    threshold: float


def keep_out_threshold(scope: str, thresholds: Any) -> float:
    """The similarity from which a face is taken for the person's: an objection's keeps out from
    the review threshold (the person asked to be kept out); an erasure suppression's from the
    automatic threshold, where the erasure itself acts without a reviewer (copies of the erased faces
    score far above it), so that nobody else is kept out on a mere resemblance."""
    return float(
        thresholds.erasure_auto_threshold if scope == ERASURE else thresholds.erasure_review_threshold
    )


def entries_of_other_models(store: Store) -> list[Entry]:
    with store.catalog.session() as session:
        rows = session.execute(
            select(
                SuppressionRow.id,
                SuppressionRow.request_id,
                SuppressionRow.scope,
                SuppressionRow.model_sha256,
                SuppressionRow.templates,
            ).where(_in_force(store), SuppressionRow.model_sha256 != store.model_sha256)
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
            keep_out_threshold(str(scope), default_thresholds(model_family_of(str(sha)))),
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
                _in_force(store),
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
            .where(_in_force(store), SuppressionRow.model_sha256 != store.model_sha256)
            .group_by(SuppressionRow.model_sha256)
        ).all()
    return {str(sha): int(n) for sha, n in rows}


class ActiveTemplates:
    """The decrypted templates of the active objections and restrictions, decrypted again whenever
    they changed, in this process or another (a cheap fingerprint query is made on every use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._key: bytes | None = None
        self._hidden = self._excluded = self._erased = np.zeros((0, store.index.dim), dtype=np.float32)

    def _refresh(self) -> None:
        key = fingerprint(self.store)
        if key != self._key:
            self._hidden = active_templates(self.store)
            self._excluded = active_templates(self.store, ("objection",))
            self._erased = active_templates(self.store, (ERASURE,))
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

    @property
    def erased(self) -> np.ndarray:
        """Erasure suppressions: copies of erased faces are not ingested again, into any source."""
        self._refresh()
        return self._erased
