"""Who may do what: the role matrix over every endpoint, tokens (hashed at rest, revocable), login
sessions with CSRF, the first admin, rate limits, and the user/token commands."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from lethe.catalog.user_tables import ApiTokenRow
from lethe.cli import app as cli_app
from lethe.cli.serve import _is_loopback
from lethe.errors import ConflictError
from lethe.http.ratelimit import RateLimiter
from lethe.service import create_app
from lethe.users import FIRST_PASSWORD_FILE, ROLES, Users, first_admin_password, hash_token

from api_support import PURPOSE, add_user, assert_error, bearer, serve
from conftest import child_env, copy_gallery, make_settings

ANY = set(ROLES)
READERS = {"admin", "operator", "dpo"}
#: (method, path, roles allowed). ``{crop}`` becomes a crop link signed for the calling user.
ENDPOINTS: list[tuple[str, str, set[str]]] = [
    ("GET", "/metrics", {"admin", "monitor"}),
    ("GET", "/api/me", ANY),
    ("GET", "/api/stats", READERS),
    ("GET", "/api/sources", READERS),
    ("POST", "/api/sources", {"admin"}),
    ("POST", "/api/sources/nosource/guest", {"admin", "operator"}),
    ("GET", "/api/consents", {"admin", "dpo"}),
    ("POST", "/api/sources/nosource/consents", {"operator", "dpo"}),
    ("POST", "/api/consents/999999/withdraw", {"dpo"}),
    ("GET", "/api/sources/nosource/consent-text", READERS),
    ("PUT", "/api/sources/nosource/consent-text", {"admin", "dpo"}),
    ("POST", "/api/ingest", {"operator"}),
    ("POST", "/api/ingest/upload", {"operator"}),
    ("GET", "/api/ingest/nojob", {"operator"}),
    ("POST", "/api/ingest/nojob/cancel", {"operator"}),
    ("POST", "/api/search", {"operator"}),
    ("GET", "{crop}", {"operator", "dpo"}),
    ("POST", "/api/requests", {"dpo"}),
    ("GET", "/api/requests", {"dpo"}),
    ("GET", "/api/requests/999999", {"dpo"}),
    ("POST", "/api/requests/999999/verify", {"dpo"}),
    ("POST", "/api/requests/999999/signoff", {"dpo"}),
    ("POST", "/api/requests/999999/extend", {"dpo"}),
    ("POST", "/api/requests/999999/reject", {"dpo"}),
    ("POST", "/api/requests/999999/run", {"dpo"}),
    ("POST", "/api/requests/999999/answer", {"dpo"}),
    ("GET", "/api/requests/999999/candidates", {"dpo"}),
    ("POST", "/api/requests/999999/candidates/1", {"dpo"}),
    ("GET", "/api/requests/999999/photos/0", {"dpo"}),
    ("GET", "/api/requests/999999/photos/0/face", {"dpo"}),
    ("GET", "/api/requests/999999/export", {"dpo"}),
    ("DELETE", "/api/requests/999999/export", {"dpo"}),
    ("GET", "/api/objections", {"dpo"}),
    ("POST", "/api/objections/999999/withdraw", {"dpo"}),
    ("GET", "/api/audit", {"dpo"}),
    ("GET", "/api/audit/verify", {"dpo"}),
    ("GET", "/api/reports/compliance", {"dpo"}),
    ("GET", "/api/technical-file", {"admin", "dpo"}),
    ("POST", "/api/orders/stop", {"admin"}),
    ("GET", "/api/orders", {"admin", "dpo"}),
    ("POST", "/api/orders/complete", {"admin"}),
    ("POST", "/api/orders/999999/lift", {"admin"}),
    ("POST", "/api/retention/run", {"admin"}),
    ("GET", "/api/oversight", READERS),
    ("POST", "/api/oversight/stop", {"admin"}),
    ("POST", "/api/oversight/resume", {"admin"}),
    ("POST", "/api/keys/rotate", {"admin"}),
    ("POST", "/api/erasures/lift", {"admin"}),
    ("POST", "/api/users", {"admin"}),
    ("GET", "/api/users", {"admin"}),
    ("POST", "/api/users/nobody/disable", {"admin"}),
    ("POST", "/api/users/nobody/enable", {"admin"}),
    ("POST", "/api/users/nobody/tokens", {"admin"}),
    ("GET", "/api/tokens", {"admin"}),
    ("POST", "/api/tokens/999999/revoke", {"admin"}),
    ("GET", "/api/searches/999999/candidates/1", READERS),
    ("POST", "/api/searches/999999/candidates/1/verdict", READERS),
    ("POST", "/api/searches/999999/candidates/1/identified", {"operator"}),
    ("GET", "/api/verification/policy", READERS),
    ("PUT", "/api/verification/policy", {"admin"}),
    ("GET", "/api/users/nobody/competences", {"admin"}),
    ("PUT", "/api/users/nobody/competences/verifier", {"admin"}),
    ("DELETE", "/api/users/nobody/competences/verifier", {"admin"}),
    ("GET", "/api/searches/999999/candidates/1/probe", READERS),
    ("GET", "/api/ingest", {"operator"}),
    ("PATCH", "/api/sources/nosource", {"admin"}),
    ("POST", "/api/sources/nosource/suspend", {"admin"}),
    ("POST", "/api/sources/nosource/resume", {"admin"}),
    ("POST", "/api/sources/nosource/delete", {"admin"}),
    ("POST", "/api/users/nobody/reset-password", {"admin"}),
    ("GET", "/api/requests/999999/preview", {"dpo"}),
    ("POST", "/api/requests/999999/messages", {"dpo"}),
    ("GET", "/api/requests/999999/messages", {"dpo"}),
    ("POST", "/api/uses", READERS),
    ("GET", "/api/uses", READERS),
    ("GET", "/api/uses/current", READERS),
    ("GET", "/api/uses/999999", READERS),
    ("POST", "/api/uses/999999/close", READERS),
    ("GET", "/api/uses/999999/export", {"admin", "dpo"}),
    ("GET", "/api/incidents", {"admin", "dpo"}),
    ("POST", "/api/incidents", {"admin", "dpo"}),
    ("GET", "/api/incidents/999999", {"admin", "dpo"}),
    ("POST", "/api/incidents/999999/actions", {"admin", "dpo"}),
    ("POST", "/api/incidents/999999/notifications", {"admin", "dpo"}),
    ("POST", "/api/incidents/999999/decisions", {"admin", "dpo"}),
    ("POST", "/api/incidents/999999/close", {"admin", "dpo"}),
    ("GET", "/api/incidents/999999/drafts", {"admin", "dpo"}),
    ("GET", "/api/monitoring/alerts", {"admin", "dpo"}),
    ("POST", "/api/monitoring/alerts/999999/ack", {"admin", "dpo"}),
    ("POST", "/api/monitoring/scan", {"admin", "dpo"}),
    ("GET", "/api/monitoring/report", {"admin", "dpo"}),
    ("GET", "/api/recipients", {"admin", "dpo"}),
    ("POST", "/api/recipients", {"admin", "dpo"}),
    ("GET", "/api/recipients/999999/tokens", {"admin", "dpo"}),
    ("POST", "/api/recipients/999999/tokens", {"admin", "dpo"}),
    ("DELETE", "/api/recipients/999999/tokens/999999", {"admin", "dpo"}),
    ("GET", "/api/disclosures", {"admin", "dpo"}),
    ("POST", "/api/disclosures", {"admin", "dpo"}),
    ("GET", "/api/recipient-notices", {"admin", "dpo"}),
    ("GET", "/api/recipient-notices/999999", {"admin", "dpo"}),
    ("POST", "/api/recipient-notices/999999/send", {"admin", "dpo"}),
    ("POST", "/api/recipient-notices/999999/sent", {"admin", "dpo"}),
    ("POST", "/api/recipient-notices/999999/not-required", {"admin", "dpo"}),
    ("GET", "/api/assessments", {"admin", "dpo"}),
    ("GET", "/api/assessments/dpia", {"admin", "dpo"}),
    ("GET", "/api/assessments/dpia/answers", {"admin", "dpo"}),
    ("PUT", "/api/assessments/dpia/answers/necessity", {"dpo"}),
    ("POST", "/api/assessments/dpia/sign", {"dpo"}),
]
PUBLIC = {
    ("GET", "/api/health"),
    ("POST", "/api/portal/requests"),
    ("POST", "/api/portal/confirm"),
    ("POST", "/api/portal/status"),
    ("GET", "/api/e/{code}"),
    ("POST", "/api/e/{code}/consent"),
    ("GET", "/api/e/{code}/me/{secret}"),
    ("POST", "/api/e/{code}/me/{secret}/withdraw"),
    ("GET", "/api/e/{code}/photos"),
    ("GET", "/api/notices"),
    ("GET", "/api/notices/{name}"),
    ("GET", "/api/signing-key"),
    ("POST", "/login"),
    ("POST", "/logout"),
}
MATRIX = [(m, p, role, role in allowed) for m, p, allowed in ENDPOINTS for role in ROLES]


@pytest.fixture(scope="module")
def matrix_client(gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with serve(copy_gallery(gallery, tmp_path_factory.mktemp("matrix"))) as client:
        client.app.state.tokens = {role: add_user(client, f"only-{role}", role) for role in ROLES}  # type: ignore[attr-defined]
        yield client


def _path(client: TestClient, path: str, role: str | None) -> str:
    if path != "{crop}":
        return path
    state = client.app.state.lethe  # type: ignore[attr-defined]
    user_id = state.users.get(f"only-{role}").id if role else 1
    return str(state.crop_links.url(1, user_id))


def test_the_matrix_covers_every_endpoint(matrix_client: TestClient) -> None:
    schema = matrix_client.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    # the crop and photo links are signed for one user: their rules are in test_operator_pages.py too
    signed = {("GET", "/api/faces/{face_id}/crop"), ("GET", "/api/faces/{face_id}/photo")}
    covered = {(m, p) for m, p, _ in ENDPOINTS if p != "{crop}"} | signed
    templated = {(m, p) for m, p in routes if (m, p) not in PUBLIC}

    def matches(template: str, concrete: str) -> bool:
        t, c = template.split("/"), concrete.split("/")
        return len(t) == len(c) and all(a == b or a.startswith("{") for a, b in zip(t, c, strict=True))

    uncovered = [(m, t) for m, t in templated if not any(m == cm and matches(t, cp) for cm, cp in covered)]
    assert uncovered == []


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in ENDPOINTS])
def test_no_token_is_401(matrix_client: TestClient, method: str, path: str) -> None:
    response = matrix_client.request(method, _path(matrix_client, path, None))
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "role", "allowed"), MATRIX)
def test_role_matrix(matrix_client: TestClient, method: str, path: str, role: str, allowed: bool) -> None:
    token = matrix_client.app.state.tokens[role]  # type: ignore[attr-defined]
    response = matrix_client.request(method, _path(matrix_client, path, role), headers=bearer(token))
    if allowed:
        assert response.status_code not in (401, 403), response.text
    else:
        assert_error(response, 403, "forbidden")


def test_tokens_are_stored_hashed_and_can_be_revoked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(data) as client:
        admin = add_user(client, "root", "admin")
        made = client.post("/api/users/root/tokens", headers=bearer(admin), json={"label": "ci"})
        assert made.status_code == 201
        secret, token_id = made.json()["token"], made.json()["id"]
        assert client.get("/api/me", headers=bearer(secret)).status_code == 200
        listed = client.get("/api/tokens", headers=bearer(admin)).json()["tokens"]
        assert all("token" not in t and "token_hash" not in t for t in listed)
        assert next(t for t in listed if t["id"] == token_id)["last_used_at"] is not None
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        with engine.catalog.session() as session:
            stored = session.scalar(select(ApiTokenRow.token_hash).where(ApiTokenRow.id == token_id))
        assert stored == hash_token(secret)
        on_disk = b"".join(p.read_bytes() for p in data.rglob("catalog.sqlite3*"))
        assert secret.encode() not in on_disk and admin.encode() not in on_disk
        revoked = client.post(f"/api/tokens/{token_id}/revoke", headers=bearer(admin))
        assert revoked.json()["revoked_at"] is not None
        assert_error(client.get("/api/me", headers=bearer(secret)), 401, "unauthorized")
        assert_error(client.get("/api/me", headers={"Authorization": f"Basic {secret}"}), 401)
        users = client.get("/api/users", headers=bearer(admin)).json()["users"]
        assert all("password" not in u and "password_hash" not in u for u in users)
        entries = client.app.state.lethe.engine.audit_entries(limit=100)  # type: ignore[attr-defined]
        text = json.dumps([e.details for e in entries])
        assert {"user.add", "token.create", "token.revoke"} <= {e.action for e in entries}
        assert secret not in text and "password" not in text


def test_a_disabled_user_is_locked_out(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        admin = add_user(client, "root", "admin")
        created = client.post(
            "/api/users", headers=bearer(admin), json={"name": "carol", "roles": ["operator"]}
        )
        assert created.status_code == 201 and len(created.json()["password"]) >= 12
        # an admin no longer mints another user's token (security review, finding 4): the host does
        token = client.app.state.lethe.users.create_token("carol", actor="test")[1]  # type: ignore[attr-defined]
        assert (
            client.post("/login", data={"name": "carol", "password": created.json()["password"]}).status_code
            == 200
        )
        client.cookies.clear()
        assert client.post("/api/users/carol/disable", headers=bearer(admin)).status_code == 200
        assert_error(client.get("/api/me", headers=bearer(token)), 401)
        # a state conflict, not a privacy refusal: 409 "conflict"
        again = assert_error(client.post("/api/users/carol/disable", headers=bearer(admin)), 409, "conflict")
        assert "already disabled" in str(again["message"])
        with pytest.raises(ConflictError, match="disabled"):
            client.app.state.lethe.users.create_token("carol", actor="test")  # type: ignore[attr-defined]
        assert_error(
            client.post("/login", data={"name": "carol", "password": created.json()["password"]}), 401
        )
        bad_role = client.post(
            "/api/users", headers=bearer(admin), json={"name": "dave", "roles": ["wizard"]}
        )
        assert_error(bad_role, 422, "invalid_input")


def test_login_session_and_csrf(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        add_user(client, "alice", "admin", "operator")
        assert_error(
            client.post("/login", data={"name": "alice", "password": "wrong-password"}), 401, "login_failed"
        )
        assert_error(
            client.post("/login", data={"name": "nobody", "password": "wrong-password"}), 401, "login_failed"
        )
        response = client.post("/login", data={"name": "alice", "password": "alice-password-123"})
        assert response.status_code == 200
        body = response.json()
        assert body["user"] == "alice" and body["roles"] == ["admin", "operator"]
        cookies = response.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("lethe_session="))
        assert (
            "HttpOnly" in session_cookie
            and "SameSite=lax" in session_cookie
            and "Secure" not in session_cookie
        )
        csrf = body["csrf_token"]
        assert client.cookies["lethe_csrf"] == csrf

        assert client.get("/api/me").json()["via"] == "session"
        spec = {"name": "web", "basis": "consent", "art9": "explicit_consent", "purpose": "web test",
                "jurisdiction": "FR", "retention_days": 1}  # fmt: skip
        assert_error(client.post("/api/sources", json=spec), 403, "csrf_failed")
        assert_error(
            client.post("/api/sources", json=spec, headers={"X-CSRF-Token": "forged"}), 403, "csrf_failed"
        )
        assert client.post("/api/sources", json=spec, headers={"X-CSRF-Token": csrf}).status_code == 201
        # a form field works as well as the header (plain HTML forms)
        assert_error(client.post("/logout", data={"next": "/"}), 403, "csrf_failed")
        out = client.post("/logout", data={"csrf_token": csrf, "next": "/"}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/"
        client.cookies.clear()
        assert_error(client.get("/api/me"), 401)
        # a tampered cookie is no session; a bearer token needs no CSRF token
        client.cookies.set("lethe_session", "eyJ1IjoxfQ.forged.signature")
        assert_error(client.get("/api/me"), 401)
        token = client.app.state.lethe.users.create_token("alice", actor="test")[1]  # type: ignore[attr-defined]
        spec["name"] = "web2"
        assert client.post("/api/sources", json=spec, headers=bearer(token)).status_code == 201
        redirect = client.post(
            "/login", data={"name": "alice", "password": "alice-password-123", "next": "//evil.example/"},
            follow_redirects=False,
        )  # fmt: skip
        assert redirect.status_code == 200  # an off-site `next` is ignored, never followed


def test_secure_cookies_when_configured(tmp_path: Path) -> None:
    with serve(tmp_path / "data", cookie_secure=True) as client:
        add_user(client, "alice", "admin")
        response = client.post("/login", data={"name": "alice", "password": "alice-password-123"})
        assert all("Secure" in c for c in response.headers.get_list("set-cookie"))
    key = tmp_path / "data" / "keys" / "session.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32


def test_rate_limits_give_429(tmp_path: Path) -> None:
    limits = {"search_rate_per_minute": 2, "portal_rate_per_minute": 1, "login_rate_per_minute": 2}
    with serve(tmp_path / "data", **limits) as client:
        token = add_user(client, "op", "operator")
        not_a_photo = ("p.jpg", b"not a photo", "image/jpeg")
        for _ in range(2):
            first = client.post(
                "/api/search", headers=bearer(token), data={"purpose": PURPOSE}, files={"probe": not_a_photo}
            )
            assert first.status_code == 415
        limited = client.post(
            "/api/search", headers=bearer(token), data={"purpose": PURPOSE}, files={"probe": not_a_photo}
        )
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        other = add_user(client, "op2", "operator")  # the limit is per user
        assert client.post("/api/search", headers=bearer(other), data={"purpose": PURPOSE},
                           files={"probe": not_a_photo}).status_code == 415  # fmt: skip

        form = {"kind": "erasure", "contact": "me@example.org"}
        assert (
            client.post("/api/portal/requests", data=form, files={"photos": not_a_photo}).status_code == 415
        )
        assert_error(
            client.post("/api/portal/requests", data=form, files={"photos": not_a_photo}), 429, "rate_limited"
        )

        for _ in range(2):
            assert client.post("/login", data={"name": "op", "password": "wrong-password"}).status_code == 401
        assert_error(
            client.post("/login", data={"name": "op", "password": "op-password-123"}), 429, "rate_limited"
        )


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(3, what="things", clock=lambda: now[0])
    assert [limiter.try_take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_take("k") == pytest.approx(20.0)
    assert limiter.try_take("other") == 0.0
    now[0] = 20.0
    assert limiter.try_take("k") == 0.0 and limiter.try_take("k") > 0


def test_first_admin_is_created_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    password = first_admin_password(settings)
    assert password and len(password) >= 20
    assert first_admin_password(settings) is None
    with serve(tmp_path / "data") as client:
        response = client.post("/login", data={"name": "admin", "password": password})
        assert response.json()["roles"] == ["admin", "operator", "dpo"]
        users = Users(client.app.state.lethe.engine.catalog)  # type: ignore[attr-defined]
        assert [u.name for u in users.list_users()] == ["admin"]


def test_the_app_factory_creates_the_first_admin_and_shows_its_password_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``uvicorn --factory lethe.service:create_app`` on a fresh data folder: the same first admin as
    ``lethe serve``, its password shown once (stderr is no terminal here: in the data folder's file,
    whose path alone goes to stderr), and never again on the next start."""
    settings = make_settings(tmp_path / "data")
    app = create_app(settings)
    first = capsys.readouterr()
    path = (tmp_path / "data" / FIRST_PASSWORD_FILE).resolve()
    assert first.out == "" and first.err.count(str(path)) == 1
    password = path.read_text().strip()
    assert len(password) >= 20 and password not in first.err
    with TestClient(app) as client:
        response = client.post("/login", data={"name": "admin", "password": password})
        assert response.status_code == 200 and response.json()["roles"] == ["admin", "operator", "dpo"]
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        assert [u.name for u in Users(engine.catalog).list_users()] == ["admin"]
        [made] = engine.audit_entries(action="user.add")
        assert made.actor == "system" and password not in str(made.details)
    assert capsys.readouterr().err.count(password) == 0  # the service's start did not repeat it
    with TestClient(create_app(settings)) as again:
        assert again.get("/api/health").status_code == 200
    assert "First start" not in capsys.readouterr().err and not path.exists()


