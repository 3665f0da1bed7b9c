"""The operator's ingest and search pages and the API behind them (the newcomer review, issue 20):
one bad file in an upload, one photo as a path, erased photos reported as such, the jobs the
service knows, warm workers and per-photo progress; the matched photo opened through a signed,
expiring link; the calibration line and the search page's polish."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image

from lethe.engine import Lethe
from lethe.ingest.driver import CHUNK_IMAGES, chunk_size
from lethe.ingest.local import local_runner
from lethe.ingest.work import FixedRunner, Outcomes
from lethe.privacy.photos import PHOTO_MAX_SIDE_PX

from api_support import add_user, assert_error, bearer, jpeg, login, serve, wait_for_job
from conftest import consent_source, make_settings

BIDEN = Path("identities") / "joe_biden" / "biden.jpg"
ROSE = Path("identities") / "rose_leslie"


def _source(client: TestClient, name: str = "events") -> None:
    admin = bearer(add_user(client, f"admin-{name}", "admin"))
    spec = {"name": name, "basis": "consent", "art9": "explicit_consent", "purpose": "test ingest",
            "jurisdiction": "FR", "retention_days": 30, "mode": "all_faces"}  # fmt: skip
    assert client.post("/api/sources", headers=admin, json=spec).status_code == 201


def ingest(client: TestClient, operator: dict[str, str], path: Path) -> str:
    """Start a path ingest into "events"; the job's id."""
    started = client.post("/api/ingest", headers=operator, json={"source": "events", "path": str(path)})
    assert started.status_code == 202, started.text
    return str(started.json()["id"])


def gala_root(tmp_path: Path, fixtures_dir: Path) -> Path:
    """An ingest root whose folder ``gala`` holds Biden's photo."""
    root = tmp_path / "root"
    (root / "gala").mkdir(parents=True)
    shutil.copy(fixtures_dir / BIDEN, root / "gala" / "biden.jpg")
    return root


# --- ingest ------------------------------------------------------------------------------------


