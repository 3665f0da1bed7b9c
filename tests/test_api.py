"""The HTTP API on a real gallery: health, schema, the one error shape, search (purpose, audit, crop
links), sources, ingest jobs (folder and upload), upload limits, metrics and the access log."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lethe.http.metrics import escape_label

from api_support import PURPOSE, add_user, assert_error, bearer, jpeg, serve, wait_for_job
from conftest import copy_gallery


@pytest.fixture(scope="module")
def client(gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # Path ingest reads inside the ingest root only (issue 16): the tests' temporary folders.
    root = tmp_path_factory.getbasetemp()
    with serve(copy_gallery(gallery, tmp_path_factory.mktemp("api")), ingest_root=root) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, str]:
    return {role: add_user(client, f"{role}1", role) for role in ("admin", "operator", "dpo", "monitor")}


def test_health_needs_no_token_and_tells_no_count(client: TestClient) -> None:
    # security review, finding 8: the face count was public (a membership oracle); only the status now
    assert client.get("/api/health").json() == {"status": "ok"}


def test_schema_is_served_and_docs_are_off(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "Lethe"
    assert "/api/search" in schema["paths"] and "/api/portal/requests" in schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    # security review, finding 12: Swagger UI came from a CDN; /docs is off unless LETHE_API_DOCS
    # (test_api_security.py), and the pages link the schema instead
    assert_error(client.get("/docs"), 404, "not_found")
    home = client.get("/")
    assert home.status_code == 200 and 'href="/openapi.json"' in home.text


def test_every_error_has_one_shape(client: TestClient, tokens: dict[str, str]) -> None:
    assert_error(client.get("/no/such/page"), 404, "not_found")
    not_allowed = assert_error(client.delete("/api/health"), 405, "method_not_allowed")
    assert "method" in str(not_allowed["message"])
    assert_error(client.get("/api/sources"), 401, "unauthorized")
    assert_error(client.get("/api/sources", headers=bearer("lethe_not-a-token")), 401, "unauthorized")
    assert_error(client.post("/api/sources", headers=bearer(tokens["operator"]), json={}), 403, "forbidden")
    invalid = assert_error(
        client.post("/api/sources", headers=bearer(tokens["admin"]), json={"name": "x"}), 422
    )
    assert invalid["code"] == "validation_error" and "basis" in str(invalid["message"])
    missing = assert_error(
        client.get("/api/requests/424242", headers=bearer(tokens["dpo"])), 404, "not_found"
    )
    assert missing["message"] == "no request 424242"  # a LetheError (NotFoundError), mapped in one place
    bad_basis = {"name": "x", "basis": "because", "art9": "explicit_consent", "purpose": "p",
                 "jurisdiction": "FR", "retention_days": 1}  # fmt: skip
    assert_error(
        client.post("/api/sources", headers=bearer(tokens["admin"]), json=bad_basis), 422, "no_lawful_basis"
    )
    assert_error(client.get("/api/ingest/nojob", headers=bearer(tokens["operator"])), 404, "not_found")


def test_search_requires_a_purpose(client: TestClient, tokens: dict[str, str], fixtures_dir: Path) -> None:
    probe = jpeg(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    headers = bearer(tokens["operator"])
    no_purpose = assert_error(client.post("/api/search", headers=headers, files={"probe": probe}), 422)
    assert "purpose" in str(no_purpose["message"])
    for blank in ("", "   "):
        response = client.post(
            "/api/search", headers=headers, data={"purpose": blank}, files={"probe": probe}
        )
        assert_error(response, 422)


def test_search_finds_the_person_with_crop_links_and_is_audited(
    client: TestClient, tokens: dict[str, str], fixtures_dir: Path
) -> None:
    probe = fixtures_dir / "identities" / "joe_biden" / "biden.jpg"
    headers = bearer(tokens["operator"])
    purpose = "case 2026-17: find the photos of the requester"
    response = client.post(
        "/api/search", headers=headers, data={"purpose": purpose, "top": "5"}, files={"probe": jpeg(probe)}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["probe_faces"] == 1 and len(result["probe_boxes"]) == 1 and result["no_match"] is False
    top = result["matches"][0]
    assert top["image"] == str(probe.resolve()) and top["score"] > 0.999 and top["source"] == "events"
    assert set(top) == {
        "face_id", "image", "score", "band", "likelihood", "source", "source_url", "box", "crop_url",
        "photo_url", "candidate_url", "candidate_page",
    }  # fmt: skip
    assert top["likelihood"]["band"] == "very_likely"  # the probe itself: no absent person scored this
    assert top["candidate_page"] == f"/searches/{result['audit_seq']}/candidates/{top['face_id']}"
    assert [m["score"] for m in result["matches"]] == sorted(
        (m["score"] for m in result["matches"]), reverse=True
    )
    crop = client.get(top["crop_url"], headers=headers)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert crop.content[:3] == b"\xff\xd8\xff"
    # a crop link is the caller's own: not for another user, not for another face, not without it
    dpo = bearer(tokens["dpo"])
    assert_error(client.get(top["crop_url"], headers=dpo), 403, "forbidden")
    other = result["matches"][1]["face_id"]
    forged = top["crop_url"].replace(f"/faces/{top['face_id']}/", f"/faces/{other}/")
    assert_error(client.get(forged, headers=headers), 403, "forbidden")
    assert_error(client.get(f"/api/faces/{top['face_id']}/crop", headers=headers), 403, "forbidden")

    entries = client.get("/api/audit", headers=dpo, params={"action": "search", "limit": 1}).json()["entries"]
    assert entries[0]["actor"] == "user:operator1"
    assert entries[0]["details"]["purpose"] == purpose
    assert entries[0]["details"]["face_ids"] == [m["face_id"] for m in result["matches"]]


def test_search_for_a_face_that_is_not_an_image_or_too_large(
    client: TestClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    headers = bearer(tokens["operator"])
    text = ("photo.jpg", b"this is not a photo at all", "image/jpeg")
    error = assert_error(
        client.post("/api/search", headers=headers, data={"purpose": PURPOSE}, files={"probe": text}), 415
    )
    assert error["code"] == "unsupported_media_type" and "not a supported image" in str(error["message"])


def test_upload_limits_give_413_with_a_clear_message(tmp_path: Path) -> None:
    with serve(tmp_path / "data", max_upload_bytes=2048) as small:
        token = add_user(small, "op", "operator")
        big = ("big.jpg", b"\xff\xd8\xff" + bytes(4096), "image/jpeg")
        response = small.post(
            "/api/search", headers=bearer(token), data={"purpose": PURPOSE}, files={"probe": big}
        )
        error = assert_error(response, 413, "payload_too_large")
        assert "2048 bytes" in str(error["message"])

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while the body streams
            for _ in range(8):
                yield bytes(1024)

        streamed = small.post(
            "/api/search",
            headers=bearer(token) | {"content-type": "multipart/form-data; boundary=xyz"},
            content=chunks(),
        )
        assert_error(streamed, 413, "payload_too_large")
        assert small.get("/api/health").status_code == 200


def test_sources_are_listed_and_added(client: TestClient, tokens: dict[str, str]) -> None:
    spec = {"name": "archive", "basis": "legitimate_interests", "art9": "made_public_by_subject",
            "purpose": "press archive search", "jurisdiction": "de", "retention_days": 90}  # fmt: skip
    added = client.post("/api/sources", headers=bearer(tokens["admin"]), json=spec)
    assert added.status_code == 201, added.text
    assert added.json()["jurisdiction"] == "DE"
    assert_error(client.post("/api/sources", headers=bearer(tokens["admin"]), json=spec), 409, "conflict")
    for role in ("operator", "dpo", "admin"):
        listed = client.get("/api/sources", headers=bearer(tokens[role])).json()["sources"]
        events = next(s for s in listed if s["source"] == "events")
        assert events["faces"] > 20 and events["basis"] == "consent" and events["jurisdiction"] == "FR"


def test_me_and_stats(client: TestClient, tokens: dict[str, str]) -> None:
    me = client.get("/api/me", headers=bearer(tokens["dpo"])).json()
    assert me["name"] == "dpo1" and me["roles"] == ["dpo"] and me["via"] == "token"
    assert "password_hash" not in me
    stats = client.get("/api/stats", headers=bearer(tokens["operator"])).json()
    assert stats["faces"] == stats["index_vectors"] > 20 and stats["sources"] >= 1
    assert {"searches_today", "open_requests", "overdue_requests", "next_due_at"} <= set(stats)


@pytest.mark.parametrize("how", ["folder", "upload"])
def test_ingest_job_reaches_done_with_the_right_counts(
    how: str, tmp_path: Path, fixtures_dir: Path, client: TestClient, tokens: dict[str, str]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    picks = [
        "identities/rose_leslie/img1.jpg",
        "identities/tom_cruise/Tom_Cruise_avp_2014_4.jpg",
        "no_face/dog.jpg",
    ]
    for pick in picks:
        shutil.copy(fixtures_dir / pick, folder / Path(pick).name)
    admin, operator = bearer(tokens["admin"]), bearer(tokens["operator"])
    source = f"batch-{how}"
    spec = {"name": source, "basis": "consent", "art9": "explicit_consent", "purpose": "test ingest",
            "jurisdiction": "FR", "retention_days": 30, "mode": "all_faces"}  # fmt: skip
    assert client.post("/api/sources", headers=admin, json=spec).status_code == 201
    if how == "folder":
        started = client.post("/api/ingest", headers=operator, json={"source": source, "path": str(folder)})
    else:
        files = [("photos", jpeg(p)) for p in sorted(folder.iterdir())]
        started = client.post("/api/ingest/upload", headers=operator, data={"source": source}, files=files)
    assert started.status_code == 202, started.text
    job = wait_for_job(client, operator, str(started.json()["id"]))
    assert job["state"] == "done", job
    assert (job["done"], job["total"], job["images"], job["faces"], job["skipped"]) == (3, 3, 3, 2, 0)
    assert job["errors"] == [] and isinstance(job["images_per_s"], float)
    rose = fixtures_dir / picks[0]
    result = client.post(
        "/api/search", headers=operator, data={"purpose": PURPOSE, "top": "50"}, files={"probe": jpeg(rose)}
    ).json()
    mine = [m for m in result["matches"] if m["source"] == source]
    assert len(mine) == 1
    if how == "upload":
        assert mine[0]["image"] == "upload:img1.jpg"
        assert list((client.app.state.lethe.settings.data_dir / "tmp").glob("upload-*")) == []  # type: ignore[attr-defined]
    else:
        assert mine[0]["image"] == str(folder / "img1.jpg")


def test_ingest_refuses_bad_input(
    client: TestClient, tokens: dict[str, str], tmp_path: Path, fixtures_dir: Path
) -> None:
    operator = bearer(tokens["operator"])
    missing = client.post(
        "/api/ingest", headers=operator, json={"source": "events", "path": str(tmp_path / "nothing")}
    )
    assert_error(missing, 422, "invalid_input")
    unknown = client.post("/api/ingest", headers=operator, json={"source": "nope", "path": str(tmp_path)})
    assert_error(unknown, 404, "not_found")
    files = [
        ("photos", jpeg(fixtures_dir / "no_face" / "dog.jpg")),
        ("photos", ("notes.jpg", b"hello", "image/jpeg")),
    ]
    # One bad file among good ones is skipped and reported (test_operator_pages.py); alone, it is
    # refused up front, naming it.
    refused = client.post("/api/ingest/upload", headers=operator, data={"source": "events"}, files=files[1:])
    error = assert_error(refused, 415, "unsupported_media_type")
    assert "notes.jpg" in str(error["message"])


def test_ingest_into_a_restricted_source_is_refused_before_a_job_starts(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    """The route asks the privacy gate whether the source may take photos now: a source restricted
    by a regulator's order answers 422 at once, for a folder and for an upload."""
    with serve(tmp_path / "data", ingest_root=fixtures_dir) as client:
        admin = bearer(add_user(client, "ada", "admin"))
        operator = bearer(add_user(client, "otto", "operator"))
        spec = {"name": "press-de", "basis": "legitimate_interests", "art9": "made_public_by_subject",
                "purpose": "press archive", "jurisdiction": "DE", "retention_days": 30}  # fmt: skip
        assert client.post("/api/sources", headers=admin, json=spec).status_code == 201
        stop = client.post("/api/orders/stop", headers=admin, json={"jurisdiction": "DE", "reference": "O-1"})
        assert stop.status_code == 200 and stop.json()["sources_restricted"] == 1
        folder = {"source": "press-de", "path": str(fixtures_dir / "no_face")}
        answer = client.post("/api/ingest", headers=operator, json=folder)
        refused = assert_error(answer, 422, "no_lawful_basis")
        assert "press-de" in str(refused["message"])
        files = {"photos": jpeg(fixtures_dir / "no_face" / "dog.jpg")}
        upload = client.post("/api/ingest/upload", headers=operator, data={"source": "press-de"}, files=files)
        assert_error(upload, 422, "no_lawful_basis")
        assert not client.app.state.lethe.jobs.running()  # type: ignore[attr-defined]


