"""Data at rest: what a closed request leaves on disk (nothing of the requester's photo), who may
read the data folder (its owner only: files 0600, folders 0700), and what the logs hold (never a key,
a token or a password). Erased gallery templates and crops are test_erasure.py's."""

from __future__ import annotations

import base64
import logging
import stat
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from lethe.catalog.privacy_tables import RequestProbeBlobRow
from lethe.engine import Lethe
from lethe.imaging import decode_image

from api_support import PURPOSE, add_user, bearer, jpeg, serve, wait_for_job
from conftest import copy_gallery, make_settings, storage_files

pytestmark = pytest.mark.storage


def _found(data: Path, needles: dict[str, bytes]) -> list[str]:
    files = storage_files(data)
    for name, needle in needles.items():
        assert len(needle) >= 64, f"{name} is too short to be a meaningful needle"
    return [
        f"{name} in {path}"
        for name, needle in needles.items()
        for path, blob in files.items()
        if needle in blob
    ]


def test_a_closed_request_leaves_no_byte_of_the_requesters_photo_or_template(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = (fixtures_dir / "identities" / "barack_obama" / "obama1.jpg").read_bytes()
    with Lethe(make_settings(data)) as engine:
        image = decode_image(probe, max_pixels=engine.settings.max_image_pixels)
        [face] = engine.pipeline.faces(image.pixels)
        requests = engine.requests
        opened = requests.open(kind="erasure", photos=[probe], contact="o@example.org", actor="dpo")
        requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
        with engine.catalog.session() as session:
            [(sealed_photo, sealed_template)] = session.execute(
                select(RequestProbeBlobRow.photo, RequestProbeBlobRow.template)
            ).all()
        assert sealed_template is not None
        # A blob larger than a database page is split over overflow pages: look for slices of it.
        needles = {
            "the probe photo": probe,
            "its first 4 KB": probe[:4096],
            "the probe's template (float32)": np.asarray(face.embedding, np.float32).tobytes(),
            "the sealed probe template": sealed_template,
        }
        needles |= {
            f"probe photo bytes {i}+256": probe[i : i + 256] for i in range(0, len(probe) - 256, 4096)
        }
        sealed = {
            f"sealed photo bytes {i}+256": sealed_photo[i : i + 256]
            for i in range(0, len(sealed_photo) - 256, 2048)
        }
        needles |= sealed
        # Meaningful: while the request is open its sealed blobs are on disk. The probe photo is in
        # the gallery too, but its template is nowhere in clear: the index file is sealed (issue 16;
        # before, this check found it "in the index in plain float32").
        before = {hit.split(" in ")[0] for hit in _found(data, needles)}
        assert "the sealed probe template" in before
        # milvus-lite keeps its vectors in clear (docs/operations.md: encrypt the volume)
        assert ("the probe's template (float32)" in before) == (engine.settings.index == "milvus")
        assert len(before & set(sealed)) >= len(sealed) // 2
        result = requests.run(opened.id, actor="dpo", auto_only=True)
        for candidate in requests.candidates(opened.id, pending_only=True):  # not Obama: keep them
            requests.decide(opened.id, candidate.face_id, confirm=False, actor="dpo")
        if requests.get(opened.id).closed_at is None:
            result = requests.run(opened.id, actor="dpo")
        assert result["remaining_after_verify"] == 0
        assert requests.get(opened.id).closed_at is not None
        assert requests.probe_photos(opened.id) == []
        assert _found(data, needles) == []
    assert _found(data, needles) == []


def _modes(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (and itself) whose group/other permission bits are not all off."""
    loose = {}
    for path in [folder, *folder.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if stat.S_IMODE(mode) & 0o077:
            loose[str(path.relative_to(folder))] = oct(stat.S_IMODE(mode))
    return loose


def test_every_file_and_folder_of_the_data_folder_is_its_owners_only(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"
    with serve(data) as client:  # the service's own files too: session key, uploads, exports
        operator = bearer(add_user(client, "op", "operator"))
        dpo = bearer(add_user(client, "dpo", "dpo"))
        admin = bearer(add_user(client, "admin", "admin"))
        found = client.post(
            "/api/search", headers=operator, data={"purpose": PURPOSE}, files={"probe": jpeg(probe)}
        )
        assert found.status_code == 200
        crop = client.get(found.json()["matches"][0]["crop_url"], headers=operator)
        assert crop.status_code == 200
        opened = client.post(
            "/api/requests",
            headers=dpo,
            data={"kind": "access", "contact": "k@example.org"},
            files={"photos": jpeg(probe)},
        )
        assert opened.status_code == 201, opened.text
        check = {"method": "id_document", "attest": True}
        verified = client.post(f"/api/requests/{opened.json()['id']}/verify", headers=dpo, json=check)
        assert verified.status_code == 200, verified.text
        ran = client.post(f"/api/requests/{opened.json()['id']}/run", headers=dpo, json={"auto": True})
        assert ran.status_code == 200, ran.text
        assert client.get(f"/api/requests/{opened.json()['id']}/export", headers=dpo).status_code == 200
        assert client.post("/api/keys/rotate", headers=admin).status_code == 200
        upload = client.post(
            "/api/ingest/upload", headers=operator, data={"source": "events"}, files={"photos": jpeg(probe)}
        )
        assert upload.status_code == 202
    assert (data / "exports").is_dir() and any((data / "keys").iterdir())
    assert _modes(data) == {}


def _encodings(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret)[2:-1],
    ]


def test_keys_tokens_and_passwords_never_reach_the_logs(
    tmp_path: Path, fixtures_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    probe = fixtures_dir / "identities" / "joe_biden" / "biden.jpg"
    data = tmp_path / "data"
    with serve(data) as client:
        master_before = (data / "keys" / "master.key").read_bytes()
        token = add_user(client, "alice", "admin", "operator", "dpo")
        auth = bearer(token)
        source = {"name": "events", "basis": "consent", "art9": "explicit_consent", "purpose": "test",
                  "jurisdiction": "FR", "retention_days": 30, "mode": "all_faces"}  # fmt: skip
        assert client.post("/api/sources", headers=auth, json=source).status_code == 201
        job = client.post(
            "/api/ingest/upload", headers=auth, data={"source": "events"}, files={"photos": jpeg(probe)}
        )
        assert wait_for_job(client, auth, job.json()["id"])["faces"] == 1
        client.post("/api/search", headers=auth, data={"purpose": PURPOSE}, files={"probe": jpeg(probe)})
        login = client.post("/login", data={"name": "alice", "password": "alice-password-123"})
        assert login.status_code in (200, 303), login.text
        client.post("/login", data={"name": "alice", "password": "a-wrong-password-456"})
        client.get("/api/me", headers={"Authorization": "Bearer lethe_not-a-real-token-at-all-0000"})
        assert client.post("/api/keys/rotate", headers=auth).status_code == 200
        made = client.post("/api/users/alice/tokens", headers=auth, json={"label": "second"})
        assert made.status_code == 201
        client.post(
            "/api/portal/requests",
            data={"kind": "access", "contact": "someone@example.org"},
            files={"photos": jpeg(probe)},
        )
        cookies = login.headers.get_list("set-cookie")
    master_after = (data / "keys" / "master.key").read_bytes()
    session_key = (data / "keys" / "session.key").read_bytes()
    assert master_after != master_before and len(session_key) == 32
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert logged.count("\n") > 10, "the run did log: the check is meaningful"
    secrets = {
        "API token": [token, made.json()["token"]],
        "password": ["alice-password-123", "a-wrong-password-456"],
        "session cookie": [c.split(";")[0].split("=", 1)[1] for c in cookies if "=" in c],
        "contact address": ["someone@example.org"],
    }
    for name, key in (
        ("old master key", master_before),
        ("master key", master_after),
        ("session key", session_key),
    ):
        secrets[name] = _encodings(key)
    leaked = [name for name, values in secrets.items() for value in values if value and value in logged]
    assert leaked == []


def _index_ids(data: Path) -> tuple[list[int], list[int]]:
    with Lethe(make_settings(data)) as engine:
        return sorted(int(i) for i in engine.index.ids()), sorted(int(i) for i in engine.catalog.face_ids())


@pytest.mark.parametrize("damage", ["bitflip", "other_folders_file", "unsealed"])
def test_the_index_file_is_sealed_and_a_refused_one_is_rebuilt_from_the_catalog(
    damage: str, gallery: Path, tmp_path: Path
) -> None:
    """Issue 16: the store's index file holds no template in clear. A file that is altered, or
    sealed under another data folder's key, is refused on open and rebuilt from the catalog (as
    after a crash); a file of the former unsealed format is read and saved sealed at once."""
    data = copy_gallery(gallery, tmp_path)
    index_dir = data / "index"
    if (index_dir / "faces.faiss").exists() is False:
        pytest.skip("a Milvus index keeps no FAISS file")
    with Lethe(make_settings(data)) as engine:
        templates = engine.catalog.face_templates([int(i) for i in engine.catalog.face_ids()])
    assert templates
    needles = [np.asarray(t, np.float32).tobytes() for t in templates.values()]
    assert not [n for n in needles if n in (index_dir / "faces.faiss").read_bytes()]
    path = index_dir / "faces.faiss"
    if damage == "bitflip":
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0x04
        path.write_bytes(bytes(raw))
    elif damage == "other_folders_file":
        other = tmp_path / "other"
        with Lethe(make_settings(other)) as engine:
            some = np.asarray([next(iter(templates.values()))], dtype=np.float32)
            engine.index.add(np.array([1], dtype=np.int64), some)
            engine.index.save()
        path.write_bytes((other / "index" / "faces.faiss").read_bytes())
    else:
        from test_index_contract import write_unsealed  # noqa: PLC0415 - the old format's writer

        ids = np.array(sorted(templates), dtype=np.int64)
        write_unsealed(index_dir, ids, np.vstack([templates[int(i)] for i in ids]).astype(np.float32))
        assert needles[0] in path.read_bytes(), "the old format held templates in clear"
    index_ids, catalog_ids = _index_ids(data)
    assert index_ids == catalog_ids
    assert not [n for n in needles if n in path.read_bytes()]
    with Lethe(make_settings(data)) as engine:
        assert not engine.index.plaintext_on_disk  # type: ignore[attr-defined]
        first = int(sorted(templates)[0])
        vector = np.asarray([templates[first]], dtype=np.float32)
        assert engine.index.search(vector, 1)[0][0][0] == first


def test_an_existing_data_folder_open_to_others_is_made_owner_only(tmp_path: Path) -> None:
    """Security review, section 21: a data folder of mode 0755 was accepted as it was."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # whatever the umask
    with Lethe(make_settings(data)):
        pass
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
