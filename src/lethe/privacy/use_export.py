"""One use's whole record for a regulator (``lethe audit export --use ID``, ``GET
/api/uses/{id}/export``; EU AI Act Art. 12(3)): the use (purpose, case reference, who, opened and
closed), its ``use.open``/``use.close`` entries, and every search in it with its audit entry's
details (the reference database, the probe's hash, what it returned), the probe's presence (kept
sealed under the log key after a match, until its expiry; never stored otherwise), and its
verifiers.

**Verifiers.** The two-person verification of a match records its verdicts in the audit log as
entries whose action starts with ``verification.`` and whose details carry ``search_seq``, the seq
of the search's audit entry (and, when given, ``verdict``); each search lists those entries here,
oldest first. Until that verification exists the lists are empty.

**Probes.** The export names each probe by its SHA-256 and says whether it is still kept; only with
``with_probes`` (a regulator's request, decided by an admin or the DPO) does it carry the kept
probes' bytes, decrypted, base64-encoded. Every export is audited (``audit.export``), saying whether
probes were included.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.catalog.privacy_tables import SearchLogRow, SearchUseRow
from lethe.catalog.tables import AuditEntryRow
from lethe.privacy import audit
from lethe.privacy.audit import AuditEntry
from lethe.privacy.uses import Uses

if TYPE_CHECKING:
    from lethe.privacy.gate import Gate

#: Audit actions of the two-person verification (see the module).
VERIFICATION_PREFIX = "verification."


def _entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "details": entry.details,
        "hash": entry.hash,
    }


def export_use(
    uses: Uses, gate: Gate, use_id: int, *, actor: str, with_probes: bool = False
) -> dict[str, Any]:
    """The record of ``use_id`` as a JSON-ready dict (see the module); audited."""
    store = gate.store
    use = uses.get(use_id)
    with store.catalog.session() as session:
        logs = session.scalars(
            select(SearchLogRow).where(SearchLogRow.use_id == use_id).order_by(SearchLogRow.seq)
        ).all()
        first = min([r.seq for r in logs], default=None)
        opened_seq = session.scalar(select(SearchUseRow.opened_seq).where(SearchUseRow.id == use_id))
        lifecycle_seqs = session.scalars(
            select(AuditEntryRow.seq).where(
                AuditEntryRow.action.in_(("use.open", "use.close")),
                AuditEntryRow.seq >= (opened_seq or 0),
            )
        ).all()
        verification_seqs = (
            session.scalars(
                select(AuditEntryRow.seq).where(
                    AuditEntryRow.action.startswith(VERIFICATION_PREFIX), AuditEntryRow.seq > first
                )
            ).all()
            if first is not None
            else []
        )
        searched = {e.seq: e for e in audit.entries_at(session, [r.seq for r in logs])}
        lifecycle = [e for e in audit.entries_at(session, lifecycle_seqs) if e.details.get("use") == use_id]
        verifications = audit.entries_at(session, verification_seqs)
    verifiers: dict[int, list[dict[str, Any]]] = {}
    for v in verifications:
        target = v.details.get("search_seq")
        if isinstance(target, int):
            verifiers.setdefault(target, []).append(_entry(v) | {"verdict": v.details.get("verdict")})
    searches = []
    for row in logs:
        entry = searched.get(row.seq)
        probe: dict[str, Any] = {
            "sha256": row.probe_sha256,
            "matched": row.matched,
            "kept": row.probe is not None,
            "expires_at": row.probe_expires_at.isoformat() if row.probe_expires_at else None,
            "deleted_at": row.probe_deleted_at.isoformat() if row.probe_deleted_at else None,
        }
        if with_probes and row.probe is not None:
            photo = gate.search_probe(row.seq)
            probe["bytes_base64"] = base64.b64encode(photo).decode() if photo is not None else None
        searches.append(
            {
                "seq": row.seq,
                "at": row.at.isoformat(),
                # None when the log retention pruned the entry itself
                "entry": _entry(entry) if entry is not None else None,
                "probe": probe,
                "verifiers": verifiers.get(row.seq, []),
            }
        )
    store.catalog.record(
        audit.record(
            actor,
            "audit.export",
            {"use": use_id, "searches": len(searches), "with_probes": bool(with_probes)},
        )
    )
    return {"use": use.as_dict(), "events": [_entry(e) for e in lifecycle], "searches": searches}
