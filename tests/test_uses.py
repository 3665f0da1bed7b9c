"""Uses and the per-search log (issue 18, EU AI Act Art. 12(3)(a)): every search belongs to a use,
its audit entry names the reference database and the probe, the probe of a match is kept sealed for
the log retention and then deleted (a no-match probe never is), and one use's whole record is
exported for a regulator."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from sqlalchemy import select
from test_cli import run

from lethe.catalog.privacy_tables import SearchLogRow
from lethe.engine import Lethe
from lethe.errors import PrivacyError
from lethe.privacy import audit
from lethe.privacy.use_export import export_use

from api_support import add_user, assert_error, bearer, jpeg, serve
from conftest import copy_gallery, make_settings, occurrences

pytestmark = pytest.mark.usefixtures("default_models")

REQUIRED = {
    "use",
    "model_sha256",
    "sources_searched",
    "sources_excluded",
    "sources_restricted",
    "index_generation",
    "gallery_faces",
    "threshold",
    "probe_sha256",
}


def _biden(fixtures_dir: Path) -> Path:
    return fixtures_dir / "identities" / "joe_biden" / "biden.jpg"


def _mirrored(path: Path) -> bytes:
    """The same face, not the same bytes: a probe that is close to a stored face but not a copy."""
    out = io.BytesIO()
    ImageOps.mirror(Image.open(path).convert("RGB")).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_cli_search_without_use_continues_the_current_use_and_logs_the_reference_database(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = str(_biden(fixtures_dir))
    first = run(data, "search", probe, "--purpose", "case 12: who is this", "--json")
    assert first.returncode == 0, first.stderr
    second = run(data, "search", probe, "--purpose", "case 12: again", "--json")
    use = json.loads(first.stdout)["use"]
    assert json.loads(second.stdout)["use"] == use  # continued, not a new use

    entry = json.loads(run(data, "audit", "list", "--action", "search", "--limit", "1", "--json").stdout)[
        "entries"
    ][0]
    details = entry["details"]
    assert set(details) >= REQUIRED
    assert details["use"] == use and details["sources_searched"] == ["events"]
    assert details["sources_excluded"] == [] and details["sources_restricted"] == []
    assert details["gallery_faces"] > 0 and details["index_generation"]
    assert details["probe_sha256"] == hashlib.sha256(_biden(fixtures_dir).read_bytes()).hexdigest()
    assert details["probe_stored"] is True  # it matched

    listed = json.loads(run(data, "use", "list", "--json").stdout)["uses"]
    assert [(u["id"], u["searches"], u["open"]) for u in listed] == [(use, 2, True)]
    assert listed[0]["purpose"] == "case 12: who is this"  # the first search opened it

    closed = run(data, "use", "close", str(use), "--json")
    assert closed.returncode == 0 and json.loads(closed.stdout)["close_reason"] == "closed"
    refused = run(data, "search", probe, "--purpose", "late", "--use", str(use), "--json")
    assert refused.returncode == 4 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and f"use {use} was closed" in refused.stderr

    opened = json.loads(
        run(data, "use", "open", "--purpose", "missing person", "--reference", "FILE-77", "--json").stdout
    )
    assert opened["reference"] == "FILE-77" and opened["id"] != use
    third = run(data, "search", probe, "--purpose", "in the new case", "--use", str(opened["id"]), "--json")
    assert third.returncode == 0 and json.loads(third.stdout)["use"] == opened["id"]

    out = tmp_path / "use.json"
    exported = run(data, "audit", "export", "--use", str(use), "--out", str(out), "--json")
    assert exported.returncode == 0, exported.stderr
    record = json.loads(out.read_text())
    assert record["use"]["id"] == use and record["use"]["close_reason"] == "closed"
    assert [e["action"] for e in record["events"]] == ["use.open", "use.close"]
    assert len(record["searches"]) == 2
    for search in record["searches"]:
        assert set(search["entry"]["details"]) >= REQUIRED
        assert search["probe"]["kept"] is True and "bytes_base64" not in search["probe"]
        assert search["verifiers"] == []
    verify = json.loads(run(data, "audit", "verify", "--json").stdout)
    assert verify["ok"] is True


def test_a_use_times_out_is_closed_when_noticed_and_is_refused_by_name(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = _biden(fixtures_dir).read_bytes()
    with Lethe(make_settings(data, use_timeout_minutes=30)) as lethe:
        clock = [datetime(2027, 1, 4, 9, 0, tzinfo=UTC)]
        lethe.uses.clock = lambda: clock[0]
        first = lethe.search(probe, purpose="morning case", actor="olga")
        clock[0] += timedelta(minutes=29)
        assert lethe.search(probe, purpose="still the case", actor="olga").use == first.use
        clock[0] += timedelta(minutes=31)  # 31 minutes after the last search
        later = lethe.search(probe, purpose="afternoon case", actor="olga")
        assert later.use != first.use

        old = lethe.uses.get(first.use or 0)
        assert old.close_reason == "timeout" and old.closed_by == "system" and old.searches == 2
        assert old.closed_at == datetime(2027, 1, 4, 9, 59, tzinfo=UTC)  # when it timed out
        closes = [e for e in lethe.audit_entries(action="use.close") if e.details["use"] == first.use]
        assert len(closes) == 1 and closes[0].details["reason"] == "timeout"

        with pytest.raises(PrivacyError, match="timed out"):
            lethe.search(probe, purpose="back to it", actor="olga", use=first.use)
        with pytest.raises(PrivacyError, match="another actor"):
            lethe.search(probe, purpose="not mine", actor="mallory", use=later.use)
        assert lethe.verify_audit().ok


def test_probe_kept_sealed_only_on_a_match_and_its_bytes_gone_after_expiry(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    matched_probe = _biden(fixtures_dir).read_bytes()
    missed_probe = _mirrored(_biden(fixtures_dir))
    with Lethe(make_settings(data)) as lethe:
        hit = lethe.search(matched_probe, purpose="a match", actor="olga")
        miss = lethe.search(missed_probe, purpose="no match", actor="olga", threshold=0.9999)
        assert hit.matches and miss.probe_faces and miss.no_match
        with lethe.catalog.session() as session:
            rows = {r.seq: r for r in session.scalars(select(SearchLogRow))}
        assert rows[miss.audit_seq or 0].probe is None and not rows[miss.audit_seq or 0].matched
        sealed = rows[hit.audit_seq or 0].probe
        assert sealed is not None and matched_probe not in sealed
        expires = rows[hit.audit_seq or 0].probe_expires_at
        assert expires is not None and expires - rows[hit.audit_seq or 0].at == timedelta(days=183)
        # nothing of the no-match probe, nor the match's in clear, is in the data folder
        assert occurrences(data, {"probe": [missed_probe[-4096:], matched_probe[-4096:]]}) == []

        record = export_use(lethe.uses, lethe.gate, hit.use or 0, actor="dpo", with_probes=True)
        probes = {s["seq"]: s["probe"] for s in record["searches"]}
        assert base64.b64decode(probes[hit.audit_seq]["bytes_base64"]) == matched_probe
        assert probes[miss.audit_seq]["kept"] is False and "bytes_base64" not in probes[miss.audit_seq]
        assert lethe.audit_entries(action="audit.export", limit=1)[0].details["with_probes"] is True

        assert lethe.retention.purge(now=expires - timedelta(seconds=1))["expired_probes"] == 0
        assert lethe.retention.purge(now=expires)["expired_probes"] == 1
        entry = lethe.audit_entries(action="probe.expired", limit=1)[0]
        assert entry.details["search_seqs"] == [hit.audit_seq]
        assert occurrences(data, {"sealed probe": [sealed], "probe": [matched_probe[-4096:]]}) == []
        record = export_use(lethe.uses, lethe.gate, hit.use or 0, actor="dpo", with_probes=True)
        gone = {s["seq"]: s["probe"] for s in record["searches"]}[hit.audit_seq]
        assert (
            gone["kept"] is False
            and gone["deleted_at"]
            and gone["sha256"] == hashlib.sha256(matched_probe).hexdigest()
        )
        assert lethe.verify_audit().ok


def test_export_lists_the_verifiers_recorded_against_a_search(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    """The hook for the two-person verification: entries ``verification.*`` naming the search's seq."""
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        found = lethe.search(_biden(fixtures_dir).read_bytes(), purpose="to verify", actor="olga")
        for who, verdict in (("user:vera", "confirmed"), ("user:otto", "rejected")):
            lethe.catalog.record(
                audit.record(who, "verification.verdict", {"search_seq": found.audit_seq, "verdict": verdict})
            )
        record = export_use(lethe.uses, lethe.gate, found.use or 0, actor="dpo")
        verifiers = record["searches"][0]["verifiers"]
        assert [(v["actor"], v["verdict"]) for v in verifiers] == [
            ("user:vera", "confirmed"),
            ("user:otto", "rejected"),
        ]


