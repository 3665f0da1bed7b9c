"""The audit log: every action lands in it; any edit, deletion or reordering is detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from lethe.cli import app
from lethe.engine import Lethe

from conftest import catalog_sql, consent_source, copy_gallery, make_settings, storage_files, use_data_dir

pytestmark = pytest.mark.storage
PURPOSE = "test: audit"


@pytest.fixture
def audited(gallery: Path, tmp_path: Path, fixtures_dir: Path) -> Path:
    """A gallery copy with a few extra audited actions: two searches and a removal."""
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        probe = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
        hits = lethe.search(probe, purpose="case 17: find my photos", actor="alice")
        lethe.search((fixtures_dir / "no_face" / "dog.jpg").read_bytes(), purpose=PURPOSE, actor="bob")
        lethe.remove_faces([hits.matches[-1].face_id], actor="alice", reason="test")
    return data


def test_actions_are_recorded_and_the_chain_verifies(audited: Path, fixtures_dir: Path) -> None:
    with Lethe(make_settings(audited)) as lethe:
        result = lethe.verify_audit()
        entries = list(reversed(lethe.audit_entries(limit=1000)))
    assert result.ok and result.entries == len(entries)
    actions = [e.action for e in entries]
    assert actions[0] == "source.add"
    assert "ingest" in actions
    # each search opened its actor's use (issue 18): alice's, then bob's
    assert actions[-7:] == [
        "use.open",
        "search",
        "use.open",
        "search",
        "erasure.planned",
        "erasure.rows",
        "erasure.done",
    ]
    search = entries[-6]
    assert search.actor == "alice" and search.details["purpose"] == "case 17: find my photos"
    assert len(search.details["probe_sha256"]) == 64 and search.details["face_ids"]
    assert entries[-3].details["reason"] == "test" and entries[-3].actor == "alice"
    assert entries[-2].details["face_ids"] == [search.details["face_ids"][-1]]
    ingests = [e.details for e in entries if e.action == "ingest"]
    assert sum(d["images"] for d in ingests) == 22  # photos stored, each with its faces
    assert sum(d["no_face"] for d in ingests) == 7  # photos with no face: their hash only


def test_searches_that_returned_a_face_are_found_by_face(audited: Path) -> None:
    from lethe.privacy import audit

    with Lethe(make_settings(audited)) as lethe:
        search = next(e for e in lethe.audit_entries(action="search") if e.details["face_ids"])
        face = search.details["face_ids"][0]
        with lethe.catalog.session() as session:
            found = audit.entries_for_faces(session, [face])[face]
    assert search.seq in [e.seq for e in found]
    assert all(e.action == "search" and face in e.details["face_ids"] for e in found)


def test_no_template_bytes_in_the_audit_log(audited: Path) -> None:
    with catalog_sql(audited) as db:
        embeddings = [bytes(row[0]) for row in db.execute(text("SELECT embedding FROM face"))]
        log = "".join(row[0] for row in db.execute(text("SELECT details FROM audit_entry")))
    assert embeddings
    for blob in embeddings:
        assert blob.hex() not in log and blob.decode("latin-1") not in log


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (
            "UPDATE audit_entry SET details = replace(details, 'events', 'other') WHERE action = 'search'",
            "changed",
        ),
        # The stated purpose is kept off the chain, but its salted hash is chained.
        ("UPDATE audit_text SET text = replace(text, 'find my', 'find me')", "free text"),
        ("UPDATE audit_entry SET actor = 'mallory' WHERE seq = 1", "changed"),
        ("DELETE FROM audit_entry WHERE seq = 2", "missing"),
        ("UPDATE audit_entry SET seq = seq + 1000 WHERE seq = 2", "missing"),
        ("DELETE FROM audit_entry WHERE seq = (SELECT max(seq) FROM audit_entry)", "end"),
    ],
)
def test_tampering_is_detected(audited: Path, tamper: str, problem: str) -> None:
    with catalog_sql(audited) as db:
        db.execute(text(tamper))
    with Lethe(make_settings(audited)) as lethe:
        result = lethe.verify_audit()
    assert not result.ok and problem in (result.problem or "")


def test_a_stated_purpose_is_kept_off_the_chain_and_can_be_erased(audited: Path) -> None:
    """A purpose may name a person: it is stored erasable beside the chain (only a salted hash is
    chained), a redaction deletes its bytes from the catalog's files, and the chain still verifies."""
    with catalog_sql(audited) as db:
        chained = "".join(row[0] for row in db.execute(text("SELECT details FROM audit_entry")))
    assert "case 17: find my photos" not in chained
    with Lethe(make_settings(audited)) as lethe:
        search = next(e for e in lethe.audit_entries(action="search") if e.actor == "alice")
        assert search.details["purpose"] == "case 17: find my photos"
        assert lethe.redact_audit_text(search.seq, actor="dpo", reason="the purpose names a person") == [
            "purpose"
        ]
        lethe.catalog.checkpoint()
        again = next(e for e in lethe.audit_entries(action="search") if e.seq == search.seq)
        assert again.details["purpose"] is None and again.details["erased_texts"] == ["purpose"]
        assert lethe.verify_audit().ok
        redaction = lethe.audit_entries(action="audit.redact", limit=1)[0]
        assert redaction.details["seq"] == search.seq and redaction.actor == "dpo"
    assert [p for p, blob in storage_files(audited).items() if b"case 17: find my photos" in blob] == []
    with catalog_sql(audited) as db:
        left = [row[0] for row in db.execute(text("SELECT text FROM audit_text"))]
    assert "case 17: find my photos" not in left and PURPOSE in left


