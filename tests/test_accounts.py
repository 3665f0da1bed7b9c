"""Accounts of the service, the security review's section 21 (``../shared/reviews/security-2026-12.md``)
and finding 13's per-account backoff: API tokens expire, a password reset revokes the user's tokens,
a disabled user can be enabled again without reviving old sessions or tokens, the first admin's
password stays out of service logs, and failed logins for one account back off whatever the
client's address. The real app through TestClient, the real CLI through its runner, a real catalog
(SQLite, or PostgreSQL for the migration when a server is there); the backoff's clock is injected,
never slept on."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from lethe.catalog import Catalog
from lethe.catalog.dialects import sqlalchemy_url
from lethe.catalog.user_tables import ApiTokenRow
from lethe.cli import app as cli_app
from lethe.config import MAX_TOKEN_DAYS
from lethe.service import create_app
from lethe.users import FIRST_PASSWORD_FILE, Users

from api_support import add_user, assert_error, bearer, serve
from conftest import make_settings, migrate_catalog, postgres_catalog

# -- tokens expire ------------------------------------------------------------------------------


def _expire(client: TestClient, token_id: int, ago: timedelta = timedelta(seconds=1)) -> None:
    """Move a token's expiry into the past (its lifetime has run out)."""
    catalog = client.app.state.lethe.engine.catalog  # type: ignore[attr-defined]
    with catalog.session() as session, session.begin():
        session.get(ApiTokenRow, token_id).expires_at = datetime.now(UTC) - ago


def test_a_token_lives_its_days_then_is_refused_and_listed_as_expired(tmp_path: Path) -> None:
    with serve(tmp_path / "data", token_days=7) as client:
        ada = add_user(client, "ada", "admin")
        state = client.app.state.lethe  # type: ignore[attr-defined]
        [default] = state.users.tokens("ada")
        assert default.expires_at - default.created_at == timedelta(days=7)  # LETHE_TOKEN_DAYS
        made = client.post("/api/users/ada/tokens", headers=bearer(ada), json={"label": "ci", "days": 2})
        assert made.status_code == 201, made.text
        body = made.json()
        created, expires = (datetime.fromisoformat(body[k]) for k in ("created_at", "expires_at"))
        assert expires - created == timedelta(days=2) and body["state"] == "active"
        for days in (0, MAX_TOKEN_DAYS + 1):
            too = client.post("/api/users/ada/tokens", headers=bearer(ada), json={"days": days})
            assert_error(too, 422, "validation_error")
        assert (
            client.post("/api/users/ada/tokens", headers=bearer(ada), json={"days": 365}).status_code == 201
        )

        secret = body["token"]
        assert client.get("/api/me", headers=bearer(secret)).status_code == 200
        _expire(client, body["id"])
        refused = assert_error(client.get("/api/me", headers=bearer(secret)), 401, "unauthorized")
        assert "expired" in str(refused["message"])
        listed = {t["id"]: t for t in client.get("/api/tokens", headers=bearer(ada)).json()["tokens"]}
        assert listed[body["id"]]["state"] == "expired" and listed[body["id"]]["revoked_at"] is None
        assert listed[default.id]["state"] == "active"
        [entry] = [e for e in state.engine.audit_entries(action="token.create") if e.details["days"] == 2]
        assert entry.details["token_id"] == body["id"] and secret not in json.dumps(entry.details)