def test_one_bad_file_in_an_upload_is_skipped_and_reported_the_rest_is_ingested(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    """The review: 14 photos and one fake notes.jpg, and the whole batch was refused."""
    with serve(tmp_path / "data") as client:
        _source(client)
        operator = bearer(add_user(client, "otto", "operator"))
        files = [
            ("photos", jpeg(fixtures_dir / BIDEN)),
            ("photos", ("notes.jpg", b"just some notes, not a photo\n", "image/jpeg")),
            ("photos", ("empty.png", b"", "image/png")),
        ]
        started = client.post("/api/ingest/upload", headers=operator, data={"source": "events"}, files=files)
        assert started.status_code == 202, started.text
        job = wait_for_job(client, operator, str(started.json()["id"]))
        assert (job["state"], job["images"], job["faces"]) == ("done", 1, 1)
        assert (job["done"], job["total"]) == (3, 3)
        errors = {e["path"]: e["reason"] for e in job["errors"]}  # type: ignore[attr-defined]
        assert set(errors) == {"upload:notes.jpg", "upload:empty.png"}
        assert errors["upload:notes.jpg"].startswith("not a supported image (JPEG, PNG")
        assert "empty file" in errors["upload:empty.png"]
        # Nothing usable at all: refused up front, naming the file.
        bad = [("photos", ("notes.jpg", b"just some notes\n", "image/jpeg"))]
        refused = client.post("/api/ingest/upload", headers=operator, data={"source": "events"}, files=bad)
        assert "notes.jpg" in str(assert_error(refused, 415, "unsupported_media_type")["message"])


def test_a_single_photo_path_is_ingested_alone_and_a_re_ingest_after_erasure_says_erased(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    root = gala_root(tmp_path, fixtures_dir)
    for photo in sorted((fixtures_dir / ROSE).iterdir())[:2]:
        shutil.copy(photo, root / "gala" / photo.name)
    with serve(tmp_path / "data", ingest_root=root) as client:
        _source(client)
        operator = bearer(add_user(client, "otto", "operator"))
        one = ingest(client, operator, root / "gala" / "biden.jpg")
        job = wait_for_job(client, operator, one)
        assert job["target"] == "gala/biden.jpg"
        assert (job["state"], job["images"], job["faces"], job["errors"]) == ("done", 1, 1, [])

        engine: Lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
        engine.remove_faces(engine.catalog.face_ids().tolist(), actor="test", reason="retention")
        again = ingest(client, operator, root / "gala")
        job = wait_for_job(client, operator, again)
        assert job["state"] == "done"
        assert (job["images"], job["erased"], job["already_present"], job["skipped"]) == (2, 1, 0, 1)
        once_more = ingest(client, operator, root / "gala")
        job = wait_for_job(client, operator, once_more)
        assert (job["images"], job["erased"], job["already_present"]) == (0, 1, 2)
        assert job["images_per_s"] == 0.0  # skipping known photos is no speed to report

        # The jobs the service knows, newest first; the page lists them and offers each.
        jobs = client.get("/api/ingest", headers=operator).json()["jobs"]
        assert [j["id"] for j in jobs] == [once_more, again, one]
        assert [j["actor"] for j in jobs] == ["user:otto"] * 3
        login(client, "otto")
        page = client.get("/ingest").text
        assert "Recent ingest jobs" in page
        assert page.index(f'data-job-id="{once_more}"') < page.index(f'data-job-id="{one}"')
        assert "1 previously erased (blocked)" in page and "2 already present" in page
        assert "new photo(s)" not in page and "1 new photo," in page


def test_the_ingest_page_follows_the_running_job(tmp_path: Path, fixtures_dir: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(fixtures_dir / ROSE, root / "rose")
    with serve(tmp_path / "data", ingest_root=root) as client:
        _source(client)
        add_user(client, "otto", "operator")
        login(client, "otto")
        assert "<tr data-job-id" not in client.get("/ingest").text
        engine: Lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
        operator = bearer(add_user(client, "olga", "operator"))
        with engine.writing():  # the job waits for the writer lock: it is running while the page loads
            started = client.post(
                "/api/ingest", headers=operator, json={"source": "events", "path": str(root)}
            )
            job_id = str(started.json()["id"])
            page = client.get("/ingest").text
            assert f'data-job="{job_id}"' in page
            assert "running" in page
        assert wait_for_job(client, operator, job_id)["state"] == "done"


def test_the_service_keeps_its_ingest_workers_warm_between_jobs(tmp_path: Path, fixtures_dir: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(fixtures_dir / ROSE, root / "rose")
    shutil.copy(fixtures_dir / BIDEN, root / "biden.jpg")
    with serve(tmp_path / "data", ingest_root=root, workers=2) as client:
        _source(client)
        operator = bearer(add_user(client, "otto", "operator"))
        jobs = client.app.state.lethe.jobs  # type: ignore[attr-defined]
        for path in (root / "rose", root / "biden.jpg"):
            started = client.post(
                "/api/ingest", headers=operator, json={"source": "events", "path": str(path)}
            )
            assert wait_for_job(client, operator, str(started.json()["id"]))["state"] == "done"
        assert jobs.workers.started == 1  # one pool, its models loaded once, used by both jobs
        assert client.app.state.lethe.engine.catalog.count_images() == 1 + len(
            list((root / "rose").iterdir())
        )  # type: ignore[attr-defined]


def test_a_small_run_reports_progress_photo_by_photo(tmp_path: Path, fixtures_dir: Path) -> None:
    """The review: "0 photos processed" for 28 of 35 s, then jumps. Chunks of one photo for a small
    run: every photo's progress comes as soon as that photo is done."""
    assert chunk_size(29, 4) == 1 and chunk_size(10_000, 4) == CHUNK_IMAGES
    folder = tmp_path / "rose"
    shutil.copytree(fixtures_dir / ROSE, folder)
    count = len(list(folder.iterdir()))
    sent: list[int] = []
    seen: list[tuple[int, int]] = []
    with Lethe(make_settings(tmp_path / "data")) as engine:
        engine.add_source(consent_source())

        @contextmanager
        def recording() -> Iterator[FixedRunner]:
            with local_runner(engine.settings, lambda: engine.pipeline) as runner:

                def submit(blobs: list[bytes]) -> Future[Outcomes]:
                    sent.append(len(blobs))
                    return runner.submit(blobs)

                yield FixedRunner(submit, runner.window)

        report = engine.ingest("events", folder, progress=lambda d, t: seen.append((d, t)), workers=recording)
    assert report.images == count
    assert sent == [1] * count
    assert seen == [(i, count) for i in range(1, count + 1)]


# --- the matched photo -------------------------------------------------------------------------


class _PastSigner(TimestampSigner):
    """Signs as if an hour and a minute ago: an expired link, made with the service's own key."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 3660


def _verified(client: TestClient, seq: int, face_id: int) -> None:
    """Two trained verifiers confirm the candidate (two-person verification gates the photo)."""
    engine: Lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
    for name in ("vera", "viktor"):
        add_user(client, name, "operator")
        engine.verification.competences.grant(name, "verifier", trained_on=date.today(), actor="test")
        engine.verification.verdict(seq, face_id, verdict="confirm", actor=f"user:{name}")


def test_the_matched_photo_opens_for_the_searcher_only_with_its_box_and_is_gone_after_erasure(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    root = gala_root(tmp_path, fixtures_dir)
    with serve(tmp_path / "data", ingest_root=root) as client:
        _source(client)
        otto = bearer(add_user(client, "otto", "operator"))
        olga = bearer(add_user(client, "olga", "operator"))
        assert wait_for_job(client, otto, ingest(client, otto, root / "gala"))["faces"] == 1
        probe = {"probe": jpeg(fixtures_dir / BIDEN)}
        found = client.post("/api/search", headers=otto, data={"purpose": "find his photos"}, files=probe)
        (match,) = found.json()["matches"]
        assert match["image"] == str((root / "gala" / "biden.jpg").resolve())
        url = str(match["photo_url"])
        assert_error(client.get(url, headers=otto), 409, "refused")  # an unverified candidate
        _verified(client, found.json()["audit_seq"], match["face_id"])

        answer = client.get(url, headers=otto)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
        assert answer.headers["cache-control"] == "private, no-store"
        photo = Image.open(io.BytesIO(answer.content))
        original = Image.open(fixtures_dir / BIDEN)
        scale = min(1.0, PHOTO_MAX_SIDE_PX / max(original.size))  # a large photo comes scaled down
        assert photo.size == tuple(round(side * scale) for side in original.size)
        assert not photo.getexif()  # no metadata of the original goes out
        left, top, right, bottom = (round(v * scale) for v in match["box"])
        edge = np.asarray(photo.convert("RGB"))[(top + bottom) // 2, left]
        assert edge[0] > 200 and 120 < edge[1] < 200 and edge[2] < 80  # the orange box
        entry = client.app.state.lethe.engine.audit_entries(action="photo.view", limit=1)[0]  # type: ignore[attr-defined]
        assert entry.actor == "user:otto" and entry.details["face_id"] == match["face_id"]

        assert_error(client.get(url, headers=olga), 403, "forbidden")  # another user's link
        face_id, token = match["face_id"], url.split("t=", 1)[1]
        tampered = f"/api/faces/{face_id}/photo?t={token[:-2]}{'AA' if token[-2:] != 'AA' else 'BB'}"
        assert_error(client.get(tampered, headers=otto), 403, "forbidden")
        crop_as_photo = str(match["crop_url"]).replace("/crop?", "/photo?")
        assert_error(client.get(crop_as_photo, headers=otto), 403, "forbidden")  # a crop link is not one
        key = client.app.state.lethe.client_hash_key  # type: ignore[attr-defined]
        users = client.app.state.lethe.users  # type: ignore[attr-defined]
        otto_id = users.get("otto").id
        seq = found.json()["audit_seq"]
        past = URLSafeTimedSerializer(key, salt="lethe.photo", signer=_PastSigner)
        old = past.dumps([face_id, otto_id, seq])
        assert client.get(f"/api/faces/{face_id}/photo?t={old}", headers=otto).status_code == 403
        fresh = URLSafeTimedSerializer(key, salt="lethe.photo").dumps([face_id, otto_id, seq])
        assert client.get(f"/api/faces/{face_id}/photo?t={fresh}", headers=otto).status_code == 200

        # Erased: the face and its photo are gone.
        engine: Lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
        engine.remove_faces([face_id], actor="test", reason="retention")
        assert_error(client.get(url, headers=otto), 404, "not_found")


def test_an_uploaded_match_has_no_photo_link_and_its_source_path_is_shown(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    with serve(tmp_path / "data") as client:
        _source(client)
        otto = bearer(add_user(client, "otto", "operator"))
        files = [("photos", jpeg(fixtures_dir / BIDEN))]
        started = client.post("/api/ingest/upload", headers=otto, data={"source": "events"}, files=files)
        assert wait_for_job(client, otto, str(started.json()["id"]))["faces"] == 1
        probe = {"probe": jpeg(fixtures_dir / BIDEN)}
        found = client.post("/api/search", headers=otto, data={"purpose": "find his photos"}, files=probe)
        (match,) = found.json()["matches"]
        assert (match["image"], match["photo_url"]) == ("upload:biden.jpg", None)
        calibration = found.json()["calibration"]
        assert calibration["gallery_faces"] == 1 and calibration["implied"]["measured_gallery_faces"] > 1
        add_user(client, "olaf", "operator")
        login(client, "olaf")
        page = client.get("/search").text
        assert 'class="link-row" hidden' in page and "none recorded" not in page
        assert "Show the photo" in page
