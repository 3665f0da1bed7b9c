"""The rights operations the security review found missing or confusing (section 21), through the
real app on a real gallery: no answer names a path of the server (request outcomes, failed ingest
jobs); a requester asks where a portal request stands with its reference and code; the four kinds
of request agree in the docs, the page and the API; a DPO deletes a delivered access export; an
admin lifts a stop order, and a stop on a country without sources says so."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from lethe.catalog.privacy_tables import RequestRow
from lethe.privacy.requests import KINDS

from api_support import add_user, assert_error, bearer, jpeg, login, serve, wait_for_job
from conftest import REPO, catalog_sql, copy_gallery

DPO_CONTACT = "dpo@lethe.example.org"
ID_CHECK = {"method": "id_document", "attest": True}


@pytest.fixture(scope="module")
def data(gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_gallery(gallery, tmp_path_factory.mktemp("rights"))


@pytest.fixture(scope="module")
def client(data: Path) -> Iterator[TestClient]:
    with serve(data, dpo_contact=DPO_CONTACT, portal_rate_per_minute=1000) as test_client:
        for role in ("dpo", "admin"):
            add_user(test_client, f"page-{role}", role)
        yield test_client


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, dict[str, str]]:
    return {role: bearer(add_user(client, f"token-{role}", role)) for role in ("dpo", "admin")}


@pytest.fixture(scope="module")
def dpo(tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    return tokens["dpo"]


@pytest.fixture(scope="module")
def admin(tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    return tokens["admin"]


def answered_access(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> tuple[int, dict[str, object]]:
    """An access request opened at the desk, verified and run: answered, with its export."""
    probe = fixtures_dir / "identities" / "barack_obama" / "obama1.jpg"
    opened = client.post("/api/requests", headers=dpo, data={"kind": "access", "contact": "bo@example.org"},
                         files={"photos": jpeg(probe)})  # fmt: skip
    assert opened.status_code == 201, opened.text
    number = int(opened.json()["id"])
    assert client.post(f"/api/requests/{number}/verify", headers=dpo, json=ID_CHECK).status_code == 200
    ran = client.post(f"/api/requests/{number}/run", headers=dpo, json={"auto": True})
    assert ran.status_code == 200 and ran.json()["state"] == "answered", ran.text
    return number, ran.json()


def portal_request(client: TestClient, fixtures_dir: Path, kind: str = "erasure") -> tuple[int, str, str]:
    """A portal submission: (request id, reference, the code sent to the contact address)."""
    probe = fixtures_dir / "identities" / "rose_leslie" / "img1.jpg"
    submitted = client.post("/api/portal/requests", data={"kind": kind, "contact": "r@example.org"},
                            files={"photos": jpeg(probe)})  # fmt: skip
    assert submitted.status_code == 202, submitted.text
    reference = submitted.json()["reference"]
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    for message in (engine.settings.data_dir / "outbox").glob("request-*.json"):
        body = json.loads(message.read_text())
        if body["reference"] == reference:
            return int(message.stem.split("-")[1]), reference, str(body["code"])
    raise AssertionError("no confirmation message in the outbox")


def status(client: TestClient, reference: str, code: str) -> dict[str, object]:
    response = client.post("/api/portal/status", json={"reference": reference, "code": code})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


# -- 1. no path of the server in an answer ------------------------------------------------------


def test_request_outcomes_name_the_export_not_a_server_path(
    client: TestClient, dpo: dict[str, str], data: Path, fixtures_dir: Path
) -> None:
    server = str(data.resolve())
    number, ran = answered_access(client, dpo, fixtures_dir)
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    folder = engine.requests.export_path(number)
    assert folder.is_dir() and ran["export"] == folder.name and "/" not in folder.name
    detail = client.get(f"/api/requests/{number}", headers=dpo)
    listed = client.get("/api/requests", headers=dpo, params={"state": "answered", "limit": 500})
    for answer in (json.dumps(ran), detail.text, listed.text):
        assert server not in answer and str(data) not in answer and "/exports/" not in answer
    assert detail.json()["outcome"]["export"] == folder.name
    assert client.get(f"/api/requests/{number}/export", headers=dpo).status_code == 200
    # an outcome recorded before exports were named (an absolute path) shows the name only
    with catalog_sql(data) as sql:
        sql.execute(update(RequestRow).where(RequestRow.id == number).values(
            outcome=json.dumps({"export": str(folder), "faces": ran["faces"]})))  # fmt: skip
    detail = client.get(f"/api/requests/{number}", headers=dpo)
    assert server not in detail.text and detail.json()["outcome"]["export"] == folder.name
    assert client.get(f"/api/requests/{number}/export", headers=dpo).status_code == 200
    # nothing outside the exports folder is reached through an outcome
    for forged in ("../keys", "/etc", str(data / "keys"), "."):
        with catalog_sql(data) as sql:
            sql.execute(update(RequestRow).where(RequestRow.id == number).values(
                outcome=json.dumps({"export": forged})))  # fmt: skip
        assert_error(client.get(f"/api/requests/{number}/export", headers=dpo), 404, "not_found")
        assert_error(client.delete(f"/api/requests/{number}/export", headers=dpo), 404, "not_found")
    assert (data / "keys").is_dir() and folder.is_dir()


def test_a_failed_ingest_job_names_no_server_path(tmp_path: Path, fixtures_dir: Path) -> None:
    """The review's case: a job that fails on the master key said `.../keys/master.key` in full."""
    data = tmp_path / "data"
    with serve(data) as client:
        operator = bearer(add_user(client, "olga", "operator", "admin"))
        source = {"name": "press", "basis": "consent", "art9": "explicit_consent", "jurisdiction": "DE",
                  "purpose": "find my photos at the event", "retention_days": 30,
                  "mode": "all_faces"}  # fmt: skip
        assert client.post("/api/sources", headers=operator, json=source).status_code == 201
        key = data / "keys" / "master.key"
        key.chmod(0o640)  # a key others may read is refused when it is read again
        os.utime(key, ns=(key.stat().st_atime_ns, key.stat().st_mtime_ns + 10**9))
        try:
            photo = jpeg(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
            started = client.post(
                "/api/ingest/upload", headers=operator, data={"source": "press"}, files={"photos": photo}
            )
            assert started.status_code == 202, started.text
            job = wait_for_job(client, operator, str(started.json()["id"]))
        finally:
            key.chmod(0o600)
        assert job["state"] == "failed"
        error = str(job["error"])
        assert "master.key" in error and "mode 0640" in error
        assert str(data) not in error and str(data.resolve()) not in error and "/keys/" not in error


# -- 2. where a portal request stands -----------------------------------------------------------


def test_the_status_page_tells_the_stage_and_due_date_and_nothing_else(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> None:
    number, reference, code = portal_request(client, fixtures_dir)
    keys = {"reference", "stage", "due_at", "answered_on", "message"}
    waiting = status(client, reference, code)
    assert set(waiting) == keys and waiting["stage"] == "waiting_for_confirmation"
    assert waiting["reference"] == reference and waiting["answered_on"] is None
    due = waiting["due_at"]
    assert client.post("/api/portal/confirm", json={"reference": reference, "code": code}).status_code == 200
    assert status(client, reference, f" {code} ")["stage"] == "identity_check"
    assert client.post(f"/api/requests/{number}/verify", headers=dpo, json=ID_CHECK).status_code == 200
    assert status(client, reference, code)["stage"] == "in_progress"
    ran = client.post(f"/api/requests/{number}/run", headers=dpo, json={"auto": True}).json()
    assert ran["state"] == "answered"
    answered = status(client, reference, code)
    assert set(answered) == keys and answered["stage"] == "answered" and answered["due_at"] == due
    today = str(answered["answered_on"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", today) and today in str(answered["message"])
    # the stage and the dates, nothing about the gallery or what was done
    assert not re.search(r"face|photo|found|match|eras", str(answered["message"]), re.I)

    refused_number, refused_ref, refused_code = portal_request(client, fixtures_dir, "access")
    client.post("/api/portal/confirm", json={"reference": refused_ref, "code": refused_code})
    client.post(
        f"/api/requests/{refused_number}/reject", headers=dpo, json={"reason": "no identity document"}
    )
    refused = status(client, refused_ref, refused_code)
    assert refused["stage"] == "refused" and "identity document" not in json.dumps(refused)


def test_an_unknown_reference_and_a_wrong_code_look_the_same_and_wrong_codes_count(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> None:
    _, reference, code = portal_request(client, fixtures_dir)
    unknown = client.post("/api/portal/status", json={"reference": "0" * 16, "code": code})
    wrong = client.post("/api/portal/status", json={"reference": reference, "code": code + "x"})
    assert assert_error(unknown, 422, "invalid_input") == assert_error(wrong, 422, "invalid_input")
    assert unknown.headers.get("content-length") == wrong.headers.get("content-length")
    # four more wrong codes (five in all) expire an unconfirmed request, as on confirmation
    for _ in range(4):
        assert_error(client.post("/api/portal/status", json={"reference": reference, "code": "guess"}), 422)
    locked = client.post("/api/portal/status", json={"reference": reference, "code": code})
    assert assert_error(locked, 422) == assert_error(unknown, 422)
    assert_error(client.post("/api/portal/confirm", json={"reference": reference, "code": code}), 422)
    expired = [r for r in client.get("/api/requests", headers=dpo, params={"state": "expired", "limit": 500})
               .json()["requests"] if r["ref"] == reference]  # fmt: skip
    assert len(expired) == 1

    # a confirmed request is not expired by wrong codes, but its status is no longer shown
    number, reference, code = portal_request(client, fixtures_dir)
    assert client.post("/api/portal/confirm", json={"reference": reference, "code": code}).status_code == 200
    for _ in range(5):
        assert_error(client.post("/api/portal/status", json={"reference": reference, "code": "guess"}), 422)
    assert_error(client.post("/api/portal/status", json={"reference": reference, "code": code}), 422)
    assert client.get(f"/api/requests/{number}", headers=dpo).json()["state"] == "received"


def test_the_status_answer_is_rate_limited_like_the_portal(tmp_path: Path) -> None:
    with serve(tmp_path / "data", portal_rate_per_minute=2) as client:
        answers = [
            client.post("/api/portal/status", json={"reference": "a" * 16, "code": "b"}) for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [422, 422, 429]
    assert_error(answers[2], 429, "rate_limited")


def test_the_portal_pages_link_the_status_page_and_name_the_dpo(client: TestClient) -> None:
    client.cookies.clear()
    portal = client.get("/portal").text
    assert 'id="receipt-status" href="/portal/status"' in portal
    assert DPO_CONTACT in portal and "quoting your reference" in portal
    page = client.get("/portal/status", params={"reference": "abc123"})
    assert page.status_code == 200
    html = page.text
    assert 'value="abc123"' in html and 'name="code"' in html and DPO_CONTACT in html
    assert set(re.findall(r'"(/api/[^"]*)"', html)) == {"/api/portal/status"}
    for word in ("result", "match", "score", "similar", "crop", "found"):
        assert word not in html.lower(), word
    script = client.get("/static/portal.js").text
    assert "status-answer" in script and "receipt-status" in script
    for word in ("match", "score", "crop", "candidate"):
        assert word not in script.lower(), word


def test_without_a_dpo_contact_none_is_shown(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        for path in ("/portal", "/portal/status"):
            html = client.get(path).text
            assert "data-protection officer at" not in html and "quoting your reference" not in html


# -- 3. the four kinds of request agree ---------------------------------------------------------


def test_the_docs_the_page_and_the_api_list_the_same_four_kinds(client: TestClient) -> None:
    assert KINDS == ("access", "erasure", "objection", "restriction")
    schema = client.get("/openapi.json").json()
    for path in ("/api/portal/requests", "/api/requests"):
        form = schema["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        ref = form["$ref"].split("/")[-1]
        described = schema["components"]["schemas"][ref]["properties"]["kind"]["description"]
        assert all(f"`{kind}`" in described for kind in KINDS) and "Art. 18" in described, path
    portal = client.get("/portal").text
    assert all(f'value="{kind}"' in portal for kind in KINDS) and "(restriction)" in portal
    api_doc = (REPO / "docs" / "api.md").read_text()
    (row,) = [line for line in api_doc.splitlines() if line.startswith("| `POST /api/requests` |")]
    assert all(kind in row for kind in KINDS), row
    step = re.search(r"\*\*A person asks\*\*(.*?)\n6\. ", (REPO / "README.md").read_text(), re.S)
    assert step is not None and all(kind in step[1] for kind in KINDS), step
    privacy = (REPO / "docs" / "privacy.md").read_text()
    assert "access|erasure|objection|restriction" in privacy and "### Restriction (Art. 18)" in privacy


# -- 4. deleting an access export ---------------------------------------------------------------


def test_a_dpo_deletes_a_delivered_export_its_bytes_go_and_the_deletion_is_audited(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> None:
    number, _ = answered_access(client, dpo, fixtures_dir)
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    folder = engine.requests.export_path(number)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) >= 3 and (folder / "export.json") in files

    csrf = login(client, "page-dpo")
    page = client.get(f"/requests/{number}").text
    assert f'data-api="/api/requests/{number}/export" data-method="DELETE"' in page
    deleted = client.delete(f"/api/requests/{number}/export", headers={"X-CSRF-Token": csrf})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"request_id": number, "export_deleted": True, "files_deleted": len(files)}
    assert not folder.exists() and not any(p.exists() for p in files)
    assert not any(p.name == folder.name for p in folder.parent.iterdir())

    (entry,) = [
        e for e in engine.audit_entries(action="request.export.delete") if e.details["request_id"] == number
    ]
    assert entry.actor == "user:page-dpo" and entry.details["files_deleted"] == len(files)
    detail = client.get(f"/api/requests/{number}", headers=dpo).json()
    assert detail["outcome"]["export_deleted"] is True and "export" not in detail["outcome"]
    assert any(e["note"] == "access export deleted" for e in detail["events"])
    assert_error(client.get(f"/api/requests/{number}/export", headers=dpo), 404, "not_found")
    assert_error(client.delete(f"/api/requests/{number}/export", headers=dpo), 404, "not_found")
    page = client.get(f"/requests/{number}").text
    assert f"/api/requests/{number}/export" not in page
    assert_error(client.delete("/api/requests/999999/export", headers=dpo), 404, "not_found")
    client.cookies.clear()


# -- 5. lifting a stop order --------------------------------------------------------------------


def test_an_admin_lifts_a_stop_order_and_a_stop_without_sources_warns(
    client: TestClient, admin: dict[str, str], dpo: dict[str, str]
) -> None:
    nowhere = client.post("/api/orders/stop", headers=admin, json={"jurisdiction": "JP", "then_delete": True})
    assert nowhere.status_code == 200, nowhere.text
    assert nowhere.json()["sources_restricted"] == 0 and nowhere.json()["state"] == "completed"
    assert nowhere.json()["warning"] == "no source has jurisdiction JP"
    # its deletion ran (nothing to delete): it cannot be lifted
    refused = client.post(f"/api/orders/{nowhere.json()['order_id']}/lift", headers=admin,
                          json={"reason": "issued for the wrong country"})  # fmt: skip
    assert "deletion ran" in str(assert_error(refused, 409, "refused")["message"])

    stopped = client.post(
        "/api/orders/stop", headers=admin, json={"jurisdiction": "FR", "reference": "CNIL-9"}
    )
    order_id = stopped.json()["order_id"]
    assert stopped.json()["sources_restricted"] == 1 and "warning" not in stopped.json()
    csrf = login(client, "page-admin")
    page = client.get("/orders").text
    assert f'data-api="/api/orders/{order_id}/lift"' in page and "no source has jurisdiction JP" in page
    assert f'data-api="/api/orders/{nowhere.json()["order_id"]}/lift"' not in page
    assert_error(
        client.post(f"/api/orders/{order_id}/lift", headers=dpo, json={"reason": "a DPO may not"}), 403
    )
    assert_error(client.post(f"/api/orders/{order_id}/lift", headers=admin, json={"reason": "short"}), 422)
    lifted = client.post(f"/api/orders/{order_id}/lift", headers={"X-CSRF-Token": csrf},
                         json={"reason": "the CNIL withdrew the order"})  # fmt: skip
    assert lifted.status_code == 200, lifted.text
    assert lifted.json() == {"order_id": order_id, "state": "lifted", "sources_reactivated": 1,
                             "sources_kept_restricted": 0}  # fmt: skip
    sources = client.get("/api/sources", headers=admin).json()["sources"]
    assert {s["source"]: s["status"] for s in sources} == {"events": "active"}
    assert f'data-api="/api/orders/{order_id}/lift"' not in client.get("/orders").text
    client.cookies.clear()
