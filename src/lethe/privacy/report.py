"""The evidence pack for a regulator (GDPR Arts. 5(2), 30, 31): what is processed, on what basis,
every request and how fast it was answered, every erasure receipt, every order and its proof, the
consent ledger (``consents.json`` / ``.csv``: GDPR Art. 7(1), never a template or a contact address)
with every version of the consent texts and its sha256 (``consent_texts.json``), and
the audit log with its verified chain head, the faces each entry recorded (``audit_faces.jsonl``), and
the signed checkpoints of the chain's head with the public key that checks them
(``audit_checkpoints.jsonl``, ``audit_public_key.txt``), and the monitoring report
(``monitoring_report.json``, EU AI Act Art. 72: aggregated, no personal data): :func:`verify_pack`
checks a pack from its files alone (each consent text against its sha256, and each consent's text
among them, too). Every file is listed with its sha256 in ``manifest.json``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.catalog import audit_log
from lethe.catalog.privacy_tables import ErasureJobRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow, AuditFaceRow, AuditTextRow
from lethe.privacy import audit, signatures
from lethe.privacy.access_words import art9_words, basis_words, long_date, third_person
from lethe.privacy.consent import text_versions
from lethe.privacy.consent import views as consent_views
from lethe.privacy.monitoring_report import monitoring_report
from lethe.privacy.pages import render
from lethe.privacy.sources import SourceSpec
from lethe.privacy.verification import evidence as verification_evidence
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
    "sha256(salt + text); details.faces_sha256 (where present) == sha256 of the entry's distinct face ids "
    "(audit_faces.jsonl), sorted, decimal, comma-separated; each line of audit_checkpoints.jsonl is an "
    "Ed25519 signature (base64) under audit_public_key.txt (hex, raw 32 bytes) of "
    "'lethe-audit-checkpoint:v1:{seq}:{hash}:{at}', and the log must reach each checkpoint's seq with "
    "that hash; an audit.checkpoint entry's details.signature is an Ed25519 signature (base64) under the "
    "same key of 'lethe-audit-checkpoint-entry:v1:{checkpoint}:{covers.seq}:{covers.hash}:{previous.seq}:"
    "{previous.hash}:{signed_at}', covers is the entry before it and previous the checkpoint entry before "
    "it (0 and 64 zeros for the first); a log pruned for retention starts at a checkpoint entry, and the "
    "last audit.pruned entry names that seq as before_seq"
)


def compliance_pack(
    store: Store, requests: SubjectRequests, orders: Orders, objections: Objections, out: Path, *, actor: str
) -> dict[str, object]:
    folder = private_dir(out)
    generated = now_utc()
    files: dict[str, bytes] = {}

    consents = [c.as_dict() for c in consent_views(store)]
    texts_of_consent = text_versions(store)
    per_source: dict[str, tuple[int, int]] = {}
    for c in consents:
        active, withdrawn = per_source.get(str(c["source"]), (0, 0))
        per_source[str(c["source"])] = (
            (active, withdrawn + 1) if c["withdrawn_at"] else (active + 1, withdrawn)
        )
    sources = [
        {
            "source": s.name,
            "lawful_basis_art6": s.lawful_basis,
            "art9_condition": s.art9_condition,
            "purpose": s.purpose,
            "jurisdiction": s.jurisdiction,
            "retention_days": s.retention_days,
            "mode": s.mode,
            "collection": s.collection,
            "legal_reference": s.legal_reference,
            "lia_reference": s.lia_reference,
            "warnings": SourceSpec.of(s).warnings(),
            "status": s.status,
            "registered_at": s.created_at.isoformat(),
            "images": images,
            "faces": faces,
            "consents_active": per_source.get(s.name, (0, 0))[0],
            "consents_withdrawn": per_source.get(s.name, (0, 0))[1],
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
        faces = [
            {"seq": seq, "face_id": face_id}
            for seq, face_id in session.execute(
                select(AuditFaceRow.seq, AuditFaceRow.face_id).order_by(
                    AuditFaceRow.seq, AuditFaceRow.face_id
                )
            )
        ]
    verification = store.verify_audit()
    checkpoints, _, _ = store.audit_checkpoints()
    public_key = store.keyring.audit_public_key().hex()
    # The consent ledger: who consented (by id), to which text (version and sha256), how, with which
    # age attestation, when, and the withdrawal with its erasure job; never a template or a contact.
    files["consents.json"] = _json(consents)
    files["consents.csv"] = _csv(consents)
    files["consent_texts.json"] = _json(texts_of_consent)
    files["erasure_receipts.json"] = _json(receipts)
    files["orders.json"] = _json(orders.list_orders())
    files["objections.json"] = _json(objections.list_active())
    # Two-person verification (AI Act Art. 14(5)): N, any exemption's legal reference, competences.
    files["verification.json"] = _json(verification_evidence(store))
    # Post-market monitoring (AI Act Art. 72): aggregated counts and score drift, no personal data.
    files["monitoring_report.json"] = _json(monitoring_report(store, now=generated))
    files["audit_log.jsonl"] = "".join(json.dumps(e, sort_keys=True) + "\n" for e in log).encode()
    # Free text kept off the chain (stated purposes), with the salt that checks each against the
    # hash its entry chains; an erased (redacted) text is absent.
    files["audit_texts.jsonl"] = "".join(json.dumps(t, sort_keys=True) + "\n" for t in texts).encode()
    files["audit_faces.jsonl"] = "".join(json.dumps(f, sort_keys=True) + "\n" for f in faces).encode()
    files["audit_checkpoints.jsonl"] = "".join(line + "\n" for line in checkpoints).encode()
    files["audit_public_key.txt"] = (public_key + "\n").encode()
    files["audit_verification.json"] = _json(
        verification.as_dict()
        | {
            "hash_rule": HASH_RULE,
            "audit_public_key": public_key,
            "audit_public_key_sha256": audit_log.key_fingerprint(bytes.fromhex(public_key)),
        }
    )
    parts = _documents(store, generated)
    for name in parts:
        if name in files:
            raise RuntimeError(f"two parts of the compliance pack both write {name}")  # a bug, not input
    files.update(parts)
    files["index.html"] = render(
        "compliance.html",
        controller=store.settings.controller_name,
        dpo_contact=store.settings.dpo_contact,
        generated=generated.isoformat(),
        generated_words=long_date(generated),
        basis_words=lambda basis, reference=None: third_person(basis_words(basis, reference)),
        art9_words=lambda condition: third_person(art9_words(condition)),
        sources=sources,
        requests=rows,
        receipts=len(receipts),
        consents=consents,
        consent_texts=texts_of_consent,
        verification=verification.as_dict(),
        hash_rule=HASH_RULE,
        documents=[d for d in DOCUMENTS if d[0] in files],
        held=set(files),
    ).encode()
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    for name, data in files.items():
        atomic_write(folder / name, data)
    manifest_bytes = _json({"generated_at": generated.isoformat(), "sha256": manifest})
    atomic_write(folder / "manifest.json", manifest_bytes)
    # The manifest names every file's sha256, so its signature vouches for the whole pack.
    record = signatures.sign_bytes(
        store.keyring, MANIFEST_KIND, manifest_bytes, at=generated, file="manifest.json"
    )
    atomic_write(folder / ("manifest.json" + signatures.SUFFIX), signatures.record_bytes(record))
    store.catalog.record(
        audit.record(actor, "report.compliance", {"files": len(files) + 1, "audit_head": verification.head})
    )
    return {
        "out": str(folder),
        "files": sorted([*files, "manifest.json", "manifest.json" + signatures.SUFFIX]),
        "sources": len(sources),
        "requests": len(rows),
        "erasure_receipts": len(receipts),
        "consents": len(consents),
        "audit_ok": verification.ok,
        "audit_entries": verification.entries,
        "audit_head": verification.head,
    }


#: The documents of the pack, each with its title in the pack's contents: (file, title, what it answers).
DOCUMENTS = (
    ("record_of_processing_art30.html", "Record of processing activities", "GDPR Art. 30(1)"),
    ("dpia.html", "Data protection impact assessment", "GDPR Art. 35"),
    ("fria.html", "Fundamental rights impact assessment", "AI Act Art. 27"),
    ("technical_documentation.html", "Technical documentation", "AI Act Art. 11, Annex IV"),
    ("instructions_for_use.html", "Instructions for use", "AI Act Art. 13"),
    ("eu_database_registration.html", "EU database registration", "AI Act Art. 49, Annex VIII"),
    ("incidents.html", "Breaches and serious incidents", "GDPR Arts. 33-34, AI Act Art. 73"),
    ("demographic_report.html", "Demographic performance", "AI Act Art. 10(2)(f)-(g), ISO/IEC 19795-10"),
    ("disclosures.json", "Recipients, disclosures and their notices", "GDPR Arts. 15(1)(c), 19, 30(1)(d)"),
)
MANIFEST_KIND = "compliance-pack-manifest"


def _documents(store: Store, now: datetime) -> dict[str, bytes]:
    """The generated documents of the pack (:data:`DOCUMENTS`), each from the part that owns it."""
    from lethe.privacy import assessments, demographic_report, disclosures, incident_drafts, technical_file

    files: dict[str, bytes] = {}
    for part in (assessments, technical_file, disclosures, incident_drafts, demographic_report):
        for name, data in part.pack_files(store, now=now).items():
            if name in files:
                raise RuntimeError(f"two parts of the compliance pack both write {name}")  # a bug
            files[name] = data
    return files


def verify_pack(folder: Path) -> dict[str, object]:
    """Check a compliance pack from its files alone (no catalog, no secret): the manifest's hashes,
    the chain of ``audit_log.jsonl`` (its off-chain texts and recorded faces included), and every
    signed checkpoint, which the log must reach with the same hash."""
    manifest = json.loads((folder / "manifest.json").read_text())["sha256"]
    altered = sorted(
        n for n, h in manifest.items() if hashlib.sha256((folder / n).read_bytes()).hexdigest() != h
    )
    lines = [json.loads(x) for x in (folder / "audit_log.jsonl").read_text().splitlines() if x]
    texts: dict[int, list[dict[str, Any]]] = {}
    for t in _jsonl(folder / "audit_texts.jsonl"):
        texts.setdefault(int(t["seq"]), []).append(t)
    faces: dict[int, list[int]] = {}
    for f in _jsonl(folder / "audit_faces.jsonl"):
        faces.setdefault(int(f["seq"]), []).append(int(f["face_id"]))
    key = bytes.fromhex((folder / "audit_public_key.txt").read_text().strip())
    anchors, bad_checkpoints = audit_log.check_checkpoints(
        (folder / "audit_checkpoints.jsonl").read_text().splitlines(), key
    )
    hashes: dict[int, str] = {}
    chain = audit_log.CheckpointChain(key)
    first = int(lines[0]["seq"]) if lines else 1
    # A pruned log starts at a checkpoint entry, whose signature vouches for the hash it continues.
    prev, problem = (audit_log.GENESIS if first == 1 else str(lines[0]["prev_hash"])), None
    for n, e in enumerate(lines, start=first):
        details = json.loads(e["details"])
        at = datetime.fromisoformat(e["at"])
        if e["seq"] != n or e["prev_hash"] != prev:
            problem = f"entry {n} is missing or out of order"
        elif audit_log.entry_hash(prev, n, at, e["actor"], e["action"], e["details"]) != e["hash"]:
            problem = f"entry {n} was changed"
        elif any(
            details.get("texts", {}).get(t["key"]) != audit_log.text_hash(t["salt"], t["text"])
            for t in texts.get(n, [])
        ):
            problem = f"a free text of entry {n} was changed"
        elif audit_log.FACES_KEY in details and details[audit_log.FACES_KEY] != audit_log.faces_digest(
            faces.get(n, ())
        ):
            problem = f"the faces recorded for entry {n} were changed"
        else:
            problem = chain.feed(n, e["prev_hash"], e["hash"], e["action"], details)
        if problem:
            break
        hashes[n], prev = e["hash"], e["hash"]
    for seq, hash_ in anchors:
        if seq < first:
            continue  # vouches for an entry pruned for retention
        if problem is None and hashes.get(seq) != hash_:
            problem = (
                f"a signed checkpoint names entry {seq}, which the log lacks or holds otherwise (truncated?)"
            )
    if problem is None:
        problem = chain.finish()
    if problem is None and bad_checkpoints:
        problem = f"{bad_checkpoints} checkpoint(s) do not verify under the pack's public key"
    if problem is None:
        problem = _consent_texts_problem(folder)
    if problem is None and altered:
        problem = f"files differ from the manifest: {', '.join(altered)}"
    if problem is None:
        problem = _manifest_signature_problem(folder)
    return {
        "ok": problem is None,
        "entries": len(hashes),
        "anchored": max((s for s, _ in anchors), default=0),
        "pruned_before": first if first != 1 else 0,
        "checkpoints": chain.count,
        "problem": problem,
    }


def _manifest_signature_problem(folder: Path) -> str | None:
    """The manifest's signature under the pack's signing key (``signing_key.json``; compare its
    ``key_sha256`` with the one the installation publishes at ``/api/signing-key``). A pack made
    before packs were signed has neither file: nothing to check."""
    record_file = folder / ("manifest.json" + signatures.SUFFIX)
    key_file = folder / "signing_key.json"
    if not record_file.exists() and not key_file.exists():
        return None
    if not record_file.exists() or not key_file.exists():
        return "the manifest's signature or the signing key is missing from the pack"
    key = bytes.fromhex(str(json.loads(key_file.read_text())["public_key"]))
    check = signatures.verify(
        (folder / "manifest.json").read_bytes(), json.loads(record_file.read_text()), key
    )
    if not check.ok:
        return f"the manifest's signature does not verify: {check.reason}"
    return None if check.kind == MANIFEST_KIND else f"the manifest is signed as a {check.kind}, not a pack"


def _consent_texts_problem(folder: Path) -> str | None:
    """Each consent text matches its sha256, and each consent names a text version the pack holds
    with that sha256 (a pack made before the ledger has neither file: nothing to check)."""
    texts_file, consents_file = folder / "consent_texts.json", folder / "consents.json"
    texts = json.loads(texts_file.read_text()) if texts_file.exists() else []
    held: dict[tuple[str, int], str] = {}
    for t in texts:
        if hashlib.sha256(str(t["text"]).encode()).hexdigest() != t["sha256"]:
            return f"version {t['version']} of the consent text of {t['source']!r} differs from its sha256"
        held[(str(t["source"]), int(t["version"]))] = str(t["sha256"])
    for c in json.loads(consents_file.read_text()) if consents_file.exists() else []:
        if held.get((str(c["source"]), int(c["text_version"]))) != c["text_sha256"]:
            return f"consent {c['consent']} names a consent text the pack does not hold"
    return None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x] if path.exists() else []


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=2, default=str).encode()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue().encode()