def test_only_one_ingest_job_at_a_time(client: TestClient, tokens: dict[str, str], tmp_path: Path) -> None:
    operator = bearer(tokens["operator"])
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    with engine.writing():  # the job's thread waits for the writer lock: it stays running
        first = client.post("/api/ingest", headers=operator, json={"source": "events", "path": str(tmp_path)})
        assert first.status_code == 202
        assert_error(
            client.post("/api/ingest", headers=operator, json={"source": "events", "path": str(tmp_path)}),
            409,
            "conflict",
        )
    assert wait_for_job(client, operator, str(first.json()["id"]))["state"] == "done"


def test_metrics_are_prometheus_text(client: TestClient, tokens: dict[str, str]) -> None:
    client.get("/api/health")
    response = client.get("/metrics", headers=bearer(tokens["monitor"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    declared: dict[str, str] = {}
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            declared[name] = kind
        else:
            match = re.fullmatch(r'([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)', line)
            assert match, line
            name = match.group(1)
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in declared else name
            assert family in declared and family in helped, line
            float(match.group(3).replace("+Inf", "inf"))
    assert declared["lethe_http_requests_total"] == "counter"
    assert declared["lethe_http_request_duration_seconds"] == "histogram"
    for gauge in ("lethe_index_vectors", "lethe_faces", "lethe_images", "lethe_sources"):
        assert declared[gauge] == "gauge"
    for counter in ("lethe_searches_total", "lethe_ingest_images_total"):
        assert declared[counter] == "counter"
    assert 'lethe_http_requests_total{method="GET",route="/api/health",status="200"}' in text
    assert 'route="/api/ingest/{job_id}"' in text  # templates, never ids
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_access_log_has_route_templates_and_no_secrets(
    client: TestClient, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.get("/api/requests/777?secret=abc", headers=bearer(tokens["dpo"]))
    lines = [r.getMessage() for r in caplog.records if r.name == "lethe.api.access"]
    assert lines == [lines[0]] and re.fullmatch(r"GET /api/requests/\{request_id\} 404 [0-9.]+ms", lines[0])
    server_side = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert tokens["dpo"] not in server_side and "secret=abc" not in server_side
