"""Templates and crops at rest: sealed with per-source keys, shreddable, rotatable. Real files, real
SQLite, real models."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from lethe.catalog.privacy_tables import SourceKeyRow
from lethe.catalog.tables import FaceRow
from lethe.cli import app
from lethe.engine import Lethe
from lethe.errors import ConfigError, KeyShreddedError, PrivacyError, SealedDataError
from lethe.keyring import CATALOG_KEY_ID, OVERHEAD

from conftest import (
    backend_settings,
    catalog_files,
    catalog_url,
    consent_source,
    copy_gallery,
    make_settings,
    use_data_dir,
)

pytestmark = pytest.mark.storage

PURPOSE = "test: templates at rest"


def _catalog_bytes(data: Path) -> bytes:
    """The catalog's files (SQLite: with its write-ahead log and journal), as they are on disk now."""
    return b"".join(catalog_files(catalog_url(data)).values())


def _chunks(vector: np.ndarray, size: int = 32) -> list[bytes]:
    raw = np.asarray(vector, dtype=np.float32).tobytes()
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- keys -----------------------------------------------------------------------------------------


def test_master_key_is_private_and_created_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        key_file = lethe.keyring.master_path
    assert key_file == data / "keys" / "master.key"
    assert _mode(data / "keys") == 0o700 and _mode(key_file) == 0o600
    first = key_file.read_bytes()
    assert len(first) == 32
    with Lethe(make_settings(data)):
        pass
    assert key_file.read_bytes() == first
    assert sorted(p.name for p in (data / "keys").iterdir()) == ["master.key"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_master_key_others_can_read_refuses_to_start(tmp_path: Path, mode: int) -> None:
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        key_file = lethe.keyring.master_path
    key_file.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        Lethe(make_settings(data))


def test_a_master_key_of_the_wrong_size_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        key_file = lethe.keyring.master_path
    key_file.write_bytes(key_file.read_bytes() + b"\n")
    with pytest.raises(ConfigError, match="33 bytes, not 32"):
        Lethe(make_settings(data))


def test_a_missing_or_wrong_master_key_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        key_file = lethe.keyring.master_path
    original = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(ConfigError, match="missing but the catalog holds"):
        Lethe(make_settings(data))
    assert not key_file.exists(), "no fresh key may silently replace a lost one"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match="does not open this catalog"):
        Lethe(make_settings(data))
    key_file.write_bytes(original)
    with Lethe(make_settings(data)):
        pass


def test_master_key_file_setting_moves_the_key_out_of_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    monkeypatch.setenv("LETHE_MASTER_KEY_FILE", str(vault / "lethe.key"))
    with Lethe(make_settings(tmp_path / "data")) as lethe:
        assert lethe.keyring.master_path == vault / "lethe.key"
    assert _mode(vault / "lethe.key") == 0o600 and len((vault / "lethe.key").read_bytes()) == 32
    assert not (tmp_path / "data" / "keys" / "master.key").exists()
    monkeypatch.setenv("LETHE_MASTER_KEY_FILE", str(tmp_path / "nowhere" / "lethe.key"))
    with pytest.raises(ConfigError, match="does not exist"):
        Lethe(make_settings(tmp_path / "data"))


def test_seal_and_open_bind_key_and_context(engine: Lethe) -> None:
    a = engine.add_source(consent_source("a"))
    b = engine.add_source(consent_source("b"))
    keys = engine.keyring
    blob = keys.seal(a.id, b"secret template", b"ctx-1")
    assert blob[0] == 0x01 and len(blob) == len(b"secret template") + OVERHEAD
    assert b"secret" not in blob
    assert keys.open(a.id, blob, b"ctx-1") == b"secret template"
    assert keys.seal(a.id, b"secret template", b"ctx-1") != blob, "nonces are random"
    with pytest.raises(SealedDataError, match="failed authentication"):
        keys.open(a.id, blob, b"ctx-2")  # moved to another record
    with pytest.raises(KeyShreddedError):
        keys.open(b.id, blob, b"ctx-1")  # b has no key yet
    keys.ensure(b.id)
    with pytest.raises(SealedDataError, match="failed authentication"):
        keys.open(b.id, blob, b"ctx-1")  # another source's key
    tampered = bytearray(blob)
    tampered[20] ^= 0x01
    with pytest.raises(SealedDataError, match="failed authentication"):
        keys.open(a.id, bytes(tampered), b"ctx-1")
    with pytest.raises(SealedDataError, match="not a sealed blob"):
        keys.open(a.id, b"\x02" + blob[1:], b"ctx-1")
    sealed = keys.seal_master(b"requester@example.org", b"request:1:contact")
    assert keys.open_master(sealed, b"request:1:contact") == b"requester@example.org"
    with pytest.raises(SealedDataError):
        keys.open_master(sealed, b"request:2:contact")
    with pytest.raises(SealedDataError):
        keys.open_master(blob, b"ctx-1")
    with pytest.raises(PrivacyError):
        keys.shred(CATALOG_KEY_ID)