def test_token_commands_take_a_lifetime_and_list_expired_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LETHE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(cli_app, ["user", "add", "erin", "--role", "operator"]).exit_code == 0
    made = runner.invoke(cli_app, ["token", "create", "erin", "--days", "30", "--json"])
    assert made.exit_code == 0, made.output
    token = json.loads(made.stdout)
    lived = datetime.fromisoformat(token["expires_at"]) - datetime.fromisoformat(token["created_at"])
    assert lived == timedelta(days=30)
    too_long = runner.invoke(cli_app, ["token", "create", "erin", "--days", str(MAX_TOKEN_DAYS + 1)])
    assert too_long.exit_code == 2 and f"1 to {MAX_TOKEN_DAYS} days" in too_long.output
    human = runner.invoke(cli_app, ["token", "create", "erin"])
    assert human.exit_code == 0 and "expires " in human.stdout
    catalog = Catalog(make_settings(tmp_path / "data").resolved_catalog_url)
    try:
        with catalog.session() as session, session.begin():
            session.get(ApiTokenRow, token["id"]).expires_at = datetime.now(UTC) - timedelta(minutes=1)
        assert Users(catalog).user_for_token(token["token"]) is None
    finally:
        catalog.close()
    listed = runner.invoke(cli_app, ["token", "list", "--json"])
    states = {t["id"]: t["state"] for t in json.loads(listed.stdout)["tokens"]}
    assert states[token["id"]] == "expired" and list(states.values()).count("active") == 1
    table = runner.invoke(cli_app, ["token", "list"], terminal_width=200)
    assert "expired" in table.stdout and "active" in table.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_tokens_made_before_the_upgrade_get_the_default_lifetime(backend: str, tmp_path: Path) -> None:
    """Migration 0012 on a catalog holding tokens: each expires 90 days after it was made, so one
    made longer ago is refused from the upgrade on."""
    given = f"sqlite:///{tmp_path / 'c.sqlite3'}" if backend == "sqlite" else postgres_catalog(tmp_path / "c")
    url = sqlalchemy_url(given)
    migrate_catalog(url, "0011")
    when = sa.DateTime(timezone=True)
    user = sa.table("app_user", *(sa.column(c) for c in ("id", "name", "password_hash", "roles")),
                    sa.column("created_at", when))  # fmt: skip
    token = sa.table("api_token", *(sa.column(c) for c in ("id", "user_id", "token_hash", "label")),
                     sa.column("created_at", when))  # fmt: skip
    old, recent = datetime.now(UTC) - timedelta(days=100), datetime.now(UTC) - timedelta(days=10)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(user).values(id=1, name="olga", password_hash="x", roles="operator", created_at=old)
        )
        for token_id, made in ((1, old), (2, recent)):
            connection.execute(
                sa.insert(token).values(
                    id=token_id, user_id=1, token_hash=str(token_id) * 64, label="t", created_at=made
                )
            )
    engine.dispose()
    catalog = Catalog(given)  # migrates to head
    try:
        by_id = {t.id: t for t in Users(catalog).tokens()}
        for token_id, made in ((1, old), (2, recent)):
            assert abs(by_id[token_id].expires_at - (made + timedelta(days=90))) < timedelta(seconds=1)
        assert by_id[1].state == "expired" and by_id[2].state == "active"
    finally:
        catalog.close()


# -- a password reset revokes the user's tokens -------------------------------------------------


def test_a_password_reset_revokes_the_users_tokens_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("LETHE_DATA_DIR", str(data))
    with serve(data) as client:
        otto = add_user(client, "otto", "operator")
        other = add_user(client, "olga", "operator")
        state = client.app.state.lethe  # type: ignore[attr-defined]
        second = state.users.create_token("otto", label="laptop", actor="test")[1]
        assert client.get("/api/me", headers=bearer(otto)).status_code == 200
        reset = CliRunner().invoke(cli_app, ["user", "reset-password", "otto"])
        assert reset.exit_code == 0, reset.output
        assert "2 API token(s) of theirs revoked" in reset.stderr
        for secret in (otto, second):
            assert_error(client.get("/api/me", headers=bearer(secret)), 401, "unauthorized")
        assert client.get("/api/me", headers=bearer(other)).status_code == 200  # only otto's
        assert all(t.state == "revoked" for t in state.users.tokens("otto"))
        [entry] = state.engine.audit_entries(action="user.password")
        ids = sorted(t.id for t in state.users.tokens("otto"))
        assert entry.details == {"user_id": state.users.get("otto").id, "tokens_revoked": ids}
        again = CliRunner().invoke(cli_app, ["user", "reset-password", "otto", "--json"])
        assert json.loads(again.stdout)["tokens_revoked"] == []


# -- a disabled user enabled again --------------------------------------------------------------