def test_audit_details_refuse_personal_data_and_free_text() -> None:
    from lethe.errors import PrivacyError
    from lethe.privacy import audit

    with pytest.raises(PrivacyError, match="may not hold"):
        audit.record("x", "search", {"embedding": [0.1]})
    with pytest.raises(PrivacyError, match="off the audit chain"):
        audit.record("x", "search", {"purpose": "looking for Jane Doe"})
    assert audit.record("x", "search", {}, texts={"purpose": "case 7"}).texts == {"purpose": "case 7"}


def test_reordering_is_detected(audited: Path) -> None:
    with catalog_sql(audited) as db:
        columns = ("at", "actor", "action", "details", "prev_hash", "hash")
        rows = db.execute(
            text(f"SELECT seq, {', '.join(columns)} FROM audit_entry WHERE seq IN (2, 3) ORDER BY seq")
        ).all()
        (a, b) = rows
        for target, row in ((a[0], b), (b[0], a)):
            db.execute(
                text(f"UPDATE audit_entry SET {', '.join(f'{c}=:{c}' for c in columns)} WHERE seq=:seq"),
                dict(zip(columns, row[1:], strict=True)) | {"seq": target},
            )
    with Lethe(make_settings(audited)) as lethe:
        assert not lethe.verify_audit().ok


def test_a_changed_byte_anywhere_in_an_entry_is_detected(audited: Path) -> None:
    with catalog_sql(audited) as db:
        seq, details = db.execute(
            text("SELECT seq, details FROM audit_entry WHERE action='ingest' ORDER BY seq LIMIT 1")
        ).one()
        flipped = details.replace('"faces":', '"faceS":', 1)
        assert flipped != details
        db.execute(text("UPDATE audit_entry SET details=:d WHERE seq=:s"), {"d": flipped, "s": seq})
    with Lethe(make_settings(audited)) as lethe:
        result = lethe.verify_audit()
    assert not result.ok and result.first_bad_seq == seq


def test_cli_audit_verify_contract(audited: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_data_dir(monkeypatch, audited)
    runner = CliRunner()
    good = runner.invoke(app, ["audit", "verify", "--json"])
    assert good.exit_code == 0
    payload = json.loads(good.stdout)
    assert payload["ok"] is True and payload["entries"] > 3
    with catalog_sql(audited) as db:
        db.execute(text("UPDATE audit_entry SET action='searcH' WHERE seq=2"))
    bad = runner.invoke(app, ["audit", "verify", "--json"])
    assert bad.exit_code != 0 and json.loads(bad.stdout)["ok"] is False


def test_cli_audit_redact(audited: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_data_dir(monkeypatch, audited)
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["audit", "list", "--action", "search", "--json"]).stdout)
    seq = next(e["seq"] for e in listed["entries"] if e["details"]["purpose"] == PURPOSE)
    done = runner.invoke(app, ["audit", "redact", str(seq), "--reason", "names a person", "--json"])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"seq": seq, "erased": ["purpose"]}
    again = runner.invoke(app, ["audit", "redact", str(seq), "--reason", "names a person", "--json"])
    assert json.loads(again.stdout)["erased"] == []
    missing = runner.invoke(app, ["audit", "redact", "99999", "--reason", "names a person", "--json"])
    assert missing.exit_code != 0 and "no audit entry 99999" in missing.stderr
    no_reason = runner.invoke(app, ["audit", "redact", str(seq), "--reason", " ", "--json"])
    assert no_reason.exit_code != 0
    assert json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)["ok"] is True


