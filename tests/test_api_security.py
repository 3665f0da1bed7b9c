"""The security review's findings about the service itself, each re-run against the real app
(TestClient) or a real ``lethe serve`` on 127.0.0.1: token minting (4), the login redirect and the
CSRF token (6), health (8), revocable sessions (9), the search threshold floor (11), Swagger UI (12),
forwarded headers and global limits (13), crop links after a stop order (18), slow clients (19),
login CSRF and failed logins (20). See ``../shared/reviews/security-2026-12.md``."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_support import Served, lethe_serve

from lethe.http.sessions import safe_next
from lethe.service import create_app

from api_support import PURPOSE, add_user, assert_error, bearer, jpeg, serve
from conftest import copy_gallery, make_settings

LETHE = Path(sys.executable).with_name("lethe")


def _login(client: TestClient, name: str) -> str:
    """Log in with the password add_user gave; the session cookie stays in the client. The CSRF token."""
    response = client.post("/login", data={"name": name, "password": f"{name}-password-123"})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


# -- 8: health ---------------------------------------------------------------------------------


def test_health_tells_no_count(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        assert client.get("/api/health").json() == {"status": "ok"}
        monitor = add_user(client, "mon", "monitor")
        assert "lethe_faces " in client.get("/metrics", headers=bearer(monitor)).text  # counts stay here


# -- 4: tokens only for oneself ------------------------------------------------------------------


def test_an_admin_cannot_mint_a_token_for_another_user(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        ada = add_user(client, "ada", "admin")
        add_user(client, "olga", "operator")
        refused = assert_error(
            client.post("/api/users/olga/tokens", headers=bearer(ada), json={"label": "ci"}), 403, "forbidden"
        )
        assert "yourself" in str(refused["message"])
        state = client.app.state.lethe  # type: ignore[attr-defined]
        olga = state.users.get("olga")
        assert [t.label for t in state.users.tokens("olga")] == ["test"]  # only add_user's, none new
        [attempt] = state.engine.audit_entries(action="token.refused")
        assert attempt.actor == "user:ada" and attempt.details["user_id"] == olga.id
        assert_error(client.post("/api/users/nobody/tokens", headers=bearer(ada)), 404, "not_found")
        own = client.post("/api/users/ada/tokens", headers=bearer(ada), json={"label": "laptop"})
        assert own.status_code == 201 and own.json()["user"] == "ada"
        assert client.get("/api/me", headers=bearer(own.json()["token"])).json()["name"] == "ada"


# -- 6: the login redirect and the CSRF token ------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/x",
        "/\n/evil.example",
        "/\r/evil.example",
        "/\x0b/evil.example",
        "/\x00/evil.example",
        "/\x85/evil.example",
        "/\u2028/evil.example",
        "/ /evil.example",
        "/\\evil.example",
        "//evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_safe_next_refuses_what_a_browser_turns_into_another_site(target: str) -> None:
    assert safe_next(target) is None


def test_safe_next_keeps_paths_of_this_site() -> None:
    for target in ("/", "/requests/3", "/search?x=1&y=%2F", "/a/b#c"):
        assert safe_next(target) == target


def test_the_login_page_never_hands_an_off_site_target_to_its_script(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        page = client.get("/login", params={"next": "/\t/evil.example/x?t={csrf_token}"})
        assert page.status_code == 200
        assert 'data-then="/" data-then-literal' in page.text and "evil.example" not in page.text


# -- 9: revocable sessions -----------------------------------------------------------------------


def test_logout_password_reset_and_disable_end_sessions_at_once(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        add_user(client, "olga", "operator")
        add_user(client, "otto", "operator")
        state = client.app.state.lethe  # type: ignore[attr-defined]

        csrf = _login(client, "olga")
        stolen = client.cookies["lethe_session"]
        assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        client.cookies.clear()
        client.cookies.set("lethe_session", stolen)
        assert_error(client.get("/api/me"), 401, "unauthorized")
        assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
        client.cookies.clear()

        _login(client, "otto")
        otto = client.cookies["lethe_session"]
        assert client.get("/api/me").json()["name"] == "otto"
        state.users.reset_password("otto", actor="test")
        assert_error(client.get("/api/me"), 401, "unauthorized")
        client.cookies.clear()

        _login(client, "olga")  # a new login after the logout works
        assert client.get("/api/me").json()["name"] == "olga"
        state.users.disable("olga", actor="test")
        assert_error(client.get("/api/me"), 401, "unauthorized")
        assert "user.logout" in {e.action for e in state.engine.audit_entries(limit=50)}
        client.cookies.clear()
        client.cookies.set("lethe_session", otto)
        assert_error(client.get("/api/me"), 401, "unauthorized")


# -- 20: login CSRF, failed logins ----------------------------------------------------------------


def test_a_login_from_another_site_is_refused(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        add_user(client, "olga", "operator")
        form = {"name": "olga", "password": "olga-password-123"}
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Referer": "http://evil.example/page"},
            {"Origin": "http://testserver.evil.example"},
        ):
            assert_error(client.post("/login", data=form, headers=headers), 403, "csrf_failed")
            assert "lethe_session" not in client.cookies
        same = client.post("/login", data=form, headers={"Origin": "http://testserver"})
        assert same.status_code == 200
        client.cookies.clear()
        referred = client.post("/login", data=form, headers={"Referer": "http://testserver/login?next=/"})
        assert referred.status_code == 200
        client.cookies.clear()
        assert client.post("/login", data=form).status_code == 200  # a script, no Origin: allowed


def test_failed_logins_are_audited_without_the_name_or_password(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        add_user(client, "olga", "operator")
        state = client.app.state.lethe  # type: ignore[attr-defined]
        olga = state.users.get("olga")
        client.post("/login", data={"name": "olga", "password": "guess-number-one"})
        client.post("/login", data={"name": "my-secret-password-typed-as-name", "password": "x" * 12})
        state.users.disable("olga", actor="test")
        client.post("/login", data={"name": "olga", "password": "olga-password-123"})
        entries = state.engine.audit_entries(action="login.failed")
        assert [(e.details["user_id"], e.details["reason"]) for e in reversed(entries)] == [
            (olga.id, "wrong_password"),
            ("unknown", "unknown_user"),
            (olga.id, "disabled"),
        ]
        assert all(e.actor == "anonymous" for e in entries)
        clients = {e.details["client"] for e in entries}
        assert len(clients) == 1 and len(next(iter(clients))) == 16  # one caller, attributable
        text = json.dumps([e.details for e in entries])
        for secret in ("guess-number-one", "my-secret-password", "olga-password-123", "testclient"):
            assert secret not in text


# -- 13: forwarded headers and global limits ------------------------------------------------------


def _client(data: Path, peer: str, **settings: object) -> TestClient:
    """The real app, its requests coming from ``peer`` (the connection's own address)."""
    app = create_app(make_settings(data, **settings), first_admin=False)
    return TestClient(app, client=(peer, 50000))


def _submit(client: TestClient, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    form = {"kind": "erasure", "contact": "me@example.org"}
    not_a_photo = ("p.jpg", b"not a photo", "image/jpeg")
    return client.post(
        "/api/portal/requests", data=form, files={"photos": not_a_photo}, headers=headers
    ).status_code


def test_a_forwarded_header_from_an_untrusted_peer_changes_no_bucket(tmp_path: Path) -> None:
    with _client(tmp_path / "data", "127.0.0.1", portal_rate_per_minute=1) as client:
        assert _submit(client, "10.0.0.1") == 415  # a bad photo, but it went through the limit
        assert _submit(client, "10.0.0.2") == 429  # the header is not believed: the same bucket
        assert _submit(client) == 429


def test_a_trusted_proxy_names_the_client_and_the_portal_has_a_global_limit(tmp_path: Path) -> None:
    settings = {
        "portal_rate_per_minute": 1,
        "portal_global_rate_per_minute": 3,
        "trusted_proxies": "127.0.0.0/8",
    }
    with _client(tmp_path / "data", "127.0.0.1", **settings) as client:
        assert _submit(client, "10.0.0.1") == 415
        assert _submit(client, "10.0.0.1") == 429  # that client's own bucket
        # the right-most untrusted address counts, whatever the client wrote before it
        assert _submit(client, "10.0.0.1, 10.0.0.2") == 415
        assert _submit(client, "10.0.0.3, 127.0.0.5") == 415  # a second trusted hop is skipped
        assert _submit(client, "10.0.0.4") == 429  # three from everyone: the global limit
        assert client.app.state.lethe.portal_limit.everyone is not None  # type: ignore[attr-defined]


def test_an_ipv6_client_is_one_bucket_per_64(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _client(data, "2001:db8:1:2::1", login_rate_per_minute=1) as first:
        assert first.post("/login", data={"name": "x", "password": "y" * 12}).status_code == 401
        same_64 = TestClient(first.app, client=("2001:db8:1:2:ffff::9", 1))  # the same running app
        assert_error(same_64.post("/login", data={"name": "x", "password": "y" * 12}), 429, "rate_limited")
        other_64 = TestClient(first.app, client=("2001:db8:1:3::1", 1))
        assert other_64.post("/login", data={"name": "x", "password": "y" * 12}).status_code == 401


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    from lethe.errors import ConfigError

    with pytest.raises(ConfigError, match="LETHE_TRUSTED_PROXIES"):
        create_app(make_settings(tmp_path / "data", trusted_proxies="proxy.example"), first_admin=False)


# -- 11 and 18: on a gallery ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gallery_client(gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with serve(copy_gallery(gallery, tmp_path_factory.mktemp("security"))) as client:
        yield client


def test_a_search_threshold_below_the_calibrated_floor_is_refused(
    gallery_client: TestClient, fixtures_dir: Path
) -> None:
    operator = add_user(gallery_client, "op-threshold", "operator")
    probe = jpeg(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    floor = gallery_client.app.state.lethe.settings.match_threshold  # type: ignore[attr-defined]
    engine = gallery_client.app.state.lethe.engine  # type: ignore[attr-defined]
    before = len(engine.audit_entries(action="search", limit=1000))
    for low in (-1.0, floor - 0.01):
        refused = gallery_client.post(
            "/api/search",
            headers=bearer(operator),
            data={"purpose": PURPOSE, "threshold": str(low), "top": "200"},
            files={"probe": probe},
        )
        assert "calibrated match threshold" in str(assert_error(refused, 409, "refused")["message"])
    assert len(engine.audit_entries(action="search", limit=1000)) == before  # nothing was searched
    for ok in (floor, min(1.0, floor + 0.2)):
        found = gallery_client.post(
            "/api/search",
            headers=bearer(operator),
            data={"purpose": PURPOSE, "threshold": str(ok)},
            files={"probe": probe},
        )
        assert found.status_code == 200 and found.json()["threshold"] == pytest.approx(ok)


def test_a_search_crop_link_dies_with_a_stop_order(gallery_client: TestClient, fixtures_dir: Path) -> None:
    operator = add_user(gallery_client, "op-crop", "operator")
    dpo = add_user(gallery_client, "dpo-crop", "dpo")
    admin = add_user(gallery_client, "admin-crop", "admin")
    probe = jpeg(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    found = gallery_client.post(
        "/api/search", headers=bearer(operator), data={"purpose": PURPOSE}, files={"probe": probe}
    )
    match = found.json()["matches"][0]
    assert gallery_client.get(match["crop_url"], headers=bearer(operator)).status_code == 200
    state = gallery_client.app.state.lethe  # type: ignore[attr-defined]
    review_link = state.crop_links.url(match["face_id"], state.users.get("dpo-crop").id, review=True)
    stop = gallery_client.post("/api/orders/stop", headers=bearer(admin), json={"jurisdiction": "FR"})
    assert stop.status_code in (200, 201), stop.text
    refused = assert_error(gallery_client.get(match["crop_url"], headers=bearer(operator)), 403, "forbidden")
    assert "restricted" in str(refused["message"])
    # a DPO's review of an access request still sees it: access covers restricted sources
    assert gallery_client.get(review_link, headers=bearer(dpo)).status_code == 200


# -- 12: Swagger UI --------------------------------------------------------------------------------


def test_docs_are_off_by_default(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        assert_error(client.get("/docs"), 404, "not_found")
        assert client.get("/openapi.json").json()["info"]["title"] == "Lethe"
        assert "/docs" not in client.get("/login").text


def test_docs_when_asked_come_from_the_package_under_a_csp(tmp_path: Path) -> None:
    pytest.importorskip("swagger_ui_bundle", reason="the swagger-ui-bundle package is not installed")
    with serve(tmp_path / "data", api_docs=True) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        scripts = [s.split('"')[0] for s in page.text.split('<script src="')[1:]]
        styles = [s.split('"')[0] for s in page.text.split('<link rel="stylesheet" href="')[1:]]
        assert scripts and all(s.startswith("/docs/assets/") for s in scripts + styles)
        assert "http" not in page.text and "<script>" not in page.text  # nothing remote, nothing inline
        for asset in scripts + styles:
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 20
        assert_error(client.get("/docs/assets/..%2Fswagger-initializer.js"), 404)
        assert_error(client.get("/docs/assets/index.html"), 404, "not_found")


# -- 19 and 6 again: a real `lethe serve` ---------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``lethe serve`` with short head and body deadlines and a portal limit of one a minute."""
    settings = {
        "LETHE_HEADER_TIMEOUT_S": "1",
        "LETHE_BODY_TIMEOUT_S": "1",
        "LETHE_PORTAL_RATE_PER_MINUTE": "1",
    }
    with lethe_serve(tmp_path_factory.mktemp("slow"), **settings) as server:
        yield server


def _dribble(port: int, first: bytes, drip: bytes, *, for_s: float = 20.0) -> tuple[float, bytes]:
    """Open a connection, send ``first``, then ``drip`` every 0.2 s until the server closes it (or
    ``for_s`` passes: the test then fails). Seconds until it was closed, and what the server sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.monotonic()
    received = b""
    try:
        sock.sendall(first)
        sock.setblocking(False)
        while time.monotonic() - started < for_s:
            try:
                while chunk := sock.recv(65536):
                    received += chunk
                return time.monotonic() - started, received  # b"" read: closed by the server
            except BlockingIOError:
                pass
            except OSError:
                return time.monotonic() - started, received
            try:
                sock.send(drip)
            except OSError:
                return time.monotonic() - started, received
            time.sleep(0.2)
        pytest.fail(f"the server kept a dribbling connection open for {for_s} s")
    finally:
        sock.close()


def test_a_request_head_sent_slowly_is_cut_off(served: Served) -> None:
    seconds, answer = _dribble(served.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n")
    assert seconds < 10 and answer == b""
    # an idle connection that never sends a byte is closed too
    seconds, _ = _dribble(served.port, b"", b"")
    assert seconds < 10
    assert httpx.get(f"{served.url}/api/health").json() == {"status": "ok"}  # others are served


def test_a_body_sent_slowly_gets_408(served: Served) -> None:
    head = (
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000\r\n\r\nname=admin&password="
    )
    seconds, answer = _dribble(served.port, head, b"x")
    assert seconds < 10
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request_timeout" in answer


def test_a_forwarded_header_moves_no_real_client_to_another_bucket(served: Served) -> None:
    """The review's reproduction over a real socket: uvicorn believed X-Forwarded-For from 127.0.0.1."""
    form = {"kind": "erasure", "contact": "me@example.org"}
    files = {"photos": ("p.jpg", b"not a photo", "image/jpeg")}
    url = f"{served.url}/api/portal/requests"
    first = httpx.post(url, data=form, files=files, headers={"X-Forwarded-For": "10.0.0.1"})
    assert first.status_code == 415  # a bad photo, but through the limit
    for i in range(2, 5):
        again = httpx.post(url, data=form, files=files, headers={"X-Forwarded-For": f"10.0.0.{i}"})
        assert_error(again, 429, "rate_limited")


def test_the_login_redirect_stays_on_this_site_in_a_browser(served: Served, tmp_path: Path) -> None:
    """The review's reproduction in Chromium: ``next=/<tab>/evil.example/x?t={csrf_token}``."""
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("no Chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    target = f"{served.url}/login?next=/%09/evil.example/x%3Ft%3D%7Bcsrf_token%7D"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(target)
            page.fill("#name", "admin")
            page.fill("#password", served.admin_password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
            assert page.url == f"{served.url}/"
            csrf = page.context.cookies(served.url)
            token = next(c["value"] for c in csrf if c["name"] == "lethe_csrf")
            assert token not in page.url
        finally:
            browser.close()


def test_a_too_short_purpose_is_told_as_such(gallery_client: TestClient, fixtures_dir: Path) -> None:
    """Review, small items: ``purpose=x`` was answered "a search must state its purpose"."""
    operator = add_user(gallery_client, "op-purpose", "operator")
    probe = jpeg(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    for short in ("x", "   "):
        refused = gallery_client.post(
            "/api/search", headers=bearer(operator), data={"purpose": short}, files={"probe": probe}
        )
        assert "3 characters" in str(assert_error(refused, 422)["message"])
