"""The audit policy: what an entry of the audit log may hold. The chain itself (append, verify, read)
is storage, in :mod:`lethe.catalog.audit_log`; every record written to it is built here.

- Never templates, pixels, contact addresses or names of data subjects: details holding such a key
  are refused (:class:`~lethe.errors.PrivacyError`).
- Free text that may name a person — a search's stated purpose, an operator's note or reason — is
  kept off the immutable chain: it goes in the record's ``texts``, stored erasable beside the chain
  with only its salted hash chained (:func:`redact` erases it; the chain still verifies). Such a key
  inside ``details`` is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog import audit_log
from lethe.catalog.audit_log import (
    AuditEntry,
    AuditRecord,
    Verification,
    count,
    entries,
    entries_for_faces,
    verify,
)
from lethe.catalog.tables import AuditEntryRow
from lethe.errors import NotFoundError, PrivacyError

__all__ = [
    "FORBIDDEN_KEYS",
    "FREE_TEXT_KEYS",
    "AuditEntry",
    "AuditRecord",
    "Verification",
    "append",
    "count",
    "entries",
    "entries_at",
    "entries_for_faces",
    "record",
    "redact",
    "verify",
]

#: Keys no audit entry may hold.
FORBIDDEN_KEYS = frozenset(
    {"embedding", "embeddings", "template", "pixels", "image_bytes", "name", "contact"}
)
#: Free-text keys: allowed only off the chain, in ``texts``.
FREE_TEXT_KEYS = frozenset({"purpose", "note", "comment", "reference"})


def record(
    actor: str,
    action: str,
    details: Mapping[str, Any],
    faces: Iterable[int] = (),
    *,
    texts: Mapping[str, str] | None = None,
) -> AuditRecord:
    """A record the audit log may hold (see the module), or :class:`PrivacyError`."""
    bad = FORBIDDEN_KEYS.intersection(details)
    if bad:
        raise PrivacyError(f"audit details may not hold {sorted(bad)}")
    free = FREE_TEXT_KEYS.intersection(details)
    if free:
        raise PrivacyError(f"free text {sorted(free)} is kept off the audit chain: pass it as texts")
    texts = dict(texts or {})
    unknown = set(texts) - FREE_TEXT_KEYS
    if unknown:
        raise PrivacyError(f"audit texts may hold only {sorted(FREE_TEXT_KEYS)}, not {sorted(unknown)}")
    return AuditRecord(actor, action, dict(details), tuple(int(f) for f in faces), texts)


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    details: Mapping[str, Any],
    at: datetime,
    faces: Iterable[int] = (),
    texts: Mapping[str, str] | None = None,
) -> AuditEntry:
    """Check and add an entry inside the caller's transaction (commit it with the action)."""
    return audit_log.append(session, record(actor, action, details, faces, texts=texts), at=at)


def redact(session: Session, seq: int, *, actor: str, reason: str, at: datetime) -> list[str]:
    """Erase the free text of entry ``seq`` (e.g. a purpose that names someone); the chain keeps its
    salted hash and the redaction is itself audited (its reason off the chain too). Returns the keys
    erased."""
    if session.get(AuditEntryRow, seq) is None:
        raise NotFoundError(f"no audit entry {seq}")
    erased = audit_log.erase_text(session, seq)
    append(
        session,
        actor=actor,
        action="audit.redact",
        details={"seq": seq, "keys": erased},
        at=at,
        texts={"note": reason},
    )
    return erased


def entries_at(session: Session, seqs: Iterable[int]) -> list[AuditEntry]:
    """The entries numbered ``seqs`` still held (a prune may have removed older ones), by seq, with
    their free texts."""
    wanted = sorted({int(s) for s in seqs})
    rows: list[AuditEntryRow] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows.extend(session.scalars(select(AuditEntryRow).where(AuditEntryRow.seq.in_(chunk))))
    return audit_log._entries(session, sorted(rows, key=lambda r: r.seq))