def test_data_keys_are_stored_wrapped(engine: Lethe) -> None:
    source = engine.add_source(consent_source())
    engine.keyring.ensure(source.id)
    with engine.catalog.session() as session:
        rows = {r.source_id: r.wrapped_key for r in session.scalars(select(SourceKeyRow))}
    assert set(rows) == {CATALOG_KEY_ID, source.id}
    assert all(len(w) == 32 + OVERHEAD for w in rows.values())


def test_an_interrupted_rotation_is_finished_or_undone_on_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        source = lethe.add_source(consent_source())
        blob = lethe.keyring.seal(source.id, b"payload", b"aad")
        key_file, staged = lethe.keyring.master_path, lethe.keyring.staged_path
        before = key_file.read_bytes()
    # Crashed before the re-wrap committed: a stale staged key, the live key still opens everything.
    staged.write_bytes(os.urandom(32))
    staged.chmod(0o600)
    with Lethe(make_settings(data)) as lethe:
        assert lethe.keyring.open(source.id, blob, b"aad") == b"payload"
    assert key_file.read_bytes() == before and not staged.exists()
    # Crashed after the commit, before the file swap: only the staged key opens the catalog.
    with Lethe(make_settings(data)) as lethe:
        lethe.rotate_master_key()
    after = key_file.read_bytes()
    staged.write_bytes(after)
    staged.chmod(0o600)
    key_file.write_bytes(before)
    with Lethe(make_settings(data)) as lethe:
        assert lethe.keyring.open(source.id, blob, b"aad") == b"payload"
    assert key_file.read_bytes() == after and not staged.exists()


# -- templates and crops of an ingested gallery ---------------------------------------------------


def test_no_plaintext_template_reaches_the_catalog_files(tmp_path: Path, fixtures_dir: Path) -> None:
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source())
        for person in ("joe_biden", "barack_obama", "rose_leslie"):
            lethe.ingest("events", fixtures_dir / "identities" / person)
        ids = [int(i) for i in lethe.index.ids()]
        templates = lethe.catalog.face_templates(ids)
        assert sorted(templates) == ids and len(ids) >= 5
        # The plaintext is the real template: it finds its own face in the index at similarity 1.
        for face_id, vector in templates.items():
            assert vector.dtype == np.float32 and vector.shape == (128,)
            best, score = lethe.index.search(vector[None, :], 1)[0][0]
            assert best == face_id and score > 0.9999
        with lethe.catalog.session() as session:
            stored = {r.id: r.embedding for r in session.scalars(select(FaceRow))}
        assert all(len(blob) == 128 * 4 + OVERHEAD and blob[0] == 0x01 for blob in stored.values())
        wal = data / "catalog.sqlite3-wal"
        if "catalog_url" not in backend_settings(data):
            assert wal.stat().st_size > 0, "the fresh writes are in the write-ahead log"
        open_files = _catalog_bytes(data)
    closed_files = _catalog_bytes(data)
    index_bytes = b"".join(p.read_bytes() for p in sorted((data / "index").rglob("*")) if p.is_file())
    for vector in templates.values():
        # The method finds plaintext where it is: milvus-lite's files hold it in clear; the FAISS
        # file used to as well, and is sealed since issue 16 (docs/privacy.md).
        assert (vector.tobytes() in index_bytes) == ((data / "index" / "milvus.db").exists())
        for on_disk in (open_files, closed_files):
            assert vector.tobytes() not in on_disk
            assert not any(chunk in on_disk for chunk in _chunks(vector))