def test_enabling_a_user_revives_no_session_and_no_token(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        ada = add_user(client, "ada", "admin")
        carol = add_user(client, "carol", "operator")
        state = client.app.state.lethe  # type: ignore[attr-defined]
        login = {"name": "carol", "password": "carol-password-123"}
        assert client.post("/login", data=login).status_code == 200
        old_session = client.cookies["lethe_session"]
        client.cookies.clear()
        assert_error(client.post("/api/users/carol/enable", headers=bearer(ada)), 409, "conflict")

        assert client.post("/api/users/carol/disable", headers=bearer(ada)).status_code == 200
        enabled = client.post("/api/users/carol/enable", headers=bearer(ada))
        assert enabled.status_code == 200 and enabled.json()["disabled_at"] is None
        assert_error(client.get("/api/me", headers=bearer(carol)), 401, "unauthorized")  # still dead
        assert [t.state for t in state.users.tokens("carol")] == ["revoked"]
        client.cookies.set("lethe_session", old_session)
        assert_error(client.get("/api/me"), 401, "unauthorized")
        client.cookies.clear()
        assert client.post("/login", data=login).status_code == 200  # a new login works
        assert client.get("/api/me").json()["name"] == "carol"
        client.cookies.clear()
        fresh = state.users.create_token("carol", actor="test")[1]
        assert client.get("/api/me", headers=bearer(fresh)).status_code == 200

        carol_id = state.users.get("carol").id
        [disabled] = state.engine.audit_entries(action="user.disable")
        [entry] = state.engine.audit_entries(action="user.enable")
        assert disabled.details["tokens_revoked"] == [state.users.tokens("carol")[0].id]
        assert entry.actor == "user:ada" and entry.details == {"user_id": carol_id, "tokens_revoked": []}
        operator = add_user(client, "op", "operator")
        assert_error(client.post("/api/users/carol/enable", headers=bearer(operator)), 403, "forbidden")
        assert_error(client.post("/api/users/nobody/enable", headers=bearer(ada)), 404, "not_found")


def test_the_enable_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(cli_app, ["user", "add", "erin", "--role", "dpo"]).exit_code == 0
    token = json.loads(runner.invoke(cli_app, ["token", "create", "erin", "--json"]).stdout)
    not_yet = runner.invoke(cli_app, ["user", "enable", "erin"])
    assert not_yet.exit_code == 1 and "not disabled" in not_yet.output
    assert runner.invoke(cli_app, ["user", "disable", "erin"]).exit_code == 0
    enabled = runner.invoke(cli_app, ["user", "enable", "erin", "--json"])
    assert enabled.exit_code == 0, enabled.output
    assert json.loads(enabled.stdout)["disabled_at"] is None
    listed = json.loads(runner.invoke(cli_app, ["token", "list", "--json"]).stdout)["tokens"]
    assert [(t["id"], t["state"]) for t in listed] == [(token["id"], "revoked")]
    human = runner.invoke(cli_app, ["user", "list"])
    assert "erin" in human.stdout


# -- the first admin's password stays out of service logs ---------------------------------------


def test_on_a_terminal_the_first_password_is_printed_and_no_file_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "data")
    master, replica = pty.openpty()
    try:
        with os.fdopen(replica, "w", closefd=False) as terminal:
            assert terminal.isatty()
            monkeypatch.setattr(sys, "stderr", terminal)
            app = create_app(settings)
            monkeypatch.undo()
        shown = b""
        while select.select([master], [], [], 0.5)[0]:
            shown += os.read(master, 4096)
    finally:
        os.close(master)
        os.close(replica)
    text = shown.decode()
    assert "Password (shown once" in text
    password = text.split("shown once, not stored anywhere in clear): ")[1].split()[0]
    assert not (tmp_path / "data" / FIRST_PASSWORD_FILE).exists()
    with TestClient(app) as client:
        assert client.post("/login", data={"name": "admin", "password": password}).status_code == 200


def test_without_a_terminal_the_first_password_waits_in_a_file_deleted_at_first_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    app = create_app(make_settings(data))
    path = (data / FIRST_PASSWORD_FILE).resolve()
    err = capsys.readouterr().err
    assert str(path) in err and "Password (shown once" not in err
    assert path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    assert len(password) >= 20 and password not in err
    held = path.open("rb")  # a reader that had it open sees what is left of it after the login
    try:
        with TestClient(app) as client:
            wrong = client.post("/login", data={"name": "admin", "password": "not-the-password"})
            assert wrong.status_code == 401 and path.exists()  # a failed login keeps it
            assert client.post("/login", data={"name": "admin", "password": password}).status_code == 200
            assert not path.exists()
            assert held.read() == b"\0" * (len(password) + 1)  # overwritten before it was deleted
            client.cookies.clear()
            assert client.post("/login", data={"name": "admin", "password": password}).status_code == 200
    finally:
        held.close()


