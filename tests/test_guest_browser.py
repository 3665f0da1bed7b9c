"""The event guest's "find my photos" flow in a real browser on a phone-sized screen (390x844):
Playwright drives Debian's Chromium against a real ``lethe serve``. The organiser has ingested the
event's photos into an ``enrolled_only`` source and opened its guest page (the CLI); a guest ticks
the consent box, answers the age question, picks a selfie of Biden, and follows the private link to
the three photos of the event that show him.

Skipped where ``/usr/bin/chromium`` or the ``playwright`` package is missing (as
tests/test_web_browser.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from browser_support import launch, playwright_or_skip
from serve_support import lethe_serve

from conftest import child_env

sync_api = playwright_or_skip()

LETHE = Path(sys.executable).with_name("lethe")
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.usefixtures("default_models")


def _cli(data: Path, *args: str) -> dict[str, Any]:
    env = child_env() | {"LETHE_DATA_DIR": str(data), "LETHE_WORKERS": "1"}
    done = subprocess.run(
        [str(LETHE), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_guest_finds_their_photos_on_a_phone(tmp_path: Path, fixtures_dir: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in (fixtures_dir / "group_labelled").glob("*.jpg"):
        shutil.copy(photo, photos / photo.name)
    shutil.copy(fixtures_dir / "identities" / "joe_biden" / "biden.jpg", photos / "biden.jpg")
    data = tmp_path / "data"
    _cli(data, "source", "add", "gala", "--basis", "consent", "--art9", "explicit_consent",
         "--purpose", "find my photos of the gala", "--jurisdiction", "DE", "--retention-days", "90",
         "--mode", "enrolled_only")  # fmt: skip
    assert _cli(data, "ingest", "gala", str(photos))["faces"] == 0  # nobody has consented yet
    code = _cli(data, "source", "guest", "gala", "--enable")["event_code"]

    with lethe_serve(tmp_path) as served, sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        context.set_default_timeout(30_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{served.url}/e/{code}")
            sync_api.expect(page.locator("#consent-text")).to_contain_text("find my photos of the gala")
            consent = page.get_by_label("I consent")
            assert not consent.is_checked()
            consent.check()
            page.get_by_label("I am at least 16 years old.").check()  # Germany: 16
            page.set_input_files(
                "#guest-selfie", str(fixtures_dir / "identities" / "joe_biden" / "biden2.jpg")
            )
            page.get_by_role("button", name="Find my photos").click()
            link = page.locator("#guest-link-a")
            sync_api.expect(link).to_be_visible()
            assert page.locator("#guest-form").is_hidden()
            link.click()
            sync_api.expect(page.get_by_role("heading", level=1)).to_contain_text("Your photos")
            deadline = time.monotonic() + 60
            while page.locator("#guest-searching").count() and time.monotonic() < deadline:
                time.sleep(1)  # the scan of the photos taken before the consent runs after the answer
                page.reload()
            sync_api.expect(page.locator("#guest-photos img")).to_have_count(3)
            sync_api.expect(page.locator("#guest-count")).to_contain_text("3 photos")
            first = page.locator("#guest-photos img").first
            first.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
        finally:
            context.close()
            browser.close()
    assert errors == []
