"""The DPIA page in a real browser (Playwright, Debian's Chromium, a real ``lethe serve``): the DPO
finds the unsigned DPIA on the dashboard, answers a blank through the page's form, signs it with
the Sign button once every question is answered, and sees it turn stale with what changed when a
source is added. Skipped where Chromium or Playwright is missing (failed where
``LETHE_TEST_REQUIRE`` names chromium). With ``LETHE_SCREENSHOTS=1`` it saves
``docs/screenshots/dpia-blanks.png`` (an answer and a blank) and ``dpia.png`` (the stale banner)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import admin_page, launch, playwright_or_skip, screenshot
from serve_support import lethe_json as cli
from serve_support import lethe_serve

from conftest import child_env

sync_api = playwright_or_skip()

CONTROLLER = {
    "LETHE_CONTROLLER_NAME": "Ville de Lyon, archives municipales",
    "LETHE_DPO_CONTACT": "dpo@lyon.example",
}
SOURCE = ["--basis", "public_task", "--art9", "archiving_research_statistics", "--jurisdiction", "FR",
          "--legal-reference", "Code du patrimoine, art. L211-2", "--retention-days", "3650"]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("assessments-browser")
    with lethe_serve(folder, **CONTROLLER) as server:
        env = child_env() | {"LETHE_DATA_DIR": str(folder / "data"), "LETHE_ACTOR": "admin"} | CONTROLLER
        yield server, env


def test_a_dpo_answers_signs_and_sees_the_dpia_turn_stale(served: tuple[Any, dict[str, str]]) -> None:
    server, env = served
    cli(env, "source", "add", "archives", "--purpose", "find the people in the city's photo archive", *SOURCE)
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page, errors = admin_page(browser, server.url, server.admin_password)
        expect(page.get_by_role("heading", name="Assessments to review")).to_be_visible()
        page.get_by_role("link", name="Data protection impact assessment").click()
        expect(page).to_have_url(server.url + "/assessments/dpia")
        expect(page.locator(".unsigned-banner")).to_contain_text("Not signed.")
        expect(page.locator("mark.blank-mark")).to_have_count(6)

        # a blank answered through the page's form (PUT to the API with the session's CSRF token)
        page.locator("#a-dpia-necessity").fill("Searching the archive by hand took months per request.")
        page.locator('form[data-api="/api/assessments/dpia/answers/necessity"] button').click()
        expect(page.locator("#q-dpia-necessity blockquote.answer")).to_have_text(
            "Searching the archive by hand took months per request."
        )
        expect(page.locator("mark.blank-mark")).to_have_count(5)
        screenshot(page, "dpia-blanks")

        for question in cli(env, "assessment", "show", "dpia")["blanks"]:
            cli(
                env, "assessment", "answer", "dpia", question, "--text", f"The archive's answer ({question})."
            )
        page.reload()
        page.get_by_role("button", name="Sign the data protection impact assessment").click()
        expect(page.locator(".signed-banner")).to_contain_text("Signed by user:admin")

        cli(env, "source", "add", "press", "--purpose", "the press photos of the city's newspaper", *SOURCE)
        page.reload()
        expect(page.locator(".stale-banner")).to_contain_text("source 'press' added since signed on")
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "dpia")
        page.goto(server.url + "/")
        expect(page.get_by_text("source 'press' added since signed on")).to_be_visible()
        browser.close()
    assert errors == []
    status = cli(env, "assessment", "list")["documents"][0]["signature"]
    assert status["state"] == "stale" and status["changes"] == ["source 'press' added"]
