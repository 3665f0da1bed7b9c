"""Log retention (EU AI Act Arts. 19(1) and 26(6), issue 18): the audit log is kept at least six
months (``LETHE_LOG_RETENTION_DAYS``, 183 by default, shorter refused), then pruned so that what
remains still verifies.

- **Checkpoints** (:meth:`AuditRetention.checkpoint`, ``lethe audit checkpoint``; at each prune; at
  most daily from the service's maintenance pass): an ``audit.checkpoint`` entry of the chain itself,
  signed with the installation's Ed25519 audit key (:mod:`lethe.keyring`), naming the head it covers
  and the checkpoint before it (:mod:`lethe.catalog.audit_log`).
- **Pruning** (:meth:`AuditRetention.prune`, ``lethe audit prune``, the maintenance pass): the entries
  older than the retention are deleted with their off-chain texts and recorded faces, but only up to
  (not including) a checkpoint entry, so that the remaining log starts at a signed statement of the
  hash it continues from; an ``audit.pruned`` entry says how many went and up to which seq, and a new
  checkpoint follows it. The deleted bytes are purged from the catalog's files.
- **What another rule keeps**: while a data subject's request is open, the log is kept as it stood
  when the oldest open request was received (its answer may list the searches that returned the
  person's faces), so the cutoff moves back by that much. No other rule holds audit entries today.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lethe.catalog import audit_log
from lethe.catalog.audit_log import AuditEntry, Checkpoint
from lethe.catalog.privacy_tables import RequestRow
from lethe.catalog.repository import now_utc
from lethe.privacy import audit
from lethe.privacy.requests.workflow import OPEN_STATES

if TYPE_CHECKING:
    from lethe.store import Store

#: The maintenance pass appends a checkpoint when the last one is at least this old.
CHECKPOINT_EVERY = timedelta(days=1)


class AuditRetention:
    """Checkpoints and pruning of one store's audit log (see the module)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def retention_days(self) -> int:
        return self.store.settings.log_retention_days

    def public_key(self) -> dict[str, str]:
        """The audit signing key's public half (hex, raw 32 bytes) and its SHA-256 fingerprint."""
        key = self.store.keyring.audit_public_key()
        return {"algorithm": "Ed25519", "public_key": key.hex(), "key_sha256": audit_log.key_fingerprint(key)}

    def checkpoint(self, *, actor: str, now: datetime | None = None) -> dict[str, object]:
        """Append a signed checkpoint entry of the head, unless the head is one already."""
        at = now or now_utc()
        with self.store.writing(), self.store.catalog.session() as session, session.begin():
            last = audit_log.last_checkpoint(session)
            created = self._due(session, last, at, every=timedelta(0))
            entry = self._append_checkpoint(session, actor, at) if created else None
            last = audit_log.last_checkpoint(session)
        return _described(last, entry)

    def prune(
        self, *, actor: str, now: datetime | None = None, checkpoint_every: timedelta = timedelta(0)
    ) -> dict[str, object]:
        """Delete the entries older than the retention, up to a checkpoint entry (see the module);
        audited as ``audit.pruned``, then a checkpoint when something was pruned or the last one is
        at least ``checkpoint_every`` old."""
        at = now or now_utc()
        days = self.retention_days
        cutoff = at - timedelta(days=days)
        with self.store.writing():
            with self.store.catalog.session() as session, session.begin():
                held = _held_until(session, days)
                limit = min(cutoff, held) if held is not None else cutoff
                before = audit_log.prunable_checkpoint(session, older_than=limit)
                pruned = 0
                if before is not None and before > audit_log.first_seq(session):
                    pruned = audit_log.prune_before(session, before)
                    audit.append(
                        session,
                        actor=actor,
                        action=audit_log.PRUNED,
                        details={
                            "entries": pruned,
                            "before_seq": before,
                            "retention_days": days,
                            "cutoff": limit.isoformat(),
                            "held_by_open_requests": limit < cutoff,
                        },
                        at=at,
                    )
                last = audit_log.last_checkpoint(session)
                entry = None
                if pruned or self._due(session, last, at, every=checkpoint_every):
                    entry = self._append_checkpoint(session, actor, at)
                    last = audit_log.last_checkpoint(session)
            if pruned:
                self.store.catalog.checkpoint()  # the deleted entries' bytes leave the catalog's files
        return {
            "pruned": pruned,
            "pruned_before": before if pruned else 0,
            "retention_days": days,
            "cutoff": limit.isoformat(),
            "held_by_open_requests": limit < cutoff,
            **_described(last, entry),
        }

    def sweep(self, *, actor: str, now: datetime | None = None) -> dict[str, object]:
        """The maintenance pass: prune, and a checkpoint at most daily."""
        return self.prune(actor=actor, now=now, checkpoint_every=CHECKPOINT_EVERY)

    def _due(self, session: Session, last: Checkpoint | None, at: datetime, *, every: timedelta) -> bool:
        """Whether a new checkpoint is due: the head moved past the last one, which is ``every`` old."""
        head_seq, _ = audit_log.head(session)
        if head_seq == 0 or (last is not None and last.seq == head_seq):
            return False
        return last is None or last.at is None or last.at <= at - every

    def _append_checkpoint(self, session: Session, actor: str, at: datetime) -> AuditEntry:
        keyring = self.store.keyring
        details = audit_log.checkpoint_details(
            session, sign=keyring.sign_audit, public_key=keyring.audit_public_key(), at=at
        )
        return audit.append(session, actor=actor, action=audit_log.CHECKPOINT, details=details, at=at)


def _held_until(session: Session, days: int) -> datetime | None:
    """The cutoff the oldest open rights request holds the log to (the retention counted from when
    it was received), or None when no request is open."""
    oldest = session.scalar(select(func.min(RequestRow.received_at)).where(RequestRow.state.in_(OPEN_STATES)))
    return None if oldest is None else oldest - timedelta(days=days)


def _described(last: Checkpoint | None, entry: AuditEntry | None) -> dict[str, object]:
    return {
        "checkpoint": last.number if last else None,
        "checkpoint_seq": last.seq if last else None,
        "checkpoint_created": entry is not None,
    }