def test_crops_on_disk_are_sealed_and_crop_jpeg_decrypts_them(gallery: Path) -> None:
    with Lethe(make_settings(gallery)) as lethe:
        ids = [int(i) for i in lethe.index.ids()]
        assert lethe.crops.face_ids_on_disk() == set(ids)
        for face_id in ids:
            sealed = lethe.crops.path(face_id).read_bytes()
            assert sealed[:2] != b"\xff\xd8" and sealed[0] == 0x01
            assert b"JFIF" not in sealed
            assert _mode(lethe.crops.path(face_id)) == 0o600
            jpeg = lethe.crop_jpeg(face_id)
            assert jpeg[:2] == b"\xff\xd8"
            size = lethe.pipeline.embedder.chip_size
            assert Image.open(io.BytesIO(jpeg)).size == (size, size)


def test_tampered_templates_and_crops_fail_with_a_clear_error(gallery: Path, tmp_path: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        first, second, third = (int(i) for i in lethe.index.ids()[:3])
        with lethe.catalog.session() as session, session.begin():
            row = session.get(FaceRow, first)
            assert row is not None
            flipped = bytearray(row.embedding)
            flipped[40] ^= 0x80
            row.embedding = bytes(flipped)
            # Swapping two faces' templates is caught too: the AAD binds each to its face id.
            a, b = session.get(FaceRow, second), session.get(FaceRow, third)
            assert a is not None and b is not None
            a.embedding, b.embedding = b.embedding, a.embedding
        for face_id in (first, second, third):
            with pytest.raises(SealedDataError, match="failed authentication"):
                lethe.catalog.face_templates([face_id])
        with pytest.raises(SealedDataError):
            list(lethe.catalog.iter_embeddings())
        crop = lethe.crops.path(first)
        sealed = bytearray(crop.read_bytes())
        sealed[-1] ^= 0x01
        crop.write_bytes(bytes(sealed))
        with pytest.raises(SealedDataError, match="failed authentication"):
            lethe.crop_jpeg(first)
        # A crop file copied over another face's crop does not open either.
        lethe.crops.path(third).write_bytes(lethe.crops.path(second).read_bytes())
        with pytest.raises(SealedDataError):
            lethe.crop_jpeg(third)
        assert lethe.crop_jpeg(second)[:2] == b"\xff\xd8"


def test_shredding_a_source_key_makes_its_faces_unreadable_and_spares_the_others(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    data = tmp_path / "data"
    biden = fixtures_dir / "identities" / "joe_biden"
    rose = fixtures_dir / "identities" / "rose_leslie"
    with Lethe(make_settings(data)) as lethe:
        doomed = lethe.add_source(consent_source("doomed"))
        kept = lethe.add_source(consent_source("kept"))
        lethe.ingest("doomed", biden)
        lethe.ingest("kept", rose)
        doomed_faces = lethe.catalog.face_ids_of_sources([doomed.id]).tolist()
        kept_faces = lethe.catalog.face_ids_of_sources([kept.id]).tolist()
        assert doomed_faces and kept_faces
        with lethe.catalog.session() as session:
            wrapped = session.get(SourceKeyRow, doomed.id)
            assert wrapped is not None
            wrapped_bytes = wrapped.wrapped_key

        assert lethe.keyring.shred(doomed.id) is True
        assert lethe.keyring.shred(doomed.id) is False
        with pytest.raises(KeyShreddedError, match="shredded"):
            lethe.catalog.face_templates(doomed_faces[:1])
        with pytest.raises(KeyShreddedError):
            lethe.crop_jpeg(doomed_faces[0])
        assert sorted(lethe.catalog.face_templates(kept_faces)) == sorted(kept_faces)
        assert lethe.crop_jpeg(kept_faces[0])[:2] == b"\xff\xd8"
        # No new key is quietly made for a source whose sealed faces remain.
        with pytest.raises(KeyShreddedError, match="erase them"):
            lethe.ingest("doomed", rose)
        # The wrapped key is gone from the database file and its log (secure_delete + checkpoint).
        assert wrapped_bytes not in _catalog_bytes(data)
        hits = lethe.search((rose / "img1.jpg").read_bytes(), purpose=PURPOSE).matches
        assert {m.face_id for m in hits} == set(kept_faces)
    # Reopening works; the kept source stays searchable.
    with Lethe(make_settings(data)) as lethe:
        assert not lethe.search((rose / "img2.jpg").read_bytes(), purpose=PURPOSE).no_match
        with pytest.raises(KeyShreddedError):
            lethe.catalog.face_templates(doomed_faces)


def test_rotating_the_master_key_keeps_everything_readable(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = (fixtures_dir / "identities" / "barack_obama" / "obama.jpg").read_bytes()
    with Lethe(make_settings(data)) as lethe:
        ids = [int(i) for i in lethe.index.ids()]
        templates = lethe.catalog.face_templates(ids)
        crops = {f: lethe.crop_jpeg(f) for f in ids}
        result = lethe.search(probe, purpose=PURPOSE)
        found = [m.face_id for m in result.matches]
        key_file = lethe.keyring.master_path
        old_key = key_file.read_bytes()
        # the catalog-wide key, the source key and the log key (the search matched: its probe is kept)
        assert lethe.rotate_master_key(actor="dpo") == 3
        assert lethe.gate.search_probe(result.audit_seq or 0) == probe
        assert lethe.crop_jpeg(ids[0]) == crops[ids[0]]
        sealed = lethe.keyring.seal_master(b"after rotation", b"x")
        assert lethe.audit_entries(action="keys.rotate")[0].actor == "dpo"
    new_key = key_file.read_bytes()
    assert new_key != old_key and len(new_key) == 32 and _mode(key_file) == 0o600
    # nothing staged or temporary left; the audit chain's signed checkpoints live beside the key
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["audit-checkpoints.jsonl", "master.key"]
    with Lethe(make_settings(data)) as lethe:
        again = lethe.catalog.face_templates(ids)
        assert all(np.array_equal(again[f], templates[f]) for f in ids)
        assert all(lethe.crop_jpeg(f) == crops[f] for f in ids)
        assert lethe.keyring.open_master(sealed, b"x") == b"after rotation"
        assert [m.face_id for m in lethe.search(probe, purpose=PURPOSE).matches] == found
        stats = lethe.rebuild_index()
        assert stats["count"] == len(ids)
    # The old key no longer opens the catalog.
    key_file.write_bytes(old_key)
    with pytest.raises(ConfigError, match="does not open this catalog"):
        Lethe(make_settings(data))


def test_cli_search_writes_decrypted_crops_and_rotates_keys(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_data_dir(monkeypatch, copy_gallery(gallery, tmp_path))
    monkeypatch.setenv("LETHE_WORKERS", "1")
    cli = CliRunner()
    probe = str(fixtures_dir / "identities" / "barack_obama" / "obama.jpg")
    plain = cli.invoke(app, ["search", probe, "--purpose", "test", "--top", "3", "--json"])
    assert plain.exit_code == 0, plain.output
    out = tmp_path / "crops-out"
    result = cli.invoke(
        app, ["search", probe, "--purpose", "test", "--top", "3", "--crops", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    before = json.loads(plain.stdout)
    assert payload.keys() == before.keys()
    assert [set(m) for m in payload["matches"]] == [set(m) for m in before["matches"]]
    assert [m["face_id"] for m in payload["matches"]] == [m["face_id"] for m in before["matches"]]
    assert payload["matches"]
    for rank, match in enumerate(payload["matches"], start=1):
        path = Path(match["crop"])
        assert path == out / f"{rank}-{match['face_id']}.jpg"
        assert path.read_bytes()[:2] == b"\xff\xd8" and _mode(path) == 0o600
    assert _mode(out) == 0o700
    rotated = cli.invoke(app, ["keys", "rotate", "--json"])
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["keys"] == 3  # catalog-wide, source and log keys
    again = cli.invoke(app, ["search", probe, "--purpose", "test", "--top", "3", "--json"])
    assert json.loads(again.stdout)["matches"] == before["matches"]
