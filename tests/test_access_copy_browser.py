"""The access copy as the data subject opens it: ``index.html`` from the export folder, in Debian's
Chromium (no server: the copy is a folder of files sent to the person). Every photo and face crop
loads, the page does not scroll sideways on a phone, and the sections a person looks for are there.
Skipped where Chromium or Playwright is missing (failed where ``LETHE_TEST_REQUIRE`` names chromium).
With ``LETHE_SCREENSHOTS=1`` it saves ``docs/screenshots/access-copy.png`` and
``access-copy-phone.png``."""

from __future__ import annotations

from browser_support import launch, playwright_or_skip, screenshot
from test_access_copy import Exported, exported  # noqa: F401 (the module's fixture, reused here)

sync_api = playwright_or_skip()

PHONE = {"width": 390, "height": 844}


def test_the_access_copy_opens_from_its_folder_with_every_picture(exported: Exported) -> None:  # noqa: F811
    page_url = (exported.folder / "index.html").resolve().as_uri()
    expected_pictures = len(exported.document["photos"]) + len(exported.document["faces"])
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        errors: list[str] = []
        for viewport, name in (({"width": 1280, "height": 900}, "access-copy"), (PHONE, "access-copy-phone")):
            page = browser.new_page(viewport=viewport)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_url)
            pictures = page.locator("img")
            sync_api.expect(pictures).to_have_count(expected_pictures)
            for picture in pictures.element_handles():
                page.wait_for_function("(img) => img.complete", arg=picture)
                assert picture.evaluate("(img) => img.naturalWidth") > 0, picture.get_attribute("src")
            for heading in ("Your photos", "Who was shown your face", "Your rights", "Checking this copy"):
                sync_api.expect(page.get_by_role("heading", name=heading)).to_be_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"the access copy scrolls sideways at {viewport} ({width}px)"
            if viewport != PHONE:  # the picture for the docs: the group photo, its other face blurred
                group = next(p for p in exported.document["photos"] if p["others_blurred"])
                page.locator(f'img.photo[src="{group["file"]}"]').evaluate("(img) => img.scrollIntoView()")
            screenshot(page, name)
            page.close()
        browser.close()
    assert errors == []
