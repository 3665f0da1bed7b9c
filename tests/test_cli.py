"""The command-line contract (../shared/CONTRACT.md) driven as a user's script would drive it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.config import Settings
from lethe.engine import Lethe

from conftest import child_env, copy_gallery

LETHE = Path(sys.executable).with_name("lethe")
SOURCE_ARGS = [
    "--basis", "consent", "--art9", "explicit_consent", "--purpose", "find my photos",
    "--jurisdiction", "FR", "--retention-days", "30", "--mode", "all_faces",
]  # fmt: skip


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env.update(LETHE_DATA_DIR=str(data_dir), LETHE_WORKERS="1")
    return subprocess.run([str(LETHE), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LETHE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LETHE_WORKERS", "1")
    return CliRunner()


def invoke_json(cli: CliRunner, *args: str) -> dict[str, object]:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


def test_contract_source_ingest_search(tmp_path: Path, fixtures_dir: Path) -> None:
    data = tmp_path / "data"
    added = run(data, "source", "add", "events", *SOURCE_ARGS, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["source"] == "events"

    ingested = run(data, "ingest", "events", str(fixtures_dir / "identities" / "joe_biden"), "--json")
    assert ingested.returncode == 0, ingested.stderr
    report = json.loads(ingested.stdout)  # stdout holds exactly one JSON object
    assert (report["images"], report["faces"], report["skipped"], report["errors"]) == (2, 2, 0, [])

    probe = fixtures_dir / "identities" / "joe_biden" / "biden.jpg"
    found = run(data, "search", str(probe), "--purpose", "test", "--top", "5", "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert result["probe_faces"] == 1 and result["no_match"] is False
    assert [Path(m["image"]).name for m in result["matches"]][0] == "biden.jpg"
    assert set(result["matches"][0]) >= {"face_id", "image", "score", "source", "source_url"}
    assert all(m["source"] == "events" for m in result["matches"])
    scores = [m["score"] for m in result["matches"]]
    assert scores == sorted(scores, reverse=True)

    stranger = run(
        data,
        "search",
        str(fixtures_dir / "identities" / "tom_cruise" / "Tom_Cruise_avp_2014_4.jpg"),
        "--purpose",
        "test",
        "--json",
    )
    assert stranger.returncode == 0 and json.loads(stranger.stdout)["no_match"] is True


def test_ingest_without_source_fails_with_one_line_reason(tmp_path: Path, fixtures_dir: Path) -> None:
    result = run(tmp_path / "data", "ingest", "ghost", str(fixtures_dir / "identities"), "--json")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "no source named 'ghost'" in result.stderr


def test_source_add_refuses_an_invalid_basis(cli: CliRunner) -> None:
    args = list(SOURCE_ARGS)
    args[1] = "because_we_can"
    result = cli.invoke(app, ["source", "add", "x", *args, "--json"])
    assert result.exit_code == 4
    assert "lawful basis 'because_we_can'" in result.stderr
    listed = invoke_json(cli, "source", "list")
    assert listed["sources"] == []


def test_duplicate_source_is_a_conflict(cli: CliRunner) -> None:
    invoke_json(cli, "source", "add", "events", *SOURCE_ARGS)
    again = cli.invoke(app, ["source", "add", "events", *SOURCE_ARGS, "--json"])
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_manifest_ingest_keeps_source_urls(cli: CliRunner, tmp_path: Path, fixtures_dir: Path) -> None:
    folder = tmp_path / "press"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((fixtures_dir / "identities" / "rose_leslie" / "img1.jpg").read_bytes())
    (folder / "b.jpg").write_bytes((fixtures_dir / "identities" / "rose_leslie" / "img2.jpg").read_bytes())
    (folder / "manifest.csv").write_text(
        "path,source_url,captured_at,caption\n"
        "a.jpg,https://example.org/a,2024-05-01T10:00:00Z,premiere\n"
        "b.jpg,https://example.org/b,,\n"
        "../outside.jpg,,,\n"
        "https://example.org/c.jpg,,,\n"
    )
    invoke_json(cli, "source", "add", "press", *SOURCE_ARGS)
    report = invoke_json(cli, "ingest", "press", str(folder / "manifest.csv"))
    assert (report["images"], report["faces"]) == (2, 2)
    reasons = sorted(e["reason"] for e in report["errors"])  # type: ignore[union-attr]
    assert len(reasons) == 2 and "URL" in reasons[0] + reasons[1]
    found = invoke_json(cli, "search", str(folder / "a.jpg"), "--purpose", "test")
    urls = {m["source_url"] for m in found["matches"]}  # type: ignore[union-attr]
    assert urls == {"https://example.org/a", "https://example.org/b"}


def test_search_threshold_and_top_options(cli: CliRunner, gallery: Path, tmp_path: Path, fixtures_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("LETHE_DATA_DIR", str(copy_gallery(gallery, tmp_path)))
    probe = str(fixtures_dir / "identities" / "barack_obama" / "obama.jpg")
    everything = invoke_json(cli, "search", probe, "--purpose", "test", "--threshold", "-1", "--top", "4")
    assert len(everything["matches"]) == 4  # type: ignore[arg-type]
    strict = invoke_json(cli, "search", probe, "--purpose", "test", "--threshold", "0.9999")
    assert all(m["score"] >= 0.9999 for m in strict["matches"])  # type: ignore[union-attr]
    none = invoke_json(cli, "search", str(fixtures_dir / "no_face" / "dog.jpg"), "--purpose", "test")
    assert none["probe_faces"] == 0 and none["no_match"] is True


def test_a_search_without_a_stated_purpose_is_refused_and_not_run(
    cli: CliRunner, gallery: Path, tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purpose is the engine's rule (3 characters at least), and the CLI has no default for it."""
    monkeypatch.setenv("LETHE_DATA_DIR", str(copy_gallery(gallery, tmp_path)))
    probe = str(fixtures_dir / "identities" / "barack_obama" / "obama.jpg")
    searches = len(invoke_json(cli, "audit", "list", "--action", "search")["entries"])  # type: ignore[arg-type]
    missing = cli.invoke(app, ["search", probe, "--json"])
    assert missing.exit_code == 2 and "--purpose" in missing.stderr
    short = cli.invoke(app, ["search", probe, "--purpose", " x ", "--json"])
    assert short.exit_code != 0 and "purpose" in short.stderr and short.stdout == ""
    after = invoke_json(cli, "audit", "list", "--action", "search")["entries"]
    assert len(after) == searches  # type: ignore[arg-type]