def test_an_app_told_not_to_makes_no_first_admin(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        assert Users(client.app.state.lethe.engine.catalog).list_users() == []  # type: ignore[attr-defined]


def test_user_and_token_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    added = runner.invoke(cli_app, ["user", "add", "erin", "--role", "dpo", "--role", "operator", "--json"])
    assert added.exit_code == 0, added.output
    user = json.loads(added.stdout)
    assert user["roles"] == ["operator", "dpo"] and len(user["password"]) >= 12
    made = runner.invoke(cli_app, ["token", "create", "erin", "--label", "laptop", "--json"])
    assert made.exit_code == 0, made.output
    token = json.loads(made.stdout)
    assert token["token"].startswith("lethe_") and token["label"] == "laptop"
    revoked = runner.invoke(cli_app, ["token", "revoke", str(token["id"]), "--json"])
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["revoked_at"]
    again = runner.invoke(cli_app, ["user", "add", "erin", "--role", "dpo"])
    assert again.exit_code != 0 and "already exists" in again.output
    assert runner.invoke(cli_app, ["user", "disable", "erin"]).exit_code == 0
    twice = runner.invoke(cli_app, ["user", "disable", "erin"])  # a conflict (1), not a privacy refusal (4)
    assert twice.exit_code == 1 and "already disabled" in twice.output
    wrong = runner.invoke(cli_app, ["user", "add", "frank", "--role", "root"])
    assert wrong.exit_code == 2 and "unknown role" in wrong.output


def test_loopback_detection() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert (
        not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.10") and not _is_loopback("example.org")
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_command_binds_loopback_and_prints_the_first_password_once(tmp_path: Path) -> None:
    """Its stderr is a pipe here, as under systemd or Docker: the password goes to the data folder's
    file (0600), never to stderr, and the file is gone once admin has logged in."""
    port = _free_port()
    path = tmp_path / "data" / FIRST_PASSWORD_FILE
    env = child_env() | {"LETHE_DATA_DIR": str(tmp_path / "data")}
    lethe = Path(sys.executable).with_name("lethe")
    process = subprocess.Popen(
        [str(lethe), "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "lethe serve did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}  # no count (security review, finding 8)
        # the schema of some 200 routes is built on the first request: seconds on a loaded machine
        schema = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=120).json()
        assert schema["info"]["title"] == "Lethe"
        assert_error(httpx.post(f"http://127.0.0.1:{port}/api/search"), 401)
        assert path.stat().st_mode & 0o777 == 0o600
        password = path.read_text().strip()
        login = httpx.post(f"http://127.0.0.1:{port}/login", data={"name": "admin", "password": password})
        assert login.status_code == 200 and login.json()["roles"] == ["admin", "operator", "dpo"]
        assert not path.exists()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert stderr.count(str(path.resolve())) == 1 and "First start" in stderr
    assert password not in stderr and "Password (shown once" not in stderr
    # the password's notice comes once the server listens, after the start-up log (issue 20)
    start_up = stderr[: stderr.rindex("\n", 0, stderr.index("GET /api/health"))]  # up to the first request
    order = [start_up.index(line) for line in ("Uvicorn running on", "Lethe serving on", "First start")]
    assert order == sorted(order) and start_up.count("=" * 74) == 2 and start_up.rstrip().endswith("=" * 74)
    assert "GET /api/health 200" in stderr and "127.0.0.1" in stderr
    # The keys sit in the data folder by default, and the service says so (security review, 15).
    assert (
        "keys inside the data folder" in stderr and str(tmp_path / "data" / "keys" / "master.key") in stderr
    )


def test_a_busy_port_fails_before_the_first_admin_is_made(tmp_path: Path) -> None:
    """The newcomer review (issue 20): with port 8000 busy, `make run` created the admin, printed its
    password and "serving on", then failed to bind; the next start printed no password. Now the port
    is checked first: one line, and nothing created."""
    env = child_env() | {"LETHE_DATA_DIR": str(tmp_path / "data")}
    lethe = Path(sys.executable).with_name("lethe")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        refused = subprocess.run(
            [str(lethe), "serve", "--port", str(port)], env=env, capture_output=True, text=True, timeout=120
        )
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and f"cannot listen on 127.0.0.1:{port}" in refused.stderr
    assert "First start" not in refused.stderr and not (tmp_path / "data" / FIRST_PASSWORD_FILE).exists()
    assert not (tmp_path / "data" / "catalog.sqlite3").exists()  # no admin: nothing was created


def test_keys_kept_outside_the_data_folder_need_no_warning(tmp_path: Path) -> None:
    from lethe.config import Settings
    from lethe.service import keys_warning

    outside = tmp_path / "vault"
    settings = Settings(
        data_dir=tmp_path / "data",
        master_key_file=outside / "master.key",
        session_secret_file=outside / "session.key",
    )
    assert keys_warning(settings) is None
    inside = Settings(data_dir=tmp_path / "data", master_key_file=outside / "master.key")
    assert "session key" in (keys_warning(inside) or "") and "master key" not in (keys_warning(inside) or "")