def test_empty_log_verifies(engine: Lethe) -> None:
    result = engine.verify_audit()
    assert result.ok and result.entries == 0


def test_source_registration_is_audited(engine: Lethe) -> None:
    engine.add_source(consent_source("press", "DE"), actor="admin")
    (entry,) = engine.audit_entries()
    assert (entry.actor, entry.action, entry.details["jurisdiction"]) == ("admin", "source.add", "DE")


def test_concurrent_appends_from_threads_all_land_in_one_chain(engine: Lethe) -> None:
    """The service audits searches from many threads at once; on SQLite the head row used to be
    read by two transactions before either wrote, and the second insert failed (seq not unique)."""
    import threading

    from lethe.privacy import audit

    errors: list[BaseException] = []

    def append(n: int) -> None:
        try:
            for i in range(15):
                engine.catalog.record(
                    audit.record(f"thread-{n}", "search", {}, texts={"purpose": f"load {i}"})
                )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    verification = engine.verify_audit()
    assert verification.ok and verification.entries == 8 * 15


TRUNCATE = [
    "DELETE FROM audit_face WHERE seq > {k}",
    "DELETE FROM audit_text WHERE seq > {k}",
    "DELETE FROM audit_entry WHERE seq > {k}",
    "UPDATE audit_head SET seq = {k}, hash = (SELECT hash FROM audit_entry WHERE seq = {k})",
]


def test_tail_truncation_with_a_head_rewrite_is_detected(
    audited: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 16 (security review): cutting the tail and rewriting the head needs no hash at all,
    and used to pass. The signed checkpoints beside the master key vouch for the cut entries."""
    with Lethe(make_settings(audited)) as lethe:
        before = lethe.verify_audit()
    assert before.ok and before.anchored == before.entries
    k = before.entries - 2
    with catalog_sql(audited) as db:
        for statement in TRUNCATE:
            db.execute(text(statement.format(k=k)))
    with Lethe(make_settings(audited)) as lethe:
        result = lethe.verify_audit()
    assert not result.ok and result.entries == k
    assert "truncated" in (result.problem or "") and str(before.entries) in (result.problem or "")
    use_data_dir(monkeypatch, audited)
    cli = CliRunner().invoke(app, ["audit", "verify", "--json"])
    assert cli.exit_code == 6 and "truncated" in json.loads(cli.stdout)["problem"]


def test_the_faces_a_search_returned_are_covered_by_the_chain(audited: Path) -> None:
    """Finding 16: deleting audit_face rows hid searches from a face's access export."""
    with catalog_sql(audited) as db:
        face = db.execute(text("SELECT face_id FROM audit_face ORDER BY seq DESC LIMIT 1")).scalar_one()
        db.execute(text(f"DELETE FROM audit_face WHERE face_id = {int(face)}"))
    with Lethe(make_settings(audited)) as lethe:
        result = lethe.verify_audit()
    assert not result.ok and "faces recorded" in (result.problem or "")


def test_an_altered_checkpoint_is_reported(audited: Path) -> None:
    with Lethe(make_settings(audited)) as lethe:
        assert lethe.verify_audit().ok
        path = lethe.store.anchor_path
    lines = path.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"seq": 10_000}
    path.write_text("\n".join([*lines, json.dumps(forged)]) + "\n")
    with Lethe(make_settings(audited)) as lethe:
        result = lethe.verify_audit()
    assert not result.ok and "do not verify" in (result.problem or "")
