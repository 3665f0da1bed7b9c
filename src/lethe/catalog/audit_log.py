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

Checkpoint entries and pruning (log retention, EU AI Act Arts. 19 and 26(6)). A *checkpoint entry*
(action ``audit.checkpoint``) is an entry of the chain itself whose details hold the head it covers
(the entry just before it: ``covers = {seq, hash}``), its number, the previous checkpoint entry
(``previous = {seq, hash}``, ``{0, 64 zeros}`` for the first) and an Ed25519 signature over
:func:`checkpoint_entry_message`. Entries older than the retention may be deleted (:func:`prune_before`)
only up to, not including, a checkpoint entry, and an ``audit.pruned`` entry says up to which seq: the
remaining chain then starts at a signed statement of the hash it continues from. :func:`verify`
(with the public key) checks every checkpoint entry's signature, that each names the one before it,
and that a chain not starting at entry 1 starts at a checkpoint which the last prune record names
(:class:`CheckpointChain`; :func:`lethe.privacy.report.verify_pack` uses the same checks).

Entries are written in the same database transaction as the action they record, so an entry exists
exactly when its action committed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lethe.catalog.dialects import insert_ignoring_duplicates
from lethe.catalog.tables import AuditEntryRow, AuditFaceRow, AuditHeadRow, AuditTextRow
from lethe.errors import CatalogError

GENESIS = "0" * 64
HEAD_ID = 1
FACES_KEY = "faces_sha256"
#: The actions of a checkpoint entry and of a prune's record.
CHECKPOINT = "audit.checkpoint"
PRUNED = "audit.pruned"


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
    #: Entries before this seq were pruned (0: none ever were).
    pruned_before: int = 0
    #: Checkpoint entries checked (signature and sequence).
    checkpoints: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "anchored": self.anchored,
            "pruned_before": self.pruned_before,
            "checkpoints": self.checkpoints,
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


def checkpoint_entry_message(
    number: int, seq: int, hash_: str, previous_seq: int, previous_hash: str, signed_at: str
) -> bytes:
    """What a checkpoint entry's Ed25519 signature covers: its number, the entry it covers (seq and
    hash), the previous checkpoint entry (seq and hash; 0 and 64 zeros for the first) and when."""
    return (
        f"lethe-audit-checkpoint-entry:v1:{number}:{seq}:{hash_}:{previous_seq}:{previous_hash}:{signed_at}"
    ).encode()


def key_fingerprint(public_key: bytes) -> str:
    """SHA-256 (hex) of a raw Ed25519 public key: how a pack, a checkpoint and the CLI name the key."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint entry of the chain: its number, seq, entry hash and when it was written."""

    number: int
    seq: int
    hash: str
    at: datetime | None = None


