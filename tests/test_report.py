"""The evidence pack: complete, consistent with the catalog, and independently verifiable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lethe.engine import Lethe
from lethe.catalog.audit_log import GENESIS, entry_hash

from conftest import copy_gallery, make_settings


def test_compliance_pack(gallery: Path, tmp_path: Path, fixtures_dir: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = (fixtures_dir / "identities" / "rose_leslie" / "img1.jpg").read_bytes()
    with Lethe(make_settings(data)) as lethe:
        requests = lethe.requests
        erasure = requests.open(kind="erasure", photos=[probe], contact="rose@example.org", actor="dpo")
        requests.run(erasure.id, actor="dpo", auto_only=True)
        requests.open(kind="access", photos=[probe], contact="rose@example.org", actor="dpo")
        result = lethe.compliance_pack(tmp_path / "pack", actor="dpo")
        assert lethe.verify_audit().ok
    pack = tmp_path / "pack"
    manifest = json.loads((pack / "manifest.json").read_text())["sha256"]
    assert set(manifest) | {"manifest.json"} == set(result["files"])  # type: ignore[arg-type]
    for name, digest in manifest.items():
        assert hashlib.sha256((pack / name).read_bytes()).hexdigest() == digest
    record = json.loads((pack / "record_of_processing.json").read_text())
    (source,) = record["sources"]
    assert (source["source"], source["lawful_basis_art6"], source["jurisdiction"]) == (
        "events",
        "consent",
        "FR",
    )
    requests_rows = json.loads((pack / "requests.json").read_text())
    assert [(r["kind"], r["state"]) for r in requests_rows] == [
        ("erasure", "answered"),
        ("access", "received"),
    ]
    assert requests_rows[0]["response_days"] != "" and requests_rows[1]["answered_at"] == ""
    (receipt,) = json.loads((pack / "erasure_receipts.json").read_text())
    assert receipt["erased_faces"] and receipt["reason"] == "erasure request"
    # Anyone can recompute the chain from the exported log with the documented rule.
    prev = GENESIS
    lines = (pack / "audit_log.jsonl").read_text().splitlines()
    from datetime import datetime

    for line in lines:
        e = json.loads(line)
        at = datetime.fromisoformat(e["at"])
        assert e["prev_hash"] == prev
        assert entry_hash(prev, e["seq"], at, e["actor"], e["action"], e["details"]) == e["hash"]
        prev = e["hash"]
    verification = json.loads((pack / "audit_verification.json").read_text())
    assert verification["ok"] and verification["head"] == prev == result["audit_head"]
    assert "rose" not in (pack / "audit_log.jsonl").read_text().lower()