def test_unreadable_probe_and_non_image_probe(cli: CliRunner, tmp_path: Path) -> None:
    missing = cli.invoke(app, ["search", str(tmp_path / "nope.jpg"), "--purpose", "test", "--json"])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    text = tmp_path / "note.jpg"
    text.write_text("hello")
    bad = cli.invoke(app, ["search", str(text), "--purpose", "test", "--json"])
    assert bad.exit_code == 2 and "not an image" in bad.stderr


def test_index_stats_and_rebuild(
    cli: CliRunner, gallery: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LETHE_DATA_DIR", str(copy_gallery(gallery, tmp_path)))
    stats = invoke_json(cli, "index", "stats")
    assert stats["count"] == stats["catalog_faces"] and stats["backend"] == "faiss"
    rebuilt = invoke_json(cli, "index", "rebuild")
    assert rebuilt["count"] == stats["count"]


def test_request_candidates_write_every_crop_but_those_whose_key_was_shredded(
    cli: CliRunner, tmp_path: Path, fixtures_dir: Path
) -> None:
    """``lethe request candidates --crops``: a face whose source key was shredded is listed without a
    crop (``"crop": null``, no file) instead of failing the command; the other faces' crops are
    written."""
    biden = fixtures_dir / "identities" / "joe_biden"
    for name, photo in (("doomed", "biden.jpg"), ("kept", "biden2.jpg")):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(biden / photo, folder / photo)
        invoke_json(cli, "source", "add", name, *SOURCE_ARGS)
        invoke_json(cli, "ingest", name, str(folder))
    probe = str(biden / "biden.jpg")
    opened = invoke_json(cli, "request", "open", "--kind", "access", "--photo", probe, "--contact", "j@x.org")
    request_id = str(opened["id"])
    invoke_json(cli, "request", "verify", request_id, "--method", "id_document")
    invoke_json(cli, "request", "run", request_id)
    with Lethe(Settings.load()) as engine:
        doomed = engine.catalog.source("doomed").id
        doomed_faces = set(engine.catalog.face_ids_of_sources([doomed]).tolist())
        assert doomed_faces and engine.keyring.shred(doomed)
    out = tmp_path / "crops"
    rows = invoke_json(cli, "request", "candidates", request_id, "--crops", str(out))["candidates"]
    assert isinstance(rows, list)
    shredded = {r["face_id"]: r["crop"] for r in rows if r["face_id"] in doomed_faces}
    written = {r["face_id"]: r["crop"] for r in rows if r["face_id"] not in doomed_faces}
    assert shredded and set(shredded.values()) == {None}
    assert written and all(Path(path).read_bytes()[:2] == b"\xff\xd8" for path in written.values())
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{f}.jpg" for f in written)


def _last_actor(data: Path) -> str:
    with Lethe(Settings(data_dir=data)) as engine:
        return engine.audit_entries(limit=1)[0].actor


def test_the_acting_identity_is_explicit_never_logname(tmp_path: Path, fixtures_dir: Path) -> None:
    """Finding 17 (security review): `LOGNAME=dora lethe ...` was audited as `cli:dora`. The actor
    now comes from --actor or LETHE_ACTOR only, with the account from the process's uid."""
    import pwd

    data = tmp_path / "data"
    account = pwd.getpwuid(os.getuid()).pw_name
    env = child_env() | {"LETHE_DATA_DIR": str(data), "LOGNAME": "dora", "USER": "dora"}
    env.pop("LETHE_ACTOR", None)
    add = [str(LETHE), "source", "add", "events", *SOURCE_ARGS, "--json"]
    refused = subprocess.run(add, capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2
    assert "--actor" in refused.stderr and "LETHE_ACTOR" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    # read-only commands need no actor
    listed = subprocess.run(
        [str(LETHE), "audit", "verify", "--json"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0, listed.stderr
    done = subprocess.run(add, capture_output=True, text=True, env=env | {"LETHE_ACTOR": "acceptance"})
    assert done.returncode == 0, done.stderr
    assert _last_actor(data) == f"cli:acceptance@{account}"
    probe = str(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    searched = subprocess.run(
        [str(LETHE), "--actor", "olga", "search", probe, "--purpose", "test: actor", "--json"],
        capture_output=True,
        text=True,
        env=env | {"LETHE_ACTOR": "acceptance"},
        timeout=300,
    )
    assert searched.returncode == 0, searched.stderr
    assert _last_actor(data) == f"cli:olga@{account}"
    assert "dora" not in json.dumps([e.actor for e in Lethe(Settings(data_dir=data)).audit_entries()])


def test_a_disabled_user_cannot_be_the_actor(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke_json(cli, "user", "add", "otto", "--role", "operator")
    invoke_json(cli, "user", "disable", "otto")
    result = cli.invoke(app, ["--actor", "otto", "source", "add", "events", *SOURCE_ARGS, "--json"])
    assert result.exit_code == 4 and "disabled" in result.output
