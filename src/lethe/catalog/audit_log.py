"""The audit log's storage: append-only and hash-chained. What an entry may hold is the privacy
layer's policy (:mod:`lethe.privacy.audit`, which builds every :class:`AuditRecord`); this module only
stores, chains, verifies and reads entries.

Each entry's hash is ``sha256(prev_hash + canonical JSON of (seq, at, actor, action, details))``;
the first entry chains from 64 zeros. A one-row head keeps the last ``seq`` and hash, so deleting
entries at the end is detected too. :func:`verify` recomputes the chain and reports the first break:
an edited byte, a deleted or inserted entry, or a reordering.

Free text (a search's stated purpose) is kept off the chain: :class:`AuditRecord` carries it in
``texts``; the chained details hold ``{"texts": {key: sha256(salt + text)}}`` and the text itself goes
to ``audit_text`` with its random salt, where :func:`erase_text` can delete it without breaking the
chain. Reads merge the text back under its key (``None`` once erased, the key listed in
``details["erased_texts"]``).

Which searches returned which face (``audit_face``, read into access exports) is covered too: every
entry chains ``details["faces_sha256"]``, the SHA-256 of its sorted face ids (:func:`faces_digest`),
and :func:`verify` recomputes it from the rows (entries from before this rule have no digest and are
not checked). Readers never see the key.

Anchors. The chain alone cannot tell a clean cut of its tail (entries and head rewritten back to an
earlier entry) from a shorter history. The Store therefore appends *signed checkpoints* of the head
(``{"seq", "hash", "at", "sig"}``, one JSON line each, Ed25519 over :func:`checkpoint_message`) to a
file beside the master key, outside the catalog; :func:`verify` takes the checkpoints whose
signatures held and reports a chain that ends before one, or disagrees with one. Every compliance
pack carries the checkpoints and the public key, so a regulator checks a pack with
:func:`check_checkpoints` and nothing secret.

Entries are written in the same database transaction as the action they record, so an entry exists
exactly when its action committed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lethe.catalog.dialects import insert_ignoring_duplicates
from lethe.catalog.tables import AuditEntryRow, AuditFaceRow, AuditHeadRow, AuditTextRow
from lethe.errors import CatalogError

GENESIS = "0" * 64
HEAD_ID = 1
FACES_KEY = "faces_sha256"


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
    """What to write about an action; the catalog appends it inside the action's transaction. Built
    by :func:`lethe.privacy.audit.record`, which checks what it may hold."""

    actor: str
    action: str
    details: Mapping[str, Any]
    faces: tuple[int, ...] = ()
    #: Free text kept off the chain (erasable), e.g. ``{"purpose": "..."}``.
    texts: Mapping[str, str] = field(default_factory=dict)

    def with_details(self, **more: Any) -> AuditRecord:
        """The same record with ids the writer learns inside its transaction added."""
        return AuditRecord(self.actor, self.action, dict(self.details) | more, self.faces, self.texts)


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None
    #: The last entry a signed checkpoint vouches for (0: none checked).
    anchored: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "anchored": self.anchored,
        }


def _canonical(seq: int, at: datetime, actor: str, action: str, details: str) -> bytes:
    body = {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "details": details}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(prev_hash: str, seq: int, at: datetime, actor: str, action: str, details: str) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(seq, at, actor, action, details)).hexdigest()


def faces_digest(face_ids: Iterable[int]) -> str:
    """SHA-256 of the sorted, distinct face ids, comma-separated in decimal."""
    return hashlib.sha256(
        ",".join(str(f) for f in sorted(set(int(i) for i in face_ids))).encode()
    ).hexdigest()


def checkpoint_message(seq: int, hash_: str, at: str) -> bytes:
    """What a checkpoint's Ed25519 signature covers."""
    return f"lethe-audit-checkpoint:v1:{seq}:{hash_}:{at}".encode()


def checkpoint_line(seq: int, hash_: str, at: str, signature: bytes) -> str:
    body = {"seq": seq, "hash": hash_, "at": at, "sig": base64.b64encode(signature).decode()}
    return json.dumps(body, sort_keys=True) + "\n"


