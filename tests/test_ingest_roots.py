"""Where ingest may read (issue 16, review finding 3): never Lethe's own folders (data, exports, keys,
temporary files), whatever the settings and the front end; through the service only inside
``LETHE_INGEST_ROOT`` (none set: uploads only), with one answer for "does not exist" and "not
allowed"; and a long run can be cancelled, through the engine and as a service job."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lethe.engine import Lethe
from lethe.errors import InputError
from lethe.ingest import CHUNK_IMAGES
from lethe.ingest.inputs import IMAGE_SUFFIXES, OWN_FOLDER
from lethe.ingest.roots import NO_ROOT, NOT_INGESTIBLE

from api_support import add_user, assert_error, bearer, jpeg, serve, wait_for_job
from conftest import consent_source, make_settings

BIDEN = Path("identities") / "joe_biden" / "biden.jpg"
ROSE = Path("identities") / "rose_leslie" / "img1.jpg"


def test_lethes_own_folders_are_never_ingested_whatever_the_path(tmp_path: Path, fixtures_dir: Path) -> None:
    """The review's reproduction 3a: an access export's decrypted crop under ``exports/`` was
    ingested into another source. The data folder inside a collection folder is skipped as a whole,
    a manifest row pointing into it is refused, and the folder itself is refused outright."""
    parent = tmp_path / "collection"
    (parent / "photos").mkdir(parents=True)
    shutil.copy(fixtures_dir / BIDEN, parent / "photos" / "biden.jpg")
    data = parent / "data"  # a data folder that happens to sit inside the collection
    key_folder = tmp_path / "secrets"
    key_folder.mkdir(mode=0o700)
    with Lethe(make_settings(data, master_key_file=key_folder / "master.key")) as engine:
        engine.add_source(consent_source())
        crop = data / "exports" / "request-1-abc" / "crops" / "7.jpg"
        crop.parent.mkdir(parents=True)
        shutil.copy(fixtures_dir / ROSE, crop)  # what an access export holds: a decrypted face
        shutil.copy(fixtures_dir / ROSE, key_folder / "beside-the-key.jpg")
        (parent / "list.csv").write_text("path\nphotos/biden.jpg\ndata/exports/request-1-abc/crops/7.jpg\n")

        for target in (data, data / "exports", data / "tmp", key_folder, crop):
            with pytest.raises(InputError, match="never ingested"):
                engine.ingest("events", target)
        walked = engine.ingest("events", parent)
        assert (walked.images, walked.faces) == (1, 1)
        assert {"path": str(data), "reason": OWN_FOLDER} in walked.errors
        listed = engine.ingest("events", parent / "list.csv")
        assert (listed.images, listed.skipped) == (0, 1)
        assert listed.errors == [{"path": "list.csv:3", "reason": OWN_FOLDER}]
        assert engine.catalog.count_faces() == 1  # only Biden's photo: no crop of the export
        assert set(engine.never_ingested()) >= {
            data.resolve(),
            (data / "exports").resolve(),
            key_folder.resolve(),
        }


def test_a_cancelled_run_keeps_what_it_stored_and_the_next_run_goes_on(
    engine: Lethe, tmp_path: Path, fixtures_dir: Path
) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(fixtures_dir / "identities", folder)
    people = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    assert len(people) > CHUNK_IMAGES  # the run is cancelled after its first chunk of photos
    engine.add_source(consent_source())
    seen: list[int] = []
    report = engine.ingest("events", folder, progress=lambda done, _total: seen.append(done),
                           cancelled=lambda: len(seen) >= 2)  # fmt: skip
    assert report.cancelled and report.as_dict()["cancelled"] is True
    assert 2 <= report.images < len(people)
    rest = engine.ingest("events", folder)
    assert not rest.cancelled
    assert (rest.skipped, rest.images) == (report.images, len(people) - report.images)


# -- through the service ---------------------------------------------------------------------------


def _source(client: TestClient) -> dict[str, str]:
    admin = bearer(add_user(client, "ada", "admin"))
    spec = {"name": "events", "basis": "consent", "art9": "explicit_consent", "purpose": "test ingest",
            "jurisdiction": "FR", "retention_days": 30, "mode": "all_faces"}  # fmt: skip
    assert client.post("/api/sources", headers=admin, json=spec).status_code == 201
    return admin


def test_without_an_ingest_root_the_service_ingests_uploads_only(tmp_path: Path, fixtures_dir: Path) -> None:
    with serve(tmp_path / "data") as client:
        _source(client)
        operator = bearer(add_user(client, "otto", "operator"))
        for path in (str(fixtures_dir), "/", str(tmp_path / "nothing")):
            answer = client.post("/api/ingest", headers=operator, json={"source": "events", "path": path})
            assert assert_error(answer, 422, "invalid_input")["message"] == NO_ROOT
        upload = client.post("/api/ingest/upload", headers=operator, data={"source": "events"},
                             files={"photos": jpeg(fixtures_dir / BIDEN)})  # fmt: skip
        assert upload.status_code == 202, upload.text
        job = wait_for_job(client, operator, str(upload.json()["id"]))
        assert (job["state"], job["images"], job["faces"]) == ("done", 1, 1)


def test_the_service_gives_one_answer_for_missing_and_forbidden_paths(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    """The review's reproduction 3c: ``/etc/nonexistent`` answered "no such folder" while the master
    key's path was accepted (and failed later): an existence oracle. Now every path the service will
    not read gets the same 422, before any job starts."""
    root = tmp_path  # the root holds the data folder too: Lethe's folders stay out all the same
    (root / "photos").mkdir()
    shutil.copy(fixtures_dir / BIDEN, root / "photos" / "biden.jpg")
    (root / "notes.txt").write_text("not a manifest")
    data = root / "data"
    with serve(data, ingest_root=root) as client:
        _source(client)
        operator = bearer(add_user(client, "otto", "operator"))
        refused = [
            str(root / "nothing"),
            str(root / "notes.txt"),
            str(data),
            str(data / "keys"),
            str(data / "keys" / "master.key"),
            str(data / "catalog.sqlite3"),
            str(data / "exports"),
            "/etc/nonexistent",
            "/etc",
            "~root",
            str(root / "photos" / ".." / ".."),
        ]
        messages = set()
        for path in refused:
            answer = client.post("/api/ingest", headers=operator, json={"source": "events", "path": path})
            messages.add(assert_error(answer, 422, "invalid_input")["message"])
        assert messages == {NOT_INGESTIBLE}
        assert not client.app.state.lethe.jobs.running()  # type: ignore[attr-defined]
        started = client.post("/api/ingest", headers=operator, json={"source": "events", "path": str(root)})
        assert started.status_code == 202, started.text
        job = wait_for_job(client, operator, str(started.json()["id"]))
        assert (job["state"], job["images"], job["faces"]) == ("done", 1, 1)
        assert {"path": str(data), "reason": OWN_FOLDER} in job["errors"]  # type: ignore[operator]


def test_a_running_ingest_job_can_be_cancelled(tmp_path: Path, fixtures_dir: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(fixtures_dir / "identities", root / "identities")
    with serve(tmp_path / "data", ingest_root=root) as client:
        _source(client)
        operator = bearer(add_user(client, "otto", "operator"))
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        with engine.writing():  # the job waits for the writer lock: it is running when cancelled
            started = client.post(
                "/api/ingest", headers=operator, json={"source": "events", "path": str(root)}
            )
            assert started.status_code == 202
            job_id = str(started.json()["id"])
            cancel = client.post(f"/api/ingest/{job_id}/cancel", headers=operator)
            assert cancel.status_code == 202 and cancel.json()["cancelled_by"] == "user:otto"
        job = wait_for_job(client, operator, job_id)
        assert (job["state"], job["images"], job["error"]) == ("cancelled", 0, "cancelled by user:otto")
        assert_error(client.post(f"/api/ingest/{job_id}/cancel", headers=operator), 409, "conflict")
        assert_error(client.post("/api/ingest/0123456789abcdef/cancel", headers=operator), 404, "not_found")
        monitor = bearer(add_user(client, "mon", "monitor"))
        assert_error(client.post(f"/api/ingest/{job_id}/cancel", headers=monitor), 403, "forbidden")
        # Nothing was lost: the next job ingests the whole folder.
        again = client.post("/api/ingest", headers=operator, json={"source": "events", "path": str(root)})
        assert wait_for_job(client, operator, str(again.json()["id"]))["state"] == "done"
        assert engine.catalog.count_images() == sum(
            p.suffix.lower() in IMAGE_SUFFIXES for p in root.rglob("*")
        )


def test_only_an_admin_lifts_an_erasure_through_the_api_and_it_is_audited(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    with serve(tmp_path / "data") as client:
        admin = _source(client)
        operator = bearer(add_user(client, "otto", "operator"))
        photo = {"photos": jpeg(fixtures_dir / BIDEN)}
        first = client.post("/api/ingest/upload", headers=operator, data={"source": "events"}, files=photo)
        assert wait_for_job(client, operator, str(first.json()["id"]))["faces"] == 1
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        engine.remove_faces(engine.catalog.face_ids().tolist(), actor="test")
        sha = engine.audit_entries(action="erasure.rows", limit=1)[0].details["image_sha256"][0]
        body = {"sha256": sha, "reason": "erased by mistake, says the DPO"}
        assert_error(client.post("/api/erasures/lift", headers=operator, json=body), 403, "forbidden")
        short = client.post("/api/erasures/lift", headers=admin, json=body | {"reason": "oops"})
        assert_error(short, 422, "validation_error")
        lifted = client.post("/api/erasures/lift", headers=admin, json=body)
        assert lifted.status_code == 200, lifted.text
        assert lifted.json()["tombstones"] == 1
        assert_error(client.post("/api/erasures/lift", headers=admin, json=body), 404, "not_found")
        entry = engine.audit_entries(action="erasure.lift", limit=1)[0]
        assert entry.actor == "user:ada" and entry.details["image_sha256"] == [sha]
        back = client.post("/api/ingest/upload", headers=operator, data={"source": "events"}, files=photo)
        assert wait_for_job(client, operator, str(back.json()["id"]))["faces"] == 1
