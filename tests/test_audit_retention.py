"""Log retention (EU AI Act Arts. 19(1), 26(6)): the audit log is kept six months at least, pruned up
to a signed checkpoint entry, and still verifies; a removed or altered checkpoint is reported."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, text
from typer.testing import CliRunner

from lethe.api.maintenance import run_once
from lethe.catalog import audit_log
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow, AuditHeadRow, AuditTextRow
from lethe.cli import app
from lethe.config import Settings
from lethe.engine import Lethe
from lethe.errors import ConfigError
from lethe.privacy.report import verify_pack

from conftest import catalog_sql, consent_source, make_settings, use_data_dir

pytestmark = pytest.mark.storage
LATER = timedelta(days=200)  # past the default retention of 183 days


def _activity(lethe: Lethe, reason: str) -> None:
    """Audited actions with an off-chain text each (the stop's and the resume's reasons)."""
    lethe.oversight.stop(actor="admin", reason=reason)
    lethe.oversight.resume(actor="admin", reason=reason)


@pytest.fixture
def pruned(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """A data folder whose log was checkpointed, written to, then pruned 200 days later."""
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source(), actor="admin")
        _activity(lethe, "old reason")
        first = lethe.audit_retention.checkpoint(actor="admin")
        _activity(lethe, "newer reason")
        result = lethe.audit_retention.prune(actor="admin", now=now_utc() + LATER)
    assert (
        result["pruned"] == first["checkpoint_seq"] - 1 and result["pruned_before"] == first["checkpoint_seq"]
    )
    assert result["checkpoint_created"] and result["checkpoint"] == 2
    return data, result


def test_a_prune_keeps_verify_green_and_deletes_the_old_entries_and_texts(
    pruned: tuple[Path, dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, result = pruned
    before = int(result["pruned_before"])  # type: ignore[call-overload]
    with Lethe(make_settings(data)) as lethe:
        verification = lethe.verify_audit()
        with lethe.catalog.session() as session:
            seqs = list(session.scalars(select(AuditEntryRow.seq)))
            texts = {t.seq: t.text for t in session.scalars(select(AuditTextRow))}
        actions = [e.action for e in reversed(lethe.audit_entries(limit=100))]
    assert verification.ok, verification.problem
    assert verification.pruned_before == before and verification.checkpoints == 2
    assert min(seqs) == before and verification.entries == len(seqs)
    assert "old reason" not in texts.values() and "newer reason" in texts.values()
    assert actions[0] == audit_log.CHECKPOINT and actions[-2:] == [audit_log.PRUNED, audit_log.CHECKPOINT]
    pruned_entry = lethe_entry(data, audit_log.PRUNED)
    assert pruned_entry["before_seq"] == before and pruned_entry["entries"] == before - 1
    assert pruned_entry["retention_days"] == 183
    use_data_dir(monkeypatch, data)
    cli = CliRunner().invoke(app, ["audit", "verify", "--json"])
    assert cli.exit_code == 0, cli.output
    out = json.loads(cli.stdout)
    assert out["ok"] is True and out["entries"] == len(seqs)
    assert out["pruned_before"] == before and out["checkpoints"] == 2


def lethe_entry(data: Path, action: str) -> dict[str, object]:
    with Lethe(make_settings(data)) as lethe:
        return lethe.audit_entries(action=action, limit=1)[0].details


def test_nothing_younger_than_the_retention_is_pruned(engine: Lethe) -> None:
    engine.add_source(consent_source(), actor="admin")
    engine.audit_retention.checkpoint(actor="admin")
    _activity(engine, "kept")
    result = engine.audit_retention.prune(actor="admin", now=now_utc() + timedelta(days=182))
    assert result["pruned"] == 0 and result["checkpoint"] == 2
    # 200 days on, the first checkpoint is past the retention: the entry before it goes.
    assert engine.audit_retention.prune(actor="admin", now=now_utc() + LATER)["pruned"] == 1
    assert engine.verify_audit().ok


def test_deleting_the_first_checkpoint_row_is_detected(pruned: tuple[Path, dict[str, object]]) -> None:
    data, result = pruned
    with catalog_sql(data) as db:
        db.execute(text(f"DELETE FROM audit_entry WHERE seq = {int(result['pruned_before'])}"))  # type: ignore[call-overload]
    with Lethe(make_settings(data)) as lethe:
        verification = lethe.verify_audit()
    assert not verification.ok and "does not start at entry 1 nor at a signed checkpoint" in (
        verification.problem or ""
    )


def test_deleting_a_later_checkpoint_row_is_detected(pruned: tuple[Path, dict[str, object]]) -> None:
    data, result = pruned
    seq = int(result["checkpoint_seq"])  # type: ignore[call-overload]
    with Lethe(make_settings(data)) as lethe:
        _activity(lethe, "after the prune")
    with catalog_sql(data) as db:
        db.execute(text(f"DELETE FROM audit_entry WHERE seq = {seq}"))
    with Lethe(make_settings(data)) as lethe:
        verification = lethe.verify_audit()
    assert not verification.ok and verification.problem == f"entry {seq} is missing"


def test_entries_removed_before_a_checkpoint_without_a_prune_record_are_detected(engine: Lethe) -> None:
    engine.add_source(consent_source(), actor="admin")
    cut = engine.audit_retention.checkpoint(actor="admin")["checkpoint_seq"]
    _activity(engine, "after")
    with engine.catalog.session() as session, session.begin():
        session.execute(text(f"DELETE FROM audit_entry WHERE seq < {int(cut)}"))  # type: ignore[call-overload]
    verification = engine.verify_audit()
    assert not verification.ok and "without a prune record" in (verification.problem or "")


def _rewrite_from(lethe: Lethe, seq: int, change: Callable[[AuditEntryRow], None] = lambda row: None) -> None:
    """Change entry ``seq`` and re-hash the chain from there, head included, as someone holding the
    catalog could: what only the checkpoints' own checks can catch (the anchor file beside the key,
    which would catch it too, is removed)."""
    with lethe.catalog.session() as session, session.begin():
        rows = session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.seq >= seq).order_by(AuditEntryRow.seq)
        )
        prev = None
        for row in rows:
            if row.seq == seq:
                change(row)
            row.prev_hash = prev or row.prev_hash
            row.hash = audit_log.entry_hash(
                row.prev_hash, row.seq, row.at, row.actor, row.action, row.details
            )
            prev = row.hash
        head = session.get(AuditHeadRow, audit_log.HEAD_ID)
        assert head is not None and prev is not None
        head.hash = prev
    lethe.store.anchor_path.unlink(missing_ok=True)


def test_an_altered_checkpoint_signature_is_detected(engine: Lethe) -> None:
    engine.add_source(consent_source(), actor="admin")
    seq = int(engine.audit_retention.checkpoint(actor="admin")["checkpoint_seq"])  # type: ignore[call-overload]
    _activity(engine, "after")
    with engine.catalog.session() as session, session.begin():
        row = session.get(AuditEntryRow, seq)
        assert row is not None
        details = json.loads(row.details)
    forged = base64.b64encode(bytes(64)).decode()
    # Edited in place: the chain's hash breaks.
    with catalog_sql(engine.settings.data_dir) as db:
        db.execute(
            text("UPDATE audit_entry SET details = :d WHERE seq = :s"),
            {"d": row.details.replace(details["signature"], forged), "s": seq},
        )
    assert not engine.verify_audit().ok
    # Re-hashed from there on, head rewritten, anchors gone: the signature itself is refused.
    _rewrite_from(engine, seq)
    verification = engine.verify_audit()
    assert not verification.ok and "signature" in (verification.problem or "")
    assert verification.first_bad_seq == seq


def test_a_checkpoint_that_names_a_missing_predecessor_is_detected(engine: Lethe) -> None:
    """Checkpoint one turned into an ordinary entry and the chain re-hashed behind it: checkpoint two
    names a predecessor the log no longer has (and no longer covers what it signed)."""
    engine.add_source(consent_source(), actor="admin")
    one = int(engine.audit_retention.checkpoint(actor="admin")["checkpoint_seq"])  # type: ignore[call-overload]
    _activity(engine, "between")
    two = int(engine.audit_retention.checkpoint(actor="admin")["checkpoint_seq"])  # type: ignore[call-overload]
    assert engine.verify_audit().checkpoints == 2

    def demote(row: AuditEntryRow) -> None:
        row.action = "note"
        row.details = json.dumps({"faces_sha256": json.loads(row.details)["faces_sha256"]})

    _rewrite_from(engine, one, demote)
    verification = engine.verify_audit()
    assert not verification.ok and verification.first_bad_seq == two
    assert "checkpoint" in (verification.problem or "")


def test_a_log_retention_below_six_months_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"LETHE_LOG_RETENTION_DAYS.*Arts\. 19\(1\) and 26\(6\)"):
        Settings.load(data_dir=tmp_path, log_retention_days=182)
    assert Settings.load(data_dir=tmp_path).log_retention_days == 183
    assert Settings.load(data_dir=tmp_path, log_retention_days=3653).log_retention_days == 3653
    use_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setenv("LETHE_LOG_RETENTION_DAYS", "30")
    cli = CliRunner().invoke(app, ["audit", "prune", "--json"])
    assert cli.exit_code != 0 and "six months" in cli.output


def test_the_pack_holds_the_key_and_an_outside_verifier_checks_a_checkpoint(
    pruned: tuple[Path, dict[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = pruned
    with Lethe(make_settings(data)) as lethe:
        lethe.compliance_pack(tmp_path / "pack", actor="admin")
        expected = lethe.audit_retention.public_key()
    pack = tmp_path / "pack"
    key_hex = (pack / "audit_public_key.txt").read_text().strip()
    summary = json.loads((pack / "audit_verification.json").read_text())
    assert key_hex == expected["public_key"]
    assert summary["audit_public_key_sha256"] == hashlib.sha256(bytes.fromhex(key_hex)).hexdigest()
    assert summary["ok"] and summary["pruned_before"] > 1 and summary["checkpoints"] == 2
    # The outside verifier: the pack's files and `cryptography`, nothing of Lethe.
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))
    log = [json.loads(line) for line in (pack / "audit_log.jsonl").read_text().splitlines()]
    checkpoints = [e for e in log if e["action"] == "audit.checkpoint"]
    assert log[0] is checkpoints[0] or log[0] == checkpoints[0]
    for e in checkpoints:
        d = json.loads(e["details"])
        assert d["covers"] == {"seq": e["seq"] - 1, "hash": e["prev_hash"]}
        message = (
            f"lethe-audit-checkpoint-entry:v1:{d['checkpoint']}:{d['covers']['seq']}:{d['covers']['hash']}:"
            f"{d['previous']['seq']}:{d['previous']['hash']}:{d['signed_at']}"
        ).encode()
        key.verify(base64.b64decode(d["signature"]), message)  # raises InvalidSignature if not
    checked = verify_pack(pack)
    assert checked["ok"], checked["problem"]
    assert checked["pruned_before"] == summary["pruned_before"] and checked["checkpoints"] == 2
    use_data_dir(monkeypatch, data)
    cli = CliRunner().invoke(app, ["audit", "public-key", "--json"])
    assert cli.exit_code == 0 and json.loads(cli.stdout) == expected


def test_an_open_request_holds_the_log(engine: Lethe, fixtures_dir: Path) -> None:
    """Another rule keeps entries: the log as it stood when the oldest open request came in."""
    engine.add_source(consent_source(), actor="admin")
    engine.audit_retention.checkpoint(actor="admin")
    photo = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    engine.requests.open(kind="access", photos=[photo], contact="person@example.org", actor="admin")
    held = engine.audit_retention.prune(actor="admin", now=now_utc() + LATER)
    assert held["pruned"] == 0 and held["held_by_open_requests"] is True
    assert engine.verify_audit().ok


def test_the_maintenance_pass_checkpoints_at_most_daily(engine: Lethe) -> None:
    engine.add_source(consent_source(), actor="admin")
    first = run_once(engine)["audit_log"]
    assert first["checkpoint_created"] and first["checkpoint"] == 1  # type: ignore[index]
    _activity(engine, "same day")
    assert not run_once(engine)["audit_log"]["checkpoint_created"]  # type: ignore[index]
    later = engine.audit_retention.sweep(actor="system", now=now_utc() + timedelta(days=1, minutes=1))
    assert later["checkpoint_created"] and later["checkpoint"] == 2
    assert engine.verify_audit().ok and engine.verify_audit().checkpoints == 2