def test_api_uses_own_for_operators_all_for_the_dpo_and_searches_carry_their_use(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = {"probe": jpeg(_biden(fixtures_dir))}
    with serve(data) as client:
        olga = bearer(add_user(client, "olga", "operator"))
        omar = bearer(add_user(client, "omar", "operator"))
        dpo = bearer(add_user(client, "dana", "dpo"))
        opened = client.post("/api/uses", headers=olga, json={"purpose": "case 9", "reference": "R-9"})
        assert opened.status_code == 200, opened.text
        use = opened.json()["id"]
        assert client.get("/api/uses/current", headers=olga).json()["use"]["id"] == use

        found = client.post("/api/search", headers=olga, data={"purpose": "in case 9"}, files=probe)
        assert found.status_code == 200 and found.json()["use"] == use  # the current use continued
        named = client.post(
            "/api/search", headers=olga, data={"purpose": "named", "use": str(use)}, files=probe
        )
        assert named.json()["use"] == use
        theirs = client.post(
            "/api/search", headers=omar, data={"purpose": "not mine", "use": str(use)}, files=probe
        )
        assert "another actor" in str(assert_error(theirs, 409, "refused")["message"])
        omars = client.post("/api/search", headers=omar, data={"purpose": "omar's own"}, files=probe)
        assert omars.json()["use"] not in (None, use)

        assert [u["id"] for u in client.get("/api/uses", headers=olga).json()["uses"]] == [use]
        assert len(client.get("/api/uses", headers=dpo).json()["uses"]) == 2
        assert_error(client.get(f"/api/uses/{use}", headers=omar), 403)
        assert client.get(f"/api/uses/{use}", headers=dpo).json()["searches"] == 2

        assert_error(client.get(f"/api/uses/{use}/export", headers=olga), 403)
        record = client.get(f"/api/uses/{use}/export", headers=dpo).json()
        assert record["use"]["reference"] == "R-9" and len(record["searches"]) == 2

        assert_error(client.post(f"/api/uses/{use}/close", headers=omar), 409)
        assert client.post(f"/api/uses/{use}/close", headers=olga).json()["open"] is False
        late = client.post(
            "/api/search", headers=olga, data={"purpose": "late", "use": str(use)}, files=probe
        )
        assert "was closed" in str(assert_error(late, 409, "refused")["message"])