def check_checkpoints(lines: Iterable[str], public_key: bytes) -> tuple[list[tuple[int, str]], int]:
    """The checkpoints (seq, hash) whose signature ``public_key`` (raw Ed25519) verifies, and how
    many lines did not verify (altered, or signed by another key)."""
    key = Ed25519PublicKey.from_public_bytes(public_key)
    good: list[tuple[int, str]] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            c = json.loads(line)
            key.verify(
                base64.b64decode(c["sig"]), checkpoint_message(int(c["seq"]), str(c["hash"]), str(c["at"]))
            )
        except (InvalidSignature, ValueError, KeyError, TypeError):
            bad += 1
            continue
        good.append((int(c["seq"]), str(c["hash"])))
    return good, bad


def head(session: Session) -> tuple[int, str]:
    """The committed head: (last seq, its hash); (0, GENESIS) before the first entry."""
    row = session.get(AuditHeadRow, HEAD_ID)
    return (row.seq, row.hash) if row is not None else (0, GENESIS)


def text_hash(salt: str, text: str) -> str:
    return hashlib.sha256((salt + text).encode()).hexdigest()


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


def append(session: Session, record: AuditRecord, *, at: datetime) -> AuditEntry:
    """Add an entry inside the caller's transaction (commit it with the action it records)."""
    head = lock_head(session)
    seq = head.seq + 1
    details = dict(record.details)
    details[FACES_KEY] = faces_digest(record.faces)
    salts = {key: secrets.token_hex(16) for key in record.texts}
    if record.texts:
        details["texts"] = {key: text_hash(salts[key], text) for key, text in record.texts.items()}
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
    at = at.astimezone(UTC)
    digest = entry_hash(head.hash, seq, at, record.actor, record.action, text)
    session.add(
        AuditEntryRow(
            seq=seq,
            at=at,
            actor=record.actor,
            action=record.action,
            details=text,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    session.flush()
    session.add_all(AuditFaceRow(seq=seq, face_id=int(f)) for f in set(record.faces))
    session.add_all(
        AuditTextRow(seq=seq, key=key, salt=salts[key], text=value) for key, value in record.texts.items()
    )
    head.seq, head.hash = seq, digest
    return AuditEntry(seq, at, record.actor, record.action, _readable(details, dict(record.texts)), digest)


def erase_text(session: Session, seq: int) -> list[str]:
    """Delete the free text of entry ``seq`` (the chain keeps its salted hash); the keys erased."""
    rows = session.scalars(select(AuditTextRow).where(AuditTextRow.seq == seq)).all()
    for row in rows:
        session.delete(row)
    return sorted(r.key for r in rows)


def _texts_match(row: AuditEntryRow, stored: list[AuditTextRow]) -> bool:
    """Whether every free text still stored for ``row`` is the one its chained hash names."""
    hashes = json.loads(row.details).get("texts", {})
    return all(hashes.get(t.key) == text_hash(t.salt, t.text) for t in stored)


def _readable(details: dict[str, Any], texts: dict[str, str]) -> dict[str, Any]:
    """Chained details as a reader sees them: each off-chain text under its key (None if erased)."""
    details.pop(FACES_KEY, None)
    hashed = details.pop("texts", None)
    if not hashed:
        return details
    erased = sorted(k for k in hashed if k not in texts)
    details.update({k: texts.get(k) for k in hashed})
    if erased:
        details["erased_texts"] = erased
    return details


def _texts_of(session: Session, seqs: Iterable[int]) -> dict[int, dict[str, str]]:
    wanted = sorted(set(seqs))
    out: dict[int, dict[str, str]] = {}
    for start in range(0, len(wanted), 500):
        for row in session.scalars(
            select(AuditTextRow).where(AuditTextRow.seq.in_(wanted[start : start + 500]))
        ):
            out.setdefault(row.seq, {})[row.key] = row.text
    return out


def _entries(session: Session, rows: Iterable[AuditEntryRow]) -> list[AuditEntry]:
    rows = list(rows)
    texts = _texts_of(session, (r.seq for r in rows))
    return [
        AuditEntry(
            r.seq, r.at, r.actor, r.action, _readable(json.loads(r.details), texts.get(r.seq, {})), r.hash
        )
        for r in rows
    ]


def verify(session: Session, batch: int = 10_000, *, anchors: Sequence[tuple[int, str]] = ()) -> Verification:
    """Recompute the whole chain; report the first entry where it breaks. A free text kept off the
    chain must still match the salted hash its entry chains (an erased one is simply absent); an
    entry's ``audit_face`` rows must match the digest it chains. ``anchors`` are signed checkpoints
    (seq, hash), already checked (:func:`check_checkpoints`): the chain must reach and agree with
    each of them."""
    anchored = dict(anchors)
    prev, expected_seq, count = GENESIS, 1, 0
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.seq > last).order_by(AuditEntryRow.seq).limit(batch)
        ).all()
        if not rows:
            break
        texts: dict[int, list[AuditTextRow]] = {}
        for t in session.scalars(
            select(AuditTextRow).where(AuditTextRow.seq > last, AuditTextRow.seq <= rows[-1].seq)
        ):
            texts.setdefault(t.seq, []).append(t)
        faces: dict[int, list[int]] = {}
        for seq, face_id in session.execute(
            select(AuditFaceRow.seq, AuditFaceRow.face_id).where(
                AuditFaceRow.seq > last, AuditFaceRow.seq <= rows[-1].seq
            )
        ):
            faces.setdefault(seq, []).append(face_id)
        for row in rows:
            if row.seq != expected_seq:
                return Verification(False, count, prev, row.seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev:
                return Verification(False, count, prev, row.seq, "chain broken: previous hash differs")
            if entry_hash(prev, row.seq, row.at, row.actor, row.action, row.details) != row.hash:
                return Verification(False, count, prev, row.seq, "entry content was changed")
            if row.seq in texts and not _texts_match(row, texts[row.seq]):
                return Verification(False, count, prev, row.seq, "free text of the entry was changed")
            digest = json.loads(row.details).get(FACES_KEY)
            if digest is not None and digest != faces_digest(faces.get(row.seq, ())):
                return Verification(
                    False, count, prev, row.seq, "the faces recorded for the entry (audit_face) were changed"
                )
            if row.seq in anchored and anchored[row.seq] != row.hash:
                return Verification(
                    False, count, prev, row.seq, "the entry differs from the signed checkpoint of it"
                )
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
        last = rows[-1].seq
    head_seq, head_hash = head(session)
    if (head_seq, head_hash) != (count, prev):
        return Verification(
            False, count, prev, count + 1, "entries at the end were removed or the head was changed"
        )
    top = max(anchored, default=0)
    if top > count:
        return Verification(
            False,
            count,
            prev,
            count + 1,
            f"truncated: the chain ends at entry {count} but a signed checkpoint vouches for entry {top} "
            "(entries at the end were removed and the head rewritten)",
            anchored=top,
        )
    return Verification(True, count, prev, anchored=top)


def entries(
    session: Session, *, action: str | None = None, limit: int = 100, before: int | None = None
) -> list[AuditEntry]:
    query = select(AuditEntryRow).order_by(AuditEntryRow.seq.desc()).limit(limit)
    if action:
        query = query.where(AuditEntryRow.action == action)
    if before:
        query = query.where(AuditEntryRow.seq < before)
    return _entries(session, session.scalars(query))


def count(session: Session, action: str, *, since: datetime) -> int:
    """How many times ``action`` was recorded since ``since``."""
    query = select(func.count()).where(AuditEntryRow.action == action, AuditEntryRow.at >= since)
    return int(session.scalar(query) or 0)


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
        readable = {e.seq: e for e in _entries(session, {r.seq: r for _, r in rows}.values())}
        for face_id, r in rows:
            out[face_id].append(readable[r.seq])
    return out