def test_resetting_the_first_admins_password_deletes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    create_app(make_settings(data))
    path = data / FIRST_PASSWORD_FILE
    assert path.exists()
    monkeypatch.setenv("LETHE_DATA_DIR", str(data))
    reset = CliRunner().invoke(cli_app, ["user", "reset-password", "admin", "--json"])
    assert reset.exit_code == 0, reset.output
    assert not path.exists()


# -- per-account login backoff ------------------------------------------------------------------


def test_failed_logins_back_an_account_off_whatever_the_address(tmp_path: Path) -> None:
    """An attacker who rotates addresses (each under the per-address limit) still gets 429 for the
    account after LETHE_LOGIN_FAILURES failures, for a delay that doubles up to the longest; the
    right password is refused the same way meanwhile; a success clears the account."""
    limits = {"login_failures": 3, "login_failure_window_s": 900, "login_backoff_max_s": 300}
    with serve(tmp_path / "data", **limits) as client:
        add_user(client, "olga", "operator")
        add_user(client, "otto", "operator")
        state = client.app.state.lethe  # type: ignore[attr-defined]
        now = [1000.0]
        state.login_backoff.clock = lambda: now[0]
        peers = iter(range(1, 200))

        def attempt(name: str, password: str) -> TestClient:
            caller = TestClient(client.app, client=(f"203.0.113.{next(peers)}", 40000))
            return caller.post("/login", data={"name": name, "password": password})

        right, wrong = "olga-password-123", "guess-number-x"
        for _ in range(3):
            assert_error(attempt("olga", wrong), 401, "login_failed")
        for password in (wrong, right):  # no oracle: the right password gets the same answer
            refused = assert_error(attempt("olga", password), 429, "rate_limited")
            assert "failed logins for this account" in str(refused["message"])
        response = attempt("olga", right)
        assert response.headers["retry-after"] == "60" and "lethe_session" not in response.cookies
        assert attempt("otto", "otto-password-123").status_code == 200  # other accounts are not held
        for _ in range(3):  # names of no one back off the same way: a 429 tells no name exists
            attempt("nobody", wrong)
        assert attempt("nobody", wrong).status_code == 429

        delays = []
        for _ in range(4):  # each failure after the delay doubles it, up to the longest
            now[0] += int(attempt("olga", right).headers["retry-after"])
            assert_error(attempt("olga", wrong), 401, "login_failed")
            delays.append(int(attempt("olga", right).headers["retry-after"]))
        assert delays == [120, 240, 300, 300]
        now[0] += 300
        assert attempt("olga", right).status_code == 200  # the delay passed: the right one works
        for _ in range(2):
            assert_error(attempt("olga", wrong), 401)
        assert attempt("olga", right).status_code == 200  # the success cleared the count

        for _ in range(2):
            assert_error(attempt("olga", wrong), 401)
        now[0] += 901  # a quiet window: the count starts afresh
        for _ in range(2):
            assert_error(attempt("olga", wrong), 401)
        assert attempt("olga", right).status_code == 200

        olga = state.users.get("olga").id
        entries = state.engine.audit_entries(action="login.failed", limit=500)
        backoffs = [e for e in entries if e.details["reason"] == "backoff"]
        assert {e.details["user_id"] for e in backoffs} == {olga, "unknown"}
        assert len({e.details["client"] for e in backoffs}) == len(backoffs)  # each address told apart
        assert all(
            e.actor == "anonymous" and set(e.details) == {"user_id", "reason", "client"} for e in entries
        )


def test_the_backoff_follows_the_settings(tmp_path: Path) -> None:
    with serve(tmp_path / "data", login_failures=2, login_backoff_max_s=30) as client:
        add_user(client, "olga", "operator")
        client.app.state.lethe.login_backoff.clock = lambda: 5.0  # type: ignore[attr-defined]
        for status in (401, 401, 429):
            response = client.post("/login", data={"name": "olga", "password": "guess-number-x"})
            assert response.status_code == status
        assert response.headers["retry-after"] == "30"  # the first delay, capped by the longest
