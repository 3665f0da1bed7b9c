"""The audit log: append-only and hash-chained.

Each entry's hash is ``sha256(prev_hash + canonical JSON of (seq, at, actor, action, details))``;
the first entry chains from 64 zeros. A one-row head keeps the last ``seq`` and hash, so deleting
entries at the end is detected too. :func:`verify` recomputes the chain and reports the first break:
an edited byte, a deleted or inserted entry, or a reordering.

Entries hold ids, counts and hashes only: never templates, pixels or names of data subjects.
Entries are written in the same database transaction as the action they record, so an entry exists
exactly when its action committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lethe.catalog.dialects import insert_ignoring_duplicates
from lethe.catalog.tables import AuditEntryRow, AuditFaceRow, AuditHeadRow
from lethe.errors import CatalogError

GENESIS = "0" * 64
HEAD_ID = 1
_FORBIDDEN_KEYS = frozenset(
    {"embedding", "embeddings", "template", "pixels", "image_bytes", "name", "contact"}
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]
    hash: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What to write about an action; the catalog appends it inside the action's transaction."""

    actor: str
    action: str
    details: Mapping[str, Any]
    faces: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def _canonical(seq: int, at: datetime, actor: str, action: str, details: str) -> bytes:
    body = {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "details": details}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(prev_hash: str, seq: int, at: datetime, actor: str, action: str, details: str) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(seq, at, actor, action, details)).hexdigest()


def _check_details(details: Mapping[str, Any]) -> None:
    bad = _FORBIDDEN_KEYS.intersection(details)
    if bad:
        raise ValueError(f"audit details may not hold {sorted(bad)}")


def lock_head(session: Session) -> AuditHeadRow:
    """The head row, locked until the transaction ends (created at the first entry): appends, and
    the writes they record, run one at a time across threads and processes.

    SQLite ignores ``FOR UPDATE`` and starts transactions deferred: two searches audited at once
    both read the same head and the second insert failed (``UNIQUE constraint failed:
    audit_entry.seq``, found by bench/load_test.py). There a no-op write of the head row comes
    first, which takes the database's write lock (waiting up to the busy timeout) before the head
    is read."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID).values(seq=AuditHeadRow.seq))
    head = session.get(AuditHeadRow, HEAD_ID, with_for_update=True, populate_existing=True)
    if head is None:
        # Two first entries at once: one inserts the row, the other waits for it and then locks it.
        insert = insert_ignoring_duplicates(session.get_bind().dialect.name, AuditHeadRow, "id")
        session.execute(insert.values(id=HEAD_ID, seq=0, hash=GENESIS))
        head = session.get(AuditHeadRow, HEAD_ID, with_for_update=True)
        if head is None:
            raise CatalogError("the audit log's head row could not be created")
    return head


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    details: Mapping[str, Any],
    at: datetime,
    faces: Iterable[int] = (),
) -> AuditEntry:
    """Add an entry inside the caller's transaction (commit it with the action it records)."""
    _check_details(details)
    head = lock_head(session)
    seq = head.seq + 1
    text = json.dumps(dict(details), sort_keys=True, separators=(",", ":"), default=str)
    at = at.astimezone(UTC)
    digest = entry_hash(head.hash, seq, at, actor, action, text)
    session.add(
        AuditEntryRow(
            seq=seq, at=at, actor=actor, action=action, details=text, prev_hash=head.hash, hash=digest
        )
    )
    session.flush()
    session.add_all(AuditFaceRow(seq=seq, face_id=int(f)) for f in set(faces))
    head.seq, head.hash = seq, digest
    return AuditEntry(seq, at, actor, action, json.loads(text), digest)


def verify(session: Session, batch: int = 10_000) -> Verification:
    """Recompute the whole chain; report the first entry where it breaks."""
    prev, expected_seq, count = GENESIS, 1, 0
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.seq > last).order_by(AuditEntryRow.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return Verification(False, count, prev, row.seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev:
                return Verification(False, count, prev, row.seq, "chain broken: previous hash differs")
            if entry_hash(prev, row.seq, row.at, row.actor, row.action, row.details) != row.hash:
                return Verification(False, count, prev, row.seq, "entry content was changed")
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
        last = rows[-1].seq
    head = session.get(AuditHeadRow, HEAD_ID)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (count, prev):
        return Verification(
            False, count, prev, count + 1, "entries at the end were removed or the head was changed"
        )
    return Verification(True, count, prev)


def entries(
    session: Session, *, action: str | None = None, limit: int = 100, before: int | None = None
) -> list[AuditEntry]:
    query = select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(limit)
    if action:
        query = query.where(AuditEntryRow.action == action)
    if before:
        query = query.where(AuditEntryRow.seq < before)
    return [
        AuditEntry(r.seq, r.at, r.actor, r.action, json.loads(r.details), r.hash)
        for r in session.scalars(query)
    ]


def entries_for_faces(session: Session, face_ids: Iterable[int]) -> dict[int, list[AuditEntry]]:
    """face id -> the audited actions (searches) that returned it, oldest first."""
    ids = list(set(int(f) for f in face_ids))
    out: dict[int, list[AuditEntry]] = {f: [] for f in ids}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(AuditFaceRow.face_id, AuditEntryRow)
            .join(AuditEntryRow, AuditEntryRow.seq == AuditFaceRow.seq)
            .where(AuditFaceRow.face_id.in_(ids[start : start + 500]))
            .order_by(AuditEntryRow.seq)
        ).all()
        for face_id, r in rows:
            out[face_id].append(AuditEntry(r.seq, r.at, r.actor, r.action, json.loads(r.details), r.hash))
    return out