def last_checkpoint(session: Session) -> Checkpoint | None:
    row = session.scalars(
        select(AuditEntryRow)
        .where(AuditEntryRow.action == CHECKPOINT)
        .order_by(AuditEntryRow.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Checkpoint(int(json.loads(row.details)["checkpoint"]), row.seq, row.hash, row.at)


def checkpoint_details(
    session: Session, *, sign: Callable[[bytes], bytes], public_key: bytes, at: datetime
) -> dict[str, Any]:
    """The details of a checkpoint entry of the head as it is in this transaction (the head is
    locked until it ends: append the entry in the same transaction)."""
    locked = lock_head(session)
    last = last_checkpoint(session)
    number = last.number + 1 if last else 1
    previous_seq, previous_hash = (last.seq, last.hash) if last else (0, GENESIS)
    signed_at = at.astimezone(UTC).isoformat()
    message = checkpoint_entry_message(
        number, locked.seq, locked.hash, previous_seq, previous_hash, signed_at
    )
    return {
        "checkpoint": number,
        "covers": {"seq": locked.seq, "hash": locked.hash},
        "previous": {"seq": previous_seq, "hash": previous_hash},
        "signed_at": signed_at,
        "key_sha256": key_fingerprint(public_key),
        "signature": base64.b64encode(sign(message)).decode(),
    }


def first_seq(session: Session) -> int:
    """The seq of the oldest entry still held (0 when the log is empty)."""
    return int(session.scalar(select(func.min(AuditEntryRow.seq))) or 0)


def prunable_checkpoint(session: Session, *, older_than: datetime) -> int | None:
    """The latest checkpoint entry before which every entry is older than ``older_than`` (the seq a
    prune may delete up to, not including), or None."""
    candidates = session.scalars(
        select(AuditEntryRow.seq)
        .where(AuditEntryRow.action == CHECKPOINT, AuditEntryRow.at < older_than)
        .order_by(AuditEntryRow.seq.desc())
    )
    for seq in candidates:
        newer = session.scalar(
            select(func.count()).where(AuditEntryRow.seq < seq, AuditEntryRow.at >= older_than)
        )
        if not newer:  # clocks that went backwards: fall back to an earlier checkpoint
            return int(seq)
    return None


def prune_before(session: Session, seq: int) -> int:
    """Delete every entry before ``seq`` with its off-chain texts and recorded faces, inside the
    caller's transaction (which appends the ``audit.pruned`` record); how many entries went."""
    session.execute(delete(AuditFaceRow).where(AuditFaceRow.seq < seq))
    session.execute(delete(AuditTextRow).where(AuditTextRow.seq < seq))
    gone = session.scalar(select(func.count()).where(AuditEntryRow.seq < seq))
    session.execute(delete(AuditEntryRow).where(AuditEntryRow.seq < seq))
    return int(gone or 0)


class CheckpointChain:
    """The checks of checkpoint entries and pruning, fed every entry of a chain in order (by
    :func:`verify` and by a pack's verifier): each returns a problem or None. Signatures are
    checked when a public key is given."""

    def __init__(self, public_key: bytes | None) -> None:
        self.key = Ed25519PublicKey.from_public_bytes(public_key) if public_key is not None else None
        self.first: int | None = None
        self.last: Checkpoint | None = None
        self.count = 0
        self.pruned_before = 0

    def feed(
        self, seq: int, prev_hash: str, hash_: str, action: str, details: Mapping[str, Any]
    ) -> str | None:
        if self.first is None:
            self.first = seq
            if seq != 1 and action != CHECKPOINT:
                return (
                    f"entries before {seq} were removed: the log does not start at entry 1 "
                    "nor at a signed checkpoint"
                )
        if action == PRUNED:
            self.pruned_before = int(details.get("before_seq", 0))
        if action != CHECKPOINT:
            return None
        problem = self._check(seq, prev_hash, details)
        if problem is None:
            self.last = Checkpoint(int(details["checkpoint"]), seq, hash_)
            self.count += 1
        return problem

    def _check(self, seq: int, prev_hash: str, d: Mapping[str, Any]) -> str | None:
        try:
            number, covers, previous = int(d["checkpoint"]), dict(d["covers"]), dict(d["previous"])
            message = checkpoint_entry_message(
                number, int(covers["seq"]), str(covers["hash"]), int(previous["seq"]), str(previous["hash"]),
                str(d["signed_at"]),
            )  # fmt: skip
            signature = base64.b64decode(str(d["signature"]), validate=True)
        except (KeyError, TypeError, ValueError):
            return f"checkpoint entry {seq} is malformed"
        if covers != {"seq": seq - 1, "hash": prev_hash}:
            return f"checkpoint entry {seq} does not cover the entry before it"
        if self.key is not None:
            try:
                self.key.verify(signature, message)
            except InvalidSignature:
                return f"the signature of checkpoint entry {seq} does not verify under the audit public key"
        if self.last is not None:
            expected = (self.last.number + 1, {"seq": self.last.seq, "hash": self.last.hash})
        elif seq == self.first and seq != 1:
            return None  # the first of a pruned log: the checkpoint before it was pruned
        else:
            expected = (1, {"seq": 0, "hash": GENESIS})
        if (number, previous) != expected:
            return (
                f"checkpoint entry {seq} (number {number}) does not name the checkpoint before it: "
                "a checkpoint was removed or altered"
            )
        return None

    def finish(self) -> str | None:
        """The problem of a log whose start was cut without a prune record naming it, or None."""
        if self.first not in (None, 1) and self.pruned_before != self.first:
            return (
                f"entries before {self.first} were removed without a prune record naming them "
                f"(the last audit.pruned names {self.pruned_before or 'none'})"
            )
        return None


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


def verify(
    session: Session,
    batch: int = 10_000,
    *,
    anchors: Sequence[tuple[int, str]] = (),
    public_key: bytes | None = None,
) -> Verification:
    """Recompute the whole chain; report the first entry where it breaks. A free text kept off the
    chain must still match the salted hash its entry chains (an erased one is simply absent); an
    entry's ``audit_face`` rows must match the digest it chains. ``anchors`` are signed checkpoints
    (seq, hash), already checked (:func:`check_checkpoints`): the chain must reach and agree with
    each of them (those before a prune name entries no longer held and are passed over). A pruned
    chain starts at a checkpoint entry; checkpoint entries are checked by :class:`CheckpointChain`
    (their signatures only with ``public_key``)."""
    anchored = dict(anchors)
    chain = CheckpointChain(public_key)
    prev, expected_seq, count = GENESIS, 0, 0
    last = 0

    def broken(seq: int, problem: str, anchored_seq: int = 0) -> Verification:
        pruned = chain.first if chain.first not in (None, 1) else 0
        return Verification(False, count, prev, seq, problem, anchored_seq, pruned or 0, chain.count)

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
            if not expected_seq:  # the first entry held: 1, or a checkpoint after a prune (checked below)
                expected_seq = row.seq
                prev = GENESIS if row.seq == 1 else row.prev_hash
            if row.seq != expected_seq:
                return broken(row.seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev:
                return broken(row.seq, "chain broken: previous hash differs")
            if entry_hash(prev, row.seq, row.at, row.actor, row.action, row.details) != row.hash:
                return broken(row.seq, "entry content was changed")
            if row.seq in texts and not _texts_match(row, texts[row.seq]):
                return broken(row.seq, "free text of the entry was changed")
            details = json.loads(row.details)
            digest = details.get(FACES_KEY)
            if digest is not None and digest != faces_digest(faces.get(row.seq, ())):
                return broken(row.seq, "the faces recorded for the entry (audit_face) were changed")
            if row.seq in anchored and anchored[row.seq] != row.hash:
                return broken(row.seq, "the entry differs from the signed checkpoint of it")
            problem = chain.feed(row.seq, row.prev_hash, row.hash, row.action, details)
            if problem is not None:
                return broken(row.seq, problem)
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
        last = rows[-1].seq
    end = max(expected_seq - 1, 0)
    problem = chain.finish()
    if problem is not None:
        return broken(chain.first or 0, problem)
    head_seq, head_hash = head(session)
    if (head_seq, head_hash) != (end, prev):
        return broken(end + 1, "entries at the end were removed or the head was changed")
    top = max(anchored, default=0)
    if top > end:
        return broken(
            end + 1,
            f"truncated: the chain ends at entry {end} but a signed checkpoint vouches for entry {top} "
            "(entries at the end were removed and the head rewritten)",
            top,
        )
    pruned = chain.first if chain.first not in (None, 1) else 0
    return Verification(True, count, prev, anchored=top, pruned_before=pruned or 0, checkpoints=chain.count)


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
