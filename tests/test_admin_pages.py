"""The admin's pages and the polish of the newcomer review (rows 4, 5, 15, 21, 24), through the real
app over HTTP: the users and tokens page and the API calls its forms make with a session and its
CSRF token, the sources page's lifecycle actions, HTML error pages for browsers (JSON for the API
and for clients asking for JSON), the empty dashboard's checklist and the audit page's short hashes."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api_support import add_user, assert_error, serve

LOGINS = {"login_rate_per_minute": 1000}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def login(client: TestClient, name: str, password: str | None = None) -> str:
    client.cookies.clear()
    answer = client.post("/login", data={"name": name, "password": password or f"{name}-password-123"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf_token"])


def test_the_users_page_lists_users_and_its_forms_create_reset_disable_and_make_tokens(
    tmp_path: Path,
) -> None:
    with serve(tmp_path / "data", **LOGINS) as client:
        add_user(client, "ada", "admin")
        add_user(client, "otto", "operator")
        login(client, "otto")
        assert client.get("/users").status_code == 403  # admins only
        csrf = login(client, "ada")
        page = client.get("/users")
        assert page.status_code == 200
        assert 'href="/users"' in page.text  # in the admin's navigation
        for name in ("ada", "otto"):
            assert f'data-user="{name}"' in page.text
        assert 'data-api="/api/users/otto/reset-password"' in page.text
        assert 'data-api="/api/users/otto/disable"' in page.text
        assert 'data-api="/api/users/ada/tokens"' in page.text  # a token for yourself only
        assert 'data-api="/api/users/otto/tokens"' not in page.text
        assert "lethe token create otto" in page.text

        headers = {"X-CSRF-Token": csrf}
        no_csrf = client.post("/api/users", json={"name": "dana", "roles": ["dpo"]})
        assert no_csrf.status_code == 403
        roles = {"name": "dana", "roles": ["dpo", "operator"]}
        made = client.post("/api/users", json=roles, headers=headers)
        assert made.status_code == 201 and len(made.json()["password"]) >= 12
        reset = client.post("/api/users/dana/reset-password", headers=headers)
        assert reset.status_code == 200 and reset.json()["password"] != made.json()["password"]
        token = client.post("/api/users/ada/tokens", json={"label": "backup"}, headers=headers)
        assert token.status_code == 201 and token.json()["token"]
        assert_error(client.post("/api/users/dana/tokens", json={}, headers=headers), 403)
        assert client.post("/api/users/otto/disable", headers=headers).status_code == 200

        page = client.get("/users").text
        row = page[page.index('data-user="dana"') :]
        assert "operator, dpo" in row[: row.index("</tr>")]
        otto = page[page.index('data-user="otto"') :]
        otto = otto[: otto.index("</tr>")]
        assert "disabled" in otto and 'data-api="/api/users/otto/enable"' in otto
        assert "backup" in page and f"#{token.json()['id']}" in page
        assert made.json()["password"] not in page and reset.json()["password"] not in page  # shown once
        assert token.json()["token"] not in page
        login(client, "dana", reset.json()["password"])  # the new password works


def test_browsers_get_an_html_error_page_and_the_api_keeps_json(tmp_path: Path) -> None:
    with serve(tmp_path / "data", **LOGINS) as client:
        page = client.get("/no/such/page", headers=HTML)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "404 Not Found" in page.text and 'href="/login"' in page.text  # a way home
        assert "Content-Security-Policy" in page.headers
        add_user(client, "ada", "admin")
        login(client, "ada")
        page = client.get("/no/such/page", headers=HTML)
        assert page.status_code == 404 and "Back to the dashboard" in page.text
        wrong = client.put("/sources", headers=HTML)
        assert (
            wrong.status_code == 405 and "405" in wrong.text and "text/html" in wrong.headers["content-type"]
        )

        assert_error(client.get("/api/no/such", headers=HTML), 404, "not_found")  # the API: JSON always
        assert_error(client.get("/no/such/page"), 404, "not_found")  # no Accept: JSON
        assert_error(client.get("/no/such/page", headers={"Accept": "application/json"}), 404, "not_found")
        assert_error(client.get("/no/such/page", headers={"Accept": "application/json, text/html"}), 404)


def test_an_empty_dashboard_shows_the_three_steps_and_ticks_each_when_done(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    def ticks(client: TestClient) -> list[str]:
        text = client.get("/").text
        if "Getting started" not in text:
            return []
        return re.findall(r'<li class="(done|todo)">', text)

    with serve(tmp_path / "data", **LOGINS) as client:
        add_user(client, "ada", "admin", "operator")
        csrf = login(client, "ada")
        headers = {"X-CSRF-Token": csrf}
        assert ticks(client) == ["todo", "todo", "todo"]
        page = client.get("/").text
        for link in ('href="/sources"', 'href="/ingest"', 'href="/search"'):
            assert link in page
        source = {"name": "gala", "basis": "consent", "art9": "explicit_consent", "purpose": "find my photos",
                  "jurisdiction": "FR", "retention_days": 30, "mode": "all_faces"}  # fmt: skip
        assert client.post("/api/sources", json=source, headers=headers).status_code == 201
        assert ticks(client) == ["done", "todo", "todo"]
        photo = fixtures_dir / "identities" / "joe_biden" / "biden.jpg"
        client.app.state.lethe.engine.ingest("gala", photo.parent)  # type: ignore[attr-defined]
        assert ticks(client) == ["done", "done", "todo"]
        found = client.post(
            "/api/search",
            headers=headers,
            data={"purpose": "test: checklist"},
            files={"probe": ("biden.jpg", photo.read_bytes(), "image/jpeg")},
        )
        assert found.status_code == 200, found.text
        assert ticks(client) == []  # all done: the checklist goes


def test_the_sources_page_offers_the_lifecycle_with_its_consequences_to_admins_only(tmp_path: Path) -> None:
    with serve(tmp_path / "data", **LOGINS) as client:
        add_user(client, "ada", "admin")
        add_user(client, "dora", "dpo")
        csrf = login(client, "ada")
        source = {"name": "gala", "basis": "consent", "art9": "explicit_consent", "purpose": "find my photos",
                  "jurisdiction": "FR", "retention_days": 30}  # fmt: skip
        assert client.post("/api/sources", json=source, headers={"X-CSRF-Token": csrf}).status_code == 201
        page = client.get("/sources").text
        assert 'data-api="/api/sources/gala" data-method="PATCH"' in page
        assert (
            'data-api="/api/sources/gala/suspend"' in page and 'data-api="/api/sources/gala/delete"' in page
        )
        assert "leave search results at once" in page and "rights requests" in page
        assert "cannot be" in page and 'name="confirm"' in page and "Type <strong>gala</strong>" in page
        assert "next retention sweep" in page
        client.post("/api/sources/gala/suspend", headers={"X-CSRF-Token": csrf})
        page = client.get("/sources").text
        assert 'data-api="/api/sources/gala/resume"' in page and "state-suspended" in page
        login(client, "dora")
        assert "/api/sources/gala/delete" not in client.get("/sources").text


def test_the_audit_page_shortens_hashes_and_lays_details_out_as_a_grid(tmp_path: Path) -> None:
    with serve(tmp_path / "data", **LOGINS) as client:
        add_user(client, "dora", "dpo")
        login(client, "dora")
        text = client.get("/audit").text
        head = client.app.state.lethe.engine.verify_audit().head  # type: ignore[attr-defined]
        assert f'title="{head}"' in text and f'data-copy="{head}"' in text
        assert f">{head[:12]}…</code>" in text and f">{head}<" not in text
        assert '<dl class="kv">' in text and "<dt>roles</dt>" in text
