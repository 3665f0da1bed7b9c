"""Two-person verification and the global stop on the pages, in a real browser (issue 18): Playwright
drives Debian's Chromium against a real ``lethe serve``.

The admin gives olga and vera the verifier competence (the CLI); olga searches a photo of Obama on
the search page and sees each match as a candidate identification needing two verifications, with
no photo and, as a verifier, no score until her verdict; she confirms the best match. Vera opens
the candidate page olga passed on, sees "1 of 2" but not olga's verdict nor the score, compares the
probe's face with the candidate's, and confirms. Olga's page then opens the photo and marks the
person identified. The admin's global stop makes olga's next search show the stop message. And the
audit page on a phone: no sideways scrolling, no entry taller than 400 px.

Skipped where ``/usr/bin/chromium`` or the ``playwright`` package is missing (as
tests/test_web_browser.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from browser_support import launch, playwright_or_skip
from serve_support import Served, lethe_serve

from conftest import child_env

sync_api = playwright_or_skip()

LETHE = Path(sys.executable).with_name("lethe")
PHONE = {"width": 390, "height": 844}
PURPOSE = "browser test: missing person, file 2027-114"

pytestmark = pytest.mark.usefixtures("default_models")


class Service:
    def __init__(self, served: Served, folder: Path) -> None:
        self.url = served.url
        self.admin_password = served.admin_password
        self.env = child_env() | {"LETHE_DATA_DIR": str(folder / "data"), "LETHE_WORKERS": "1"}

    def cli(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(LETHE), *args, "--json"], env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Iterator[Service]:
    """A running service whose gallery holds the fixture identities, with two trained verifiers."""
    folder = tmp_path_factory.mktemp("oversight")
    photos = folder / "photos"
    shutil.copytree(fixtures_dir / "identities", photos)
    with lethe_serve(folder, LETHE_VERIFY_SCORE_AFTER_JUDGEMENT="true") as served:
        service = Service(served, folder)
        service.cli("source", "add", "gala", "--basis", "consent", "--art9", "explicit_consent",
                    "--purpose", "find missing persons", "--jurisdiction", "FR", "--retention-days", "90",
                    "--mode", "all_faces")  # fmt: skip
        assert service.cli("ingest", "gala", str(photos))["faces"] > 5
        yield service


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        sync_api.expect.set_options(timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, errors: list[str], **options: Any) -> Any:
    context = browser.new_context(**options)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def log_in(page: Any, service: Service, name: str, password: str, start: str = "/") -> None:
    page.goto(service.url + start)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page).to_have_url(service.url + start)


def search(page: Any, probe: Path) -> None:
    page.set_input_files("#probe", str(probe))
    page.get_by_label("Purpose of this search").fill(PURPOSE)
    page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(page.locator("#search-form")).to_have_attribute("aria-busy", "false")


def loaded(page: Any, image: Any) -> None:
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def test_two_verifiers_open_a_match_and_the_stop_halts_the_search_page(
    service: Service, browser: Any, fixtures_dir: Path
) -> None:
    expect = sync_api.expect
    passwords = {}
    for name in ("olga", "vera"):
        passwords[name] = service.cli("user", "add", name, "--role", "operator")["password"]
        service.cli("user", "competence", name, "--verifier", "--trained", date.today().isoformat())
    errors: list[str] = []

    # -- olga searches: candidates needing two verifications, no photo, no score before her verdict --
    olga = new_page(browser, errors, viewport={"width": 1280, "height": 900})
    log_in(olga, service, "olga", passwords["olga"], start="/search")
    search(olga, fixtures_dir / "identities" / "barack_obama" / "obama.jpg")
    best = olga.locator(".match").first
    block = best.locator("[data-candidate]")
    expect(block).to_have_attribute("data-state", "pending")
    expect(block.locator(".candidate-state")).to_contain_text(
        "Candidate identification — needs 2 verifications (0 of 2 given)"
    )
    expect(block.locator(".photo")).to_be_hidden()
    expect(block.locator(".score")).to_be_hidden()
    expect(block.locator(".score-withheld")).to_be_visible()
    expect(block.get_by_role("button", name="Mark identified")).to_be_hidden()

    block.get_by_label("Same person").check()
    block.get_by_label("Note").fill("same scar above the left eyebrow")
    block.get_by_role("button", name="Give my verdict").click()
    expect(block).to_have_attribute("data-your-verdict", "confirm")
    expect(block.locator(".candidate-state")).to_contain_text("(1 of 2 given)")
    expect(block.locator(".candidate-state")).to_contain_text("You confirmed it.")
    # after her verdict: the score, its plain-language band and the rates measured at it
    expect(block.locator(".score")).to_be_visible()
    expect(block.locator(".likelihood")).to_have_text(
        re.compile(r"^(very likely the same person|likely the same person|possible — check carefully)$")
    )
    expect(block.locator(".rates")).to_contain_text(
        "of searches for someone absent returned a match that strong"
    )
    expect(block.locator(".photo")).to_be_hidden()  # one confirmation is not enough
    expect(block.locator(".verdict-form")).to_be_hidden()
    candidate_page = best.locator(".candidate-link").get_attribute("href")
    assert candidate_page and candidate_page.startswith("/searches/")

    # -- vera opens the link olga passed on: 1 of 2, neither olga's verdict nor the score ------------
    vera = new_page(browser, errors, viewport={"width": 1280, "height": 900})
    log_in(vera, service, "vera", passwords["vera"], start=candidate_page)
    vblock = vera.locator("[data-candidate]")
    expect(vblock.locator(".candidate-state")).to_contain_text("(1 of 2 given)")
    expect(vblock).to_have_attribute("data-state", "pending")
    main = vera.locator("main").inner_text()
    assert "confirmed" not in main and "olga" not in main and "scar" not in main
    expect(vblock.locator(".score")).to_be_hidden()
    expect(vblock.locator(".score-withheld")).to_be_visible()
    expect(vblock.locator(".photo")).to_be_hidden()
    loaded(vera, vera.locator("#probe-face"))  # the probe's face, from the sealed search log
    loaded(vera, vera.locator("#candidate-face"))
    vblock.get_by_label("Same person").check()
    vblock.get_by_role("button", name="Give my verdict").click()
    expect(vblock).to_have_attribute("data-state", "verified")
    expect(vblock.locator(".candidate-state")).to_contain_text("Verified: 2 verifiers confirmed")
    expect(vblock.locator(".score")).to_be_visible()

    # -- olga's page: the photo opens and "Mark identified" appears ---------------------------------
    block.get_by_role("button", name="Check again").click()
    expect(block).to_have_attribute("data-state", "verified")
    block.locator(".photo summary").click()
    loaded(olga, block.locator(".photo-img"))
    block.get_by_role("button", name="Mark identified").click()
    expect(block.locator(".identified")).to_contain_text("Marked identified (audit entry")
    entries = service.cli("audit", "list", "--action", "verification.identified")
    assert [e["actor"] for e in entries["entries"]] == ["user:olga"]

    # -- the admin's global stop: olga's next search shows the stop message -------------------------
    service.cli("oversight", "stop", "--reason", "browser test: suspected misuse")
    search(olga, fixtures_dir / "identities" / "barack_obama" / "obama1.jpg")
    expect(olga.locator("#search-form .form-error")).to_contain_text("stopped by an administrator")
    service.cli("oversight", "resume", "--reason", "browser test: misuse ruled out")
    olga.context.close()
    vera.context.close()
    assert errors == []


def test_the_audit_page_fits_a_phone(service: Service, browser: Any, fixtures_dir: Path) -> None:
    # a search entry is the longest an audit entry gets (some twenty details, lists of faces and scores)
    probe = fixtures_dir / "identities" / "barack_obama" / "obama2.jpg"
    assert service.cli("search", str(probe), "--purpose", PURPOSE, "--top", "20")["matches"]
    errors: list[str] = []
    page = new_page(browser, errors, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        log_in(page, service, "admin", service.admin_password, start="/audit")
        rows = page.locator("table.audit tbody tr")
        sync_api.expect(rows.first).to_be_visible()
        assert rows.count() >= 3  # the source, the ingest, the users and more
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the audit page scrolls sideways on a phone ({width}px)"
        heights = page.eval_on_selector_all(
            "table.audit tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
        )
        assert max(heights) <= 400, f"an audit entry is {max(heights):.0f}px tall on a phone"
    finally:
        page.context.close()
    assert errors == []
