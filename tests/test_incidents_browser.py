"""The incident register in a real browser (Playwright, Debian's Chromium, a real ``lethe serve``): a
breach opened with ``lethe incident open`` 73 hours after awareness shows on the DPO's dashboard and
in the register as overdue, in red (the computed colour of the mark and of the row) and in words,
with its due time in UTC; its page shows the drafts. Skipped where Chromium or Playwright is missing
(failed where ``LETHE_TEST_REQUIRE`` names chromium). With ``LETHE_SCREENSHOTS=1`` it saves
``docs/screenshots/incidents.png`` (the register) and ``incident.png`` (one incident's page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

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
          "--legal-reference", "Code du patrimoine, art. L211-2", "--retention-days", "3650",
          "--purpose", "find the people in the city's photo archive"]  # fmt: skip
#: --danger in lethe.css
RED = "rgb(179, 38, 30)"


def test_an_overdue_breach_is_red_and_in_words_on_the_dashboard_and_the_register(tmp_path: Path) -> None:
    with lethe_serve(tmp_path, **CONTROLLER) as server:
        env = child_env() | {"LETHE_DATA_DIR": str(tmp_path / "data"), "LETHE_ACTOR": "admin"} | CONTROLLER
        cli(env, "source", "add", "archives", *SOURCE)
        aware = datetime.now(UTC) - timedelta(hours=73)
        late = cli(
            env, "incident", "open", "--description", "a backup disk of the data folder was stolen",
            "--aware-at", aware.isoformat(), "--source", "archives", "--window-start", "2026-01-01T00:00Z",
        )  # fmt: skip
        cli(env, "incident", "update", str(late["id"]), "--action", "master key rotated (lethe keys rotate)")
        calm = cli(
            env, "incident", "open", "--description", "a wrongful identification was acted upon",
            "--aware-at", datetime.now(UTC).isoformat(), "--no-breach", "--serious", "fundamental_rights",
        )  # fmt: skip
        due = f"{aware + timedelta(hours=72):%Y-%m-%d %H:%M} UTC"
        expect = sync_api.expect
        with sync_api.sync_playwright() as playwright:
            browser = launch(playwright)
            page, errors = admin_page(browser, server.url, server.admin_password)

            overdue_card = page.locator("section[aria-labelledby=incidents-h]")
            expect(overdue_card).to_contain_text(f"Incident {late['id']}")
            expect(overdue_card).not_to_contain_text(f"Incident {calm['id']}")
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents").click()
            expect(page).to_have_url(server.url + "/incidents")
            row = page.locator("tr", has=page.get_by_role("link", name=f"Incident {late['id']}"))
            expect(row).to_contain_text("1 h 00 min ago")
            expect(row).to_contain_text(f"was due {due}")
            mark = row.locator(".overdue-marker").first
            expect(mark).to_be_visible()
            assert mark.evaluate("e => getComputedStyle(e).color") == RED
            assert row.locator("td").first.evaluate("e => getComputedStyle(e).color") == RED
            other = page.locator("tr", has=page.get_by_role("link", name=f"Incident {calm['id']}"))
            expect(other).to_contain_text("market-surveillance authority due")
            expect(other.locator(".overdue-marker")).to_have_count(0)
            screenshot(page, "incidents")

            page.get_by_role("link", name=f"Incident {late['id']}").click()
            expect(
                page.get_by_role("heading", name="Were the data unintelligible?", exact=False)
            ).to_be_visible()
            expect(page.locator("main")).to_contain_text("inside that same folder")
            expect(page.locator("main")).to_contain_text("master key rotated (lethe keys rotate)")
            page.locator("summary", has_text="Notification of a personal data breach").click()  # open it
            expect(page.locator("pre.draft").first).to_contain_text("dpo@lyon.example")
            screenshot(page, "incident")
            browser.close()
        assert errors == []
