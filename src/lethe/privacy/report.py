"""The evidence pack for a regulator (GDPR Arts. 5(2), 30, 31): what is processed, on what basis,
every request and how fast it was answered, every erasure receipt, every order and its proof, and
the audit log with its verified chain head. Every file is listed with its sha256 in ``manifest.json``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.catalog.privacy_tables import ErasureJobRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow, AuditTextRow
from lethe.privacy import audit
from lethe.privacy.pages import render
from lethe.storage import atomic_write, private_dir

if TYPE_CHECKING:
    from lethe.privacy.objections import Objections
    from lethe.privacy.orders import Orders
    from lethe.privacy.requests import SubjectRequests
    from lethe.store import Store

HASH_RULE = (
    "hash = sha256(prev_hash_hex_ascii + canonical_json({seq, at (ISO 8601), actor, action, details "
    "(the stored JSON text)}, keys sorted, separators ',' and ':', ASCII)); the first entry chains from "
    "64 zeros; an off-chain text (audit_texts.jsonl) is checked by details.texts[key] == "
    "sha256(salt + text)"
)


def compliance_pack(
    store: Store, requests: SubjectRequests, orders: Orders, objections: Objections, out: Path, *, actor: str
) -> dict[str, object]:
    folder = private_dir(out)
    generated = now_utc()
    files: dict[str, bytes] = {}

    sources = [
        {
            "source": s.name,
            "lawful_basis_art6": s.lawful_basis,
            "art9_condition": s.art9_condition,
            "purpose": s.purpose,
            "jurisdiction": s.jurisdiction,
            "retention_days": s.retention_days,
            "status": s.status,
            "registered_at": s.created_at.isoformat(),
            "images": images,
            "faces": faces,
        }
        for s, images, faces in store.sources()
    ]
    files["record_of_processing.json"] = _json(
        {
            "generated_at": generated.isoformat(),
            "processing": "face detection and biometric templates (128-D) for search by photo",
            "categories_of_data": ["photos (path/URI only)", "face boxes and crops", "biometric templates"],
            "recipients": "operators of this installation; no transfer by the software",
            "security": "templates and crops AES-GCM encrypted per source; hash-chained audit log",
            "sources": sources,
        }
    )
    rows = []
    for r in requests.list_requests():
        days = (r.answered_at - r.received_at).total_seconds() / 86400 if r.answered_at else None
        rows.append(
            {
                "id": r.id,
                "kind": r.kind,
                "state": r.state,
                "received_at": r.received_at.isoformat(),
                "due_at": r.due_at.isoformat(),
                "extended": bool(r.extension_reason),
                "extension_reason": r.extension_reason or "",
                "answered_at": r.answered_at.isoformat() if r.answered_at else "",
                "response_days": round(days, 2) if days is not None else "",
                "overdue": r.overdue,
                "answered_late": bool(r.answered_at and r.answered_at > r.due_at),
            }
        )
    files["requests.json"] = _json(rows)
    files["requests.csv"] = _csv(rows)
    with store.catalog.session() as session:
        receipts = [
            json.loads(job.receipt)
            for job in session.scalars(select(ErasureJobRow).order_by(ErasureJobRow.id))
            if job.receipt
        ]
        log = [
            {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "details": e.details,
             "prev_hash": e.prev_hash, "hash": e.hash}
            for e in session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq))
        ]  # fmt: skip
        texts = [
            {"seq": t.seq, "key": t.key, "salt": t.salt, "text": t.text}
            for t in session.scalars(select(AuditTextRow).order_by(AuditTextRow.seq, AuditTextRow.key))
        ]
        verification = audit.verify(session)
    files["erasure_receipts.json"] = _json(receipts)
    files["orders.json"] = _json(orders.list_orders())
    files["objections.json"] = _json(objections.list_active())
    files["audit_log.jsonl"] = "".join(json.dumps(e, sort_keys=True) + "\n" for e in log).encode()
    # Free text kept off the chain (stated purposes), with the salt that checks each against the
    # hash its entry chains; an erased (redacted) text is absent.
    files["audit_texts.jsonl"] = "".join(json.dumps(t, sort_keys=True) + "\n" for t in texts).encode()
    files["audit_verification.json"] = _json(verification.as_dict() | {"hash_rule": HASH_RULE})
    files["index.html"] = render(
        "compliance.html",
        generated=generated.isoformat(),
        sources=sources,
        requests=rows,
        receipts=len(receipts),
        verification=verification.as_dict(),
        hash_rule=HASH_RULE,
    ).encode()
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    for name, data in files.items():
        atomic_write(folder / name, data)
    atomic_write(folder / "manifest.json", _json({"generated_at": generated.isoformat(), "sha256": manifest}))
    store.catalog.record(
        audit.record(actor, "report.compliance", {"files": len(files) + 1, "audit_head": verification.head})
    )
    return {
        "out": str(folder),
        "files": sorted([*files, "manifest.json"]),
        "sources": len(sources),
        "requests": len(rows),
        "erasure_receipts": len(receipts),
        "audit_ok": verification.ok,
        "audit_entries": verification.entries,
        "audit_head": verification.head,
    }


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=2, default=str).encode()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue().encode()
