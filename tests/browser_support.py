"""What the browser tests share: Debian's Chromium driven by Playwright, or the test module skipped
(failed instead where ``LETHE_TEST_REQUIRE`` names chromium: CI must not skip them silently).
Playwright never downloads a browser here."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: ``LETHE_SCREENSHOTS=1`` makes the browser tests refresh the pictures the docs show.
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
#: Read at import, before the tests' fixtures clear every LETHE_ variable (tests/conftest.py).
TAKE_SCREENSHOTS = os.environ.get("LETHE_SCREENSHOTS", "") in ("1", "true", "yes")
#: How every test starts it: headless, no sandbox (a container), nothing fetched from the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def playwright_or_skip() -> ModuleType:
    """Call at a test module's top: Playwright's sync API, or the whole module skipped saying why."""
    if not CHROMIUM.is_file():
        if "chromium" in os.environ.get("LETHE_TEST_REQUIRE", ""):
            pytest.fail(f"no Chromium at {CHROMIUM} (LETHE_TEST_REQUIRE names chromium)", pytrace=False)
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) to run the "
            "browser tests",
            allow_module_level=True,
        )
    return pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[dev]')"
    )


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless, with :data:`CHROMIUM_ARGS`."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    """Save ``docs/screenshots/NAME.png`` where ``LETHE_SCREENSHOTS`` asks for it; otherwise nothing."""
    if TAKE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled")


def admin_page(browser: Any, url: str, password: str) -> tuple[Any, list[str]]:
    """A desktop-sized page logged in as the first admin (who holds the dpo role too), and the list
    its script errors land in."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    return page, errors
