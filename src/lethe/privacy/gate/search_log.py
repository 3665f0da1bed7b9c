"""The per-search log's personal data (issue 18, EU AI Act Art. 12(3)(a) and (c)): one row per search
linking its audit entry to its use with the probe's hash and, only when the search matched, the
probe photo itself sealed under the log key (:meth:`lethe.keyring.KeyRing.seal_log`) until the log
retention ends (``LETHE_LOG_RETENTION_DAYS``); then its bytes are deleted (:func:`expire`, run by the
retention sweep) and an audit entry ``probe.expired`` says so. A search without a match stores no
photo at all: only its hash, in the row and in the search's audit entry.

Writing a row takes no write lock: it is a catalog-only insert in the transaction that appends the
search's audit entry (no crop, vector or file changes), so a search never waits for an ingest.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import SearchLogRow
from lethe.keyring import LOG_KEY_ID
from lethe.privacy import audit

if TYPE_CHECKING:
    from lethe.store import Store


def probe_aad(seq: int) -> bytes:
    """A sealed probe is bound to its search's audit entry."""
    return f"search-probe:{seq}".encode()


def prepare(store: Store) -> None:
    """Load or create the log key before the search's transaction opens (on SQLite, creating it
    inside one would wait on that very transaction)."""
    store.keyring.ensure(LOG_KEY_ID)


def log(
    store: Store,
    session: Session,
    *,
    seq: int,
    use_id: int,
    at: datetime,
    probe: bytes,
    probe_sha256: str,
    matched: bool,
    expires_at: datetime,
) -> None:
    """Add a search's row inside the caller's transaction (the one appending its audit entry ``seq``):
    the probe sealed only when the search matched."""
    session.add(
        SearchLogRow(
            seq=seq,
            use_id=use_id,
            at=at,
            probe_sha256=probe_sha256,
            matched=matched,
            probe=store.keyring.seal_log(probe, probe_aad(seq)) if matched else None,
            probe_expires_at=expires_at if matched else None,
        )
    )


def expire(store: Store, *, now: datetime, actor: str) -> int:
    """Delete the probes kept past their expiry (the row's hash stays); how many. The SQLite
    write-ahead log is checkpointed afterwards so that no copy of the sealed bytes lingers there."""
    with store.catalog.session() as session, session.begin():
        rows = session.scalars(
            select(SearchLogRow).where(SearchLogRow.probe.is_not(None), SearchLogRow.probe_expires_at <= now)
        ).all()
        for row in rows:
            row.probe = None
            row.probe_deleted_at = now
        if rows:
            audit.append(
                session,
                actor=actor,
                action="probe.expired",
                details={
                    "search_seqs": [r.seq for r in rows],
                    "probes_deleted": len(rows),
                    "reason": "log retention ended",
                },
                at=now,
            )
    if rows:
        store.catalog.checkpoint()
    return len(rows)


def probe(store: Store, seq: int) -> bytes | None:
    """The decrypted probe of search ``seq`` while it is kept (for a regulator's export), else None."""
    with store.catalog.session() as session:
        blob = session.scalar(select(SearchLogRow.probe).where(SearchLogRow.seq == seq))
    return None if blob is None else store.keyring.open_log(blob, probe_aad(seq))
