"""The web pages through the real app (ASGI client, no browser): every page for the roles that may
open it, the login redirect without a session, the 403 page for the wrong role, the navigation by
role, the DPO's pages on a real request, and a portal page with no place for any result."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import lethe

from api_support import add_user, assert_error, jpeg, serve
from conftest import copy_gallery

ROLES = ("admin", "operator", "dpo", "monitor")
STRICT = {"erasure_auto_threshold": 0.999, "erasure_review_threshold": 0.9}
#: Many logins in a row from one address: above the default limit of 10 a minute.
LOGINS = {"login_rate_per_minute": 1000}

#: Every page that needs a login, and the roles that may open it ({id} = a real request).
PAGES: dict[str, set[str]] = {
    "/": {"admin", "operator", "dpo"},
    "/search": {"operator"},
    "/ingest": {"operator"},
    "/sources": {"admin", "operator", "dpo"},
    "/consents": {"admin", "dpo"},
    "/requests": {"dpo"},
    "/requests?show=all": {"dpo"},
    "/requests/{id}": {"dpo"},
    "/requests/{id}/review": {"dpo"},
    "/audit": {"dpo"},
    "/incidents": {"admin", "dpo"},
    "/incidents?show=all": {"admin", "dpo"},
    "/orders": {"admin", "dpo"},
    "/assessments": {"admin", "dpo"},
    "/assessments/dpia": {"admin", "dpo"},
    "/assessments/fria": {"admin", "dpo"},
    "/assessments/art30": {"admin", "dpo"},
    "/users": {"admin"},
}
#: Pages opened by competence rather than role (their rules: tests/test_candidate_pages.py).
COMPETENCE_PAGES = {"/searches/{seq}/candidates/{face_id}"}
#: Pages of one record other than a request, and the roles that may open them (their records and
#: rules: tests/test_incidents.py).
RECORD_PAGES = {"/incidents/{incident_id}": {"admin", "dpo"}}
NAV_LABELS = {"/": "Dashboard", "/search": "Search", "/ingest": "Ingest", "/sources": "Sources",
              "/consents": "Consents", "/requests": "Requests", "/audit": "Audit", "/incidents": "Incidents",
              "/orders": "Orders", "/assessments": "Assessments", "/users": "Users"}  # fmt: skip


@pytest.fixture(scope="module")
def client(gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with serve(copy_gallery(gallery, tmp_path_factory.mktemp("web")), **STRICT, **LOGINS) as test_client:
        for role in ROLES:
            add_user(test_client, role, role)
        yield test_client


@pytest.fixture(scope="module")
def request_id(client: TestClient, fixtures_dir: Path) -> int:
    """An erasure request run once: some faces erased at once, some in the review queue."""
    csrf = login(client, "dpo")
    probe = fixtures_dir / "identities" / "joe_biden" / "biden.jpg"
    opened = client.post(
        "/api/requests",
        headers={"X-CSRF-Token": csrf},
        data={"kind": "erasure", "contact": "joe@example.org"},
        files={"photos": jpeg(probe)},
    )
    assert opened.status_code == 201, opened.text
    number = int(opened.json()["id"])
    check = {"method": "id_document", "attest": True}
    verified = client.post(f"/api/requests/{number}/verify", headers={"X-CSRF-Token": csrf}, json=check)
    assert verified.status_code == 200, verified.text
    ran = client.post(f"/api/requests/{number}/run", headers={"X-CSRF-Token": csrf}, json={"auto": True})
    assert ran.status_code == 200 and ran.json()["review_candidates"] >= 1, ran.text
    return number


def login(client: TestClient, name: str) -> str:
    client.cookies.clear()
    response = client.post("/login", data={"name": name, "password": f"{name}-password-123"})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def nav_links(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S)
    return re.findall(r'href="([^"]+)"', nav.group(1)) if nav else []


def test_the_page_matrix_covers_every_page() -> None:
    from lethe.web import admin, dpo, incidents, operator, public

    modules = (dpo, operator, admin, incidents)
    pages = {getattr(r, "path", "") for module in modules for r in module.router.routes}
    listed = {p.split("?")[0].replace("{id}", "{request_id}") for p in PAGES}
    assert pages == listed | COMPETENCE_PAGES | set(RECORD_PAGES)
    assert {getattr(r, "path", "") for r in public.router.routes} == {"/login", "/portal", "/portal/status"}


def test_pages_redirect_to_login_without_a_session(client: TestClient) -> None:
    client.cookies.clear()
    for page in [*PAGES, *COMPETENCE_PAGES, *RECORD_PAGES]:
        path = page.replace("{id}", "1").replace("{seq}", "1").replace("{face_id}", "1")
        path = path.replace("{incident_id}", "1")
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        location = response.headers["location"]
        assert location.startswith("/login"), location
        if path != "/":
            assert "next=" in location
    login_page = client.get("/search?x=1")  # followed: the login form, coming back afterwards
    assert login_page.status_code == 200 and 'name="next" value="/search?x=1"' in login_page.text
    # a forged or expired session is no session
    client.cookies.set("lethe_session", "forged.cookie.value")
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.clear()


def test_login_page_and_its_next(client: TestClient) -> None:
    client.cookies.clear()
    page = client.get("/login")
    assert page.status_code == 200
    assert 'action="/login"' in page.text and 'autocomplete="current-password"' in page.text
    assert '<label for="name">' in page.text and '<label for="password">' in page.text
    offsite = client.get("/login", params={"next": "//evil.example/"})
    assert 'name="next" value="/"' in offsite.text  # an off-site target is never kept
    # the form posts to the API's /login, which redirects to `next` (works without JavaScript)
    done = client.post(
        "/login",
        data={"name": "operator", "password": "operator-password-123", "next": "/search"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/search"
    # logged in: /login goes on to the page
    again = client.get("/login", params={"next": "/search"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/search"
    assert_error(
        client.post("/login", data={"name": "operator", "password": "nope-nope"}), 401, "login_failed"
    )
    client.cookies.clear()


@pytest.mark.parametrize("role", ROLES)
def test_every_page_for_the_right_role_only(client: TestClient, request_id: int, role: str) -> None:
    login(client, role)
    for page, allowed in PAGES.items():
        path = page.replace("{id}", str(request_id))
        response = client.get(path, follow_redirects=False)
        if role in allowed:
            assert response.status_code == 200, (path, response.text[:300])
        else:
            assert response.status_code == 403, path
            assert "Not for your role" in response.text and role in response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
    html = client.get("/sources" if role != "monitor" else "/").text
    expected = [p for p, label in NAV_LABELS.items() if role in PAGES[p]]
    assert nav_links(html) == expected
    client.cookies.clear()


def test_pages_use_no_inline_script_and_only_local_assets(client: TestClient, request_id: int) -> None:
    login(client, "admin")
    pages = ["/", "/sources", "/consents", "/search", "/ingest", "/orders", "/audit"]
    for path in [*pages, f"/requests/{request_id}"]:
        html = client.get(path).text
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], path
        assert " style=" not in html and "<style" not in html, path
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), path  # no CDN
    client.cookies.clear()


def test_dashboard_shows_the_figures(client: TestClient, request_id: int) -> None:
    login(client, "dpo")
    html = client.get("/").text
    stats = client.get("/api/stats").json()
    assert f'<span class="figure">{stats["faces"]}</span> <span class="label">faces</span>' in html
    assert "open requests" in html and "Earliest answer due" in html
    assert f'href="/requests/{request_id}"' in html  # the DPO sees the requests due next
    assert 'href="/api/reports/compliance"' in html
    login(client, "operator")
    html = client.get("/").text
    assert "searches today" in html and f'href="/requests/{request_id}"' not in html
    client.cookies.clear()


def test_sources_page_and_the_admin_form(client: TestClient) -> None:
    login(client, "operator")
    html = client.get("/sources").text
    assert '<th scope="row">events</th>' in html and "explicit consent" in html and "365 days" in html
    assert 'data-api="/api/sources"' not in html  # only an admin registers sources
    login(client, "admin")
    html = client.get("/sources").text
    assert 'data-api="/api/sources"' in html
    for field in ("name", "basis", "art9", "purpose", "jurisdiction", "retention_days"):
        assert f'name="{field}"' in html
    assert ">(a) consent</option>" in html and ">(a) explicit consent</option>" in html
    client.cookies.clear()


def test_search_and_ingest_pages(client: TestClient) -> None:
    login(client, "operator")
    search = client.get("/search").text
    assert 'type="file" id="probe" name="probe"' in search and "data-dropzone" in search
    assert re.search(r'<input id="purpose" name="purpose" required', search)
    assert '<script src="/static/search.js"' in search
    ingest = client.get("/ingest").text
    assert '<option value="events">' in ingest and "multiple required" in ingest
    assert 'data-api="/api/ingest/upload"' in ingest and 'data-api="/api/ingest"' in ingest
    assert "<progress" in ingest
    # a running job can be cancelled from the page: a button, and the script calls the API's cancel
    assert '<button type="button" id="job-cancel"' in ingest and 'data-count="no_face"' in ingest
    script = client.get("/static/ingest.js").text
    assert "/cancel`" in script and "window.Lethe.api(" in script  # Lethe.api sends the CSRF token
    followed = client.get("/ingest", params={"job": "abc123"}).text
    assert 'data-job="abc123"' in followed
    client.cookies.clear()


def test_request_pages_for_the_dpo(client: TestClient, request_id: int) -> None:
    login(client, "dpo")
    queue = client.get("/requests").text
    assert f'href="/requests/{request_id}"' in queue and "to review" in queue
    detail = client.get(f"/requests/{request_id}").text
    assert "joe@example.org" in detail and "in review" in detail
    assert f'src="/api/requests/{request_id}/photos/0"' in detail
    assert f'href="/requests/{request_id}/review"' in detail
    # destructive actions ask first, in a <dialog>; answering waits for the reviewer
    assert '<dialog id="reject-dialog"' in detail and '<dialog id="run-dialog"' in detail
    assert "Answer and close</button>" in detail and "still wait for a decision" in detail
    review = client.get(f"/requests/{request_id}/review").text
    crops = re.findall(r'<img src="(/api/faces/\d+/crop\?t=[^"]+)"', review)
    assert crops, review[:500]
    for crop in crops:  # signed for this user: they load
        assert client.get(crop.replace("&amp;", "&")).headers["content-type"] == "image/jpeg"
    face = f"/api/requests/{request_id}/photos/0/face"
    assert review.count(f'src="{face}"') == len(crops)  # each candidate beside the requester's face
    assert client.get(face).headers["content-type"] == "image/jpeg"
    assert review.count("Same person (y)</button>") == len(crops)
    missing = client.get("/requests/424242")
    assert missing.status_code == 404 and "no request number 424242" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    client.cookies.clear()


def test_audit_page_verifies_the_chain(client: TestClient, request_id: int) -> None:
    login(client, "dpo")
    html = client.get("/audit").text
    assert "Chain verified" in html and "request.open" in html
    filtered = client.get("/audit", params={"action": "request.open"}).text
    assert "<code>request.open</code>" in filtered and "<code>search</code>" not in filtered
    client.cookies.clear()


def test_orders_page(client: TestClient) -> None:
    login(client, "dpo")
    html = client.get("/orders").text
    assert "No order received" in html and 'data-api="/api/orders/stop"' not in html
    login(client, "admin")
    html = client.get("/orders").text
    assert '<dialog id="stop-dialog"' in html and 'data-api="/api/orders/stop"' in html
    client.cookies.clear()


def test_logout_is_a_plain_form_with_the_csrf_token(client: TestClient) -> None:
    csrf = login(client, "admin")
    html = client.get("/").text
    assert f'<input type="hidden" name="csrf_token" value="{csrf}">' in html
    assert f'<meta name="csrf-token" content="{csrf}">' in html
    out = client.post("/logout", data={"csrf_token": csrf, "next": "/login"}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_portal_has_no_place_for_results(client: TestClient) -> None:
    client.cookies.clear()
    response = client.get("/portal")
    assert response.status_code == 200
    html = response.text
    assert 'data-api="/api/portal/requests"' in html
    for kind in ("access", "erasure", "objection", "restriction"):
        assert f'value="{kind}"' in html
    assert 'name="contact"' in html and 'name="photos"' in html
    # it calls nothing but the portal's endpoints (submit, and confirm the contact address with the
    # code sent there), and has nowhere to show what the gallery holds; it links the public key that
    # checks the signed answers (nothing of the gallery)
    endpoints = {"/api/portal/requests", "/api/portal/confirm", "/api/signing-key"}
    assert set(re.findall(r'"(/api/[^"]*)"', html)) == endpoints
    # a photo of someone else is refused (security review, finding 1)
    assert "only about yourself" in html.lower() and "someone else" in html and "is refused" in html
    for word in ("result", "match", "score", "similar", "crop", "found"):
        assert word not in html.lower(), word
    script = client.get("/static/portal.js").text
    assert set(re.findall(r"/api/[\w/]+", script)) == {"/api/portal/requests"}
    for word in ("match", "score", "crop", "candidate"):
        assert word not in script.lower(), word


def test_an_answered_access_request_offers_its_export(client: TestClient, fixtures_dir: Path) -> None:
    csrf = login(client, "dpo")
    headers = {"X-CSRF-Token": csrf}
    probe = fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"
    opened = client.post(
        "/api/requests",
        headers=headers,
        data={"kind": "access", "contact": "kit@example.org"},
        files={"photos": jpeg(probe)},
    )
    number = opened.json()["id"]
    check = {"method": "id_document", "attest": True}
    assert client.post(f"/api/requests/{number}/verify", headers=headers, json=check).status_code == 200
    client.post(f"/api/requests/{number}/run", headers=headers, json={"auto": True})
    pending = client.get(f"/api/requests/{number}/candidates", params={"pending": True}).json()["candidates"]
    for candidate in pending:  # whatever waits for a reviewer: not the person
        decided = client.post(
            f"/api/requests/{number}/candidates/{candidate['face_id']}",
            headers=headers,
            json={"confirm": False},
        )
        assert decided.status_code == 200, decided.text
    if client.get(f"/api/requests/{number}").json()["state"] != "answered":
        assert client.post(f"/api/requests/{number}/answer", headers=headers).status_code == 200
    html = client.get(f"/requests/{number}").text
    assert f'href="/api/requests/{number}/export"' in html and "nothing is left to do" in html
    assert f"/api/requests/{number}/photos/0" not in html  # deleted with the answer
    # no action left on a closed request but deleting its export once delivered
    assert re.findall(r'data-api="([^"]+)"', html) == [f"/api/requests/{number}/export"]
    review = client.get(f"/requests/{number}/review").text
    assert "nothing left to review" in review
    client.cookies.clear()


def test_counts_read_as_words_never_as_noun_s() -> None:
    """The newcomer review's polish pass: '1 face', '3 faces', never 'face(s)', on every page the
    web UI and the privacy layer render, and in the messages the browser fills from an answer."""
    from lethe.privacy.pages import counted

    assert counted(1, "face") == "1 face" and counted(0, "face") == "0 faces"
    assert counted(1204, "photo") == "1,204 photos"
    assert counted(2, "person", "people") == "2 people"
    package = Path(lethe.__file__).parent
    roots = [package / "web" / "templates", package / "privacy" / "templates"]
    offenders = [p.name for root in roots for p in root.glob("*.html") if "(s)" in p.read_text()]
    assert offenders == []
