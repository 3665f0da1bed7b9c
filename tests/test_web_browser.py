"""The web pages in a real browser: Playwright drives Debian's Chromium against a real ``lethe serve``.

One story, as the people who use Lethe live it: the admin logs in (with the password ``lethe serve``
printed once), registers a source, ingests the fixture photos and searches; a person asks for
erasure on the public portal; the DPO verifies the request, runs it, confirms the faces waiting in
the review queue and answers it; the same search then comes back with "No match".

Skipped where ``/usr/bin/chromium`` (Debian's ``chromium`` package) or the ``playwright`` package is
missing. Playwright never downloads a browser here. With ``LETHE_SCREENSHOTS=1`` the story saves
the screenshots of ``docs/screenshots/`` shown in the README.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip, screenshot
from serve_support import lethe_serve
from sqlalchemy import create_engine, update

from lethe.catalog.privacy_tables import RequestRow
from lethe.catalog.repository import now_utc
from lethe.config import Settings
from lethe.ingest.inputs import IMAGE_SUFFIXES

from conftest import REVIEW_AUTO_THRESHOLD, REVIEW_FLOOR_THRESHOLD, child_env

sync_api = playwright_or_skip()

REPO = Path(__file__).resolve().parents[1]
LETHE = Path(sys.executable).with_name("lethe")
PURPOSE = "browser test: a guest asked for her photos (ticket 42)"


@dataclass
class Server:
    url: str
    data_dir: Path
    admin_password: str
    env: dict[str, str]

    def cli(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(LETHE), *args, "--json"], env=self.env, capture_output=True, text=True, check=True
        )
        result: dict[str, Any] = json.loads(done.stdout)
        return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``lethe serve`` on a free loopback port over a fresh data folder. Erasure: only copies of the
    requester's photo are erased at once, their other photos wait for a reviewer (so that the review
    queue fills)."""
    folder = tmp_path_factory.mktemp("browser")
    settings = {
        "LETHE_ERASURE_AUTO_THRESHOLD": str(REVIEW_AUTO_THRESHOLD),
        "LETHE_ERASURE_REVIEW_THRESHOLD": str(REVIEW_FLOOR_THRESHOLD),
        "LETHE_LOGIN_RATE_PER_MINUTE": "100",
        # The story ingests a manifest written under the test's temporary folders (issue 16: path
        # ingest through the service needs an ingest root).
        "LETHE_INGEST_ROOT": str(tmp_path_factory.getbasetemp()),
    }
    with lethe_serve(folder, **settings) as served:
        env = child_env() | {"LETHE_DATA_DIR": str(folder / "data"), "LETHE_WORKERS": "1"} | settings
        yield Server(served.url, folder / "data", served.admin_password, env)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium with a fresh profile, laptop-sized."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
            accept_downloads=True,
        )
        context.set_default_timeout(20_000)
        sync_api.expect.set_options(timeout=20_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    page = browser_context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    yield page
    page.close()
    browser_context.clear_cookies()
    # 401/403/404 answers the test provokes on purpose show up as console errors: only scripts count
    assert [p for p in problems if p.startswith("script error")] == []


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    screenshot(page, name, full_page=full_page)


def log_in(page: Any, server: Server, name: str, password: str, *, start: str = "/") -> None:
    page.goto(server.url + start)
    sync_api.expect(page).to_have_url(f"{server.url}/login" + (f"?next={start}" if start != "/" else ""))
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page).to_have_url(server.url + start)


def log_out(page: Any, server: Server) -> None:
    page.get_by_role("button", name="Log out").click()
    sync_api.expect(page).to_have_url(f"{server.url}/login")


def search(page: Any, probe: Path) -> None:
    page.set_input_files("#probe", str(probe))
    page.get_by_label("Purpose of this search").fill(PURPOSE)
    page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(page.locator("#results")).to_be_visible()
    sync_api.expect(page.locator("#results")).to_have_attribute("aria-busy", "false")


def nav_to(page: Any, label: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True).click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_be_visible()


def gala_folder(fixtures_dir: Path, folder: Path) -> Path:
    """The fixture photos copied into ``folder`` with a CSV manifest giving each its source page."""
    shutil.copytree(fixtures_dir, folder)
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "source_url", "caption"])
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                relative = path.relative_to(folder).as_posix()
                writer.writerow([relative, f"https://photos.example.org/gala/{relative}", path.stem])
    return folder / "manifest.csv"


def people_found(page: Any, root: Path) -> list[set[str]]:
    """For each result card, best first: who is in its photo (from the fixtures' labels), read from
    the whole ingested path the card shows as its photo."""
    with (root / "expected_faces.csv").open(newline="") as handle:
        labels = {
            row["path"]: set(filter(None, row["identities"].split(";"))) for row in csv.DictReader(handle)
        }
    found = []
    for shown in page.locator(".match .image").all_inner_texts():
        path = Path(shown.strip())
        relative = path.relative_to(root) if path.is_absolute() else path
        found.append(labels.get(relative.as_posix(), set()))
    return found


def make_overdue(server: Server, request_id: int) -> None:
    """Move a request's dates two months back, as if nobody had answered it in time."""
    engine = create_engine(Settings(data_dir=server.data_dir).resolved_catalog_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(RequestRow)
                .where(RequestRow.id == request_id)
                .values(received_at=now_utc() - timedelta(days=60), due_at=now_utc() - timedelta(days=29))
            )
    finally:
        engine.dispose()


def main_person(found: list[set[str]]) -> str:
    counts = Counter(person for people in found for person in people)
    return counts.most_common(1)[0][0] if counts else ""


def test_login_refused_and_pages_by_role(page: Any, server: Server) -> None:
    page.goto(f"{server.url}/search")
    sync_api.expect(page).to_have_url(f"{server.url}/login?next=/search")
    # the login card and the portal line under it share one centre line (the newcomer review, step 2)
    centres = page.eval_on_selector_all(
        "main > .narrow",
        "els => els.map(e => { const r = e.getBoundingClientRect(); return r.left + r.width / 2; })",
    )
    middle = page.evaluate("document.documentElement.clientWidth / 2")
    assert len(centres) == 2 and all(abs(c - middle) <= 2 for c in centres), (centres, middle)
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    sync_api.expect(page).to_have_url(f"{server.url}/login?next=/search")
    page.get_by_label("Password").fill(server.admin_password)
    page.keyboard.press("Enter")  # the keyboard is enough
    sync_api.expect(page).to_have_url(f"{server.url}/search")
    sync_api.expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
        [
            "Dashboard",
            "Search",
            "Ingest",
            "Sources",
            "Consents",
            "Requests",
            "Audit",
            "Incidents",
            "Orders",
            "Assessments",
            "Users",
        ]  # fmt: skip
    )
    log_out(page, server)
    operator = server.cli("user", "add", "otto", "--role", "operator")
    log_in(page, server, "otto", operator["password"], start="/sources")
    nav = page.get_by_role("navigation", name="Main").get_by_role("link")
    sync_api.expect(nav).to_have_text(["Dashboard", "Search", "Ingest", "Sources"])
    for other in ("/audit", "/users"):  # another role's pages stay closed, not only unlisted
        page.goto(f"{server.url}{other}")
        sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Not for your role")


def test_the_whole_story_in_a_browser(page: Any, server: Server, fixtures_dir: Path, tmp_path: Path) -> None:
    expect = sync_api.expect
    url = server.url

    # -- the admin logs in with the password printed once, and registers a source ------------------
    log_in(page, server, "admin", server.admin_password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    nav_to(page, "Sources")
    page.get_by_label("Name").fill("gala")
    page.get_by_label("Lawful basis").select_option("consent")
    page.get_by_label("Art. 9(2) condition").select_option("explicit_consent")
    page.get_by_label("Purpose").fill("guests find their own photos of the 2026 gala")
    page.get_by_label("Jurisdiction").fill("FR")
    page.get_by_label("Retention").fill("180")
    # every face stored (this story searches the gallery): a consent basis draws a warning for it
    page.get_by_label("All faces:").check()
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#flash")).to_contain_text("Source “gala” registered (all_faces).")
    expect(page.locator("#flash")).to_contain_text("Warning: a consent basis with mode all_faces")
    expect(page.get_by_role("row", name="gala")).to_contain_text("explicit consent")

    # -- ingest the fixture photos (a manifest on the server), with a live progress bar -------------
    manifest = gala_folder(fixtures_dir, tmp_path / "gala")
    nav_to(page, "Ingest")
    page.get_by_label("Folder or manifest").fill(str(manifest))
    page.get_by_role("button", name="Ingest folder").click()
    job = page.locator("#job")
    expect(job).to_be_visible()
    page.wait_for_function(  # a few photos in (or already done, on a fast machine)
        "() => { const state = document.getElementById('job').dataset.state;"
        " const done = document.getElementById('job-progress').value;"
        " return state === 'done' || (state === 'running' && done >= 4); }"
    )
    shot(page, "ingest-progress", full_page=False)
    expect(job).to_have_attribute("data-state", "done", timeout=120_000)
    expect(page.locator("#job-status")).to_contain_text(re.compile(r"Done: 29 new photo(\(s\)|s)"))
    assert "?job=" in page.url  # a reload keeps following the job
    # uploading a photo already present: recognised by its content, skipped
    page.set_input_files(
        "#photos", str(fixtures_dir / "identities" / "tom_cruise" / "Tom_Cruise_avp_2014_4.jpg")
    )
    page.get_by_role("button", name="Upload and ingest").click()
    expect(page.locator("#job-status")).to_contain_text(
        re.compile(r"0 new photo(\(s\)|s), 0 face(\(s\)|s), 1 already present")
    )

    # -- search: the right person's photos first ---------------------------------------------------
    nav_to(page, "Search")
    search(page, fixtures_dir / "identities" / "barack_obama" / "obama.jpg")
    found = people_found(page, manifest.parent)
    assert len(found) >= 5 and all("barack_obama" in people for people in found[:5]), found
    expect(page.locator("#no-match")).to_be_hidden()
    expect(page.locator("#calibration")).to_contain_text(
        f"What threshold {Settings().match_threshold} means, measured on LFW"
    )
    first_crop = page.locator(".match .crop").first
    assert (first_crop.get_attribute("src") or "").startswith("/api/faces/")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=first_crop.element_handle())
    best = page.locator(".match").first
    expect(best.locator(".source")).to_have_text("gala")
    expect(best.locator(".image")).to_have_text(re.compile(r"(^|/)identities/barack_obama/[^/]+$"))
    link = best.locator(".link-row").get_by_role("link")
    expect(link).to_have_attribute(
        "href", re.compile(r"^https://photos\.example\.org/gala/identities/barack_obama/")
    )
    # a candidate identification: no photo for the admin (not a verifier) until two verifiers confirm
    candidate = best.locator("[data-candidate]")
    expect(candidate).to_have_attribute("data-state", "pending")
    expect(candidate.locator(".candidate-state")).to_contain_text("No photo until it is verified.")
    expect(candidate.locator(".photo")).to_be_hidden()
    expect(best.get_by_role("link", name="Candidate page of match 1")).to_have_attribute(
        "href", re.compile(r"^/searches/\d+/candidates/\d+$")
    )
    shot(page, "search-results")

    # several faces in the probe: the boxes are drawn over it, and a click searches for another face
    search(page, fixtures_dir / "group_labelled" / "two_people.jpg")
    boxes = page.locator("button.face-box")
    expect(boxes).to_have_count(2)
    expect(page.locator("#summary")).to_contain_text("Searched for face 1 of 2")
    first = main_person(people_found(page, manifest.parent))
    boxes.nth(1).click()
    expect(page.locator("#summary")).to_contain_text("Searched for face 2 of 2")
    expect(boxes.nth(1)).to_have_attribute("aria-pressed", "true")
    second = main_person(people_found(page, manifest.parent))
    assert {first, second} == {"joe_biden", "barack_obama"}
    shot(page, "search-faces")

    nav_to(page, "Sources")
    shot(page, "sources")
    nav_to(page, "Dashboard")
    expect(page.locator(".stats")).to_contain_text("searches today")
    log_out(page, server)

    # -- a person asks for erasure on the public portal: a receipt, nothing else --------------------
    page.goto(f"{url}/portal")
    page.get_by_label("Erasure").check()
    page.set_input_files("#portal-photos", str(fixtures_dir / "identities" / "joe_biden" / "biden.jpg"))
    page.get_by_label("Where should we answer?").fill("joe.requester@example.org")
    shot(page, "portal")
    with page.expect_response(f"{url}/api/portal/requests") as answered:
        page.get_by_role("button", name="Send my request").click()
    assert set(answered.value.json()) == {"reference", "due_at", "message"}
    receipt = page.locator("#receipt")
    expect(receipt).to_be_visible()
    reference = page.locator("#receipt-ref").inner_text()
    assert reference and page.locator("#receipt-due").inner_text()
    expect(page.locator("#portal-form")).to_be_hidden()
    assert page.locator(".match, #results, img").count() == 0
    expect(page.locator("#receipt-h")).to_be_focused()
    shot(page, "portal-receipt")
    expect(page.locator("#receipt-status")).to_have_attribute("href", f"/portal/status?reference={reference}")
    # the request reaches the DPO only once the code sent to the address comes back (finding 1):
    # the operator's mailer would send the outbox message; its link fills the confirmation form
    (message_file,) = (server.data_dir / "outbox").glob("request-*.json")
    message = json.loads(message_file.read_text())
    assert message["reference"] == reference and message["to"] == "joe.requester@example.org"
    page.goto(f"{url}{message['confirm_path']}")
    expect(page.get_by_label("Your reference")).to_have_value(reference)
    page.get_by_role("button", name="Confirm my request").click()
    expect(page.locator("#flash")).to_contain_text("your contact address is confirmed")
    assert not message_file.exists()
    # with the reference and the same code, the status page tells the stage and the due date only
    page.goto(f"{url}/portal/status?reference={reference}")
    expect(page.get_by_label("Your reference")).to_have_value(reference)
    page.get_by_label("Code", exact=True).fill(message["code"])
    page.get_by_role("button", name="Show where my request stands").click()
    expect(page.locator("#status-stage")).to_contain_text("with the data-protection officer")
    expect(page.locator("#status-due")).not_to_be_empty()
    expect(page.locator("#status-h")).to_be_focused()

    # -- the DPO: verify, run, review, answer ------------------------------------------------------
    # another request, recorded at the desk and left unanswered too long: overdue, in red and in words
    late = fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"
    overdue = server.cli(
        "request", "open", "--kind", "access", "--photo", str(late), "--contact", "kit@example.org"
    )
    make_overdue(server, int(overdue["id"]))
    dpo = server.cli("user", "add", "dana", "--role", "dpo")
    log_in(page, server, "dana", dpo["password"], start="/requests")
    nav = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(nav).to_have_text(
        ["Dashboard", "Sources", "Consents", "Requests", "Audit", "Incidents", "Orders", "Assessments"]
    )
    rows = page.locator("table.requests tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_class("overdue")  # sorted by due date: the late one first
    expect(rows.first).to_contain_text("Overdue")
    expect(rows.nth(1)).not_to_contain_text("Overdue")
    row = page.get_by_role("row", name=reference)
    expect(row).to_contain_text("erasure")
    expect(row).to_contain_text("received")
    shot(page, "requests")
    row.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    # the contact, shown to the DPO (and named again in the messages to send it)
    expect(page.get_by_text("joe.requester@example.org", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Run (automatic band only)")).to_have_count(0)  # not before
    page.get_by_label("How was the identity checked?").select_option("id_document")
    page.get_by_label("I attest that the person I checked is the person in the request's photos.").check()
    page.get_by_label("Details").fill("passport shown at the desk")
    page.get_by_role("button", name="Record the identity check").click()
    expect(page.locator("#flash")).to_have_text("Identity check recorded.")
    expect(page.locator("#checks-h")).to_be_visible()
    # one primary next step per state: now Run, which first shows what it will erase, in a dialog
    run = page.get_by_role("button", name="Run (automatic band only)")
    expect(run).not_to_have_class(re.compile("secondary|danger"))
    expect(page.get_by_role("button", name="Reject…")).to_have_class("secondary")
    expect(page.locator("#answer-why")).to_contain_text("run it first")  # the missing step, in words
    expect(page.get_by_role("button", name="Answer and close")).to_be_disabled()
    run.click()
    dialog = page.locator("#run-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    run.click()
    heading = dialog.get_by_role("heading", name=re.compile(r"^Erase \d+ faces? in \d+ photos?\?$"))
    expect(heading).to_be_visible()
    shown = int(re.findall(r"\d+", heading.inner_text())[0])
    expect(dialog.locator(".preview-face img")).to_have_count(shown)
    expect(dialog.locator(".preview-photo figcaption").first).to_contain_text("gala")
    shot(page, "request-confirm", full_page=False)
    dialog.get_by_role("button", name=f"Yes, erase {shown} face").click()
    expect(page.locator("#flash")).to_contain_text(f"Erased {shown} face{'' if shown == 1 else 's'} in ")
    expect(page.locator(".badge.state-in_review")).to_have_text("in review")
    expect(page.get_by_role("button", name="Answer and close")).to_be_disabled()
    expect(page.locator("table.acted-on tbody tr").first).to_contain_text("gala")
    page.get_by_role("link", name="Review queue").click()

    expect(page.locator("#review-status")).to_have_attribute("data-answer-ready", "false")
    items = page.locator(".review-item")
    total = items.count()
    assert total >= 1
    expect(items.first.locator(".photo-name")).not_to_be_empty()
    same = items.first.get_by_role("button", name=re.compile("Confirm candidate 1"))
    expect(same).to_have_class("secondary")  # neutral: no colour nudges towards erasure
    for image in page.locator(".review-item img").element_handles():
        image.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image)
    shot(page, "review")
    page.keyboard.press("y")  # the shortcut decides the first undecided face
    expect(items.first).to_have_class("review-item decided-confirmed")
    for number in range(2, total + 1):
        page.get_by_role("button", name=f"Confirm candidate {number} is the requester").click()
        expect(page.locator(f".review-item:nth-child({number})")).to_have_class(
            "review-item decided-confirmed"
        )
    # wait for the state, not for time: every candidate in and decided
    expect(page.locator("#review-status")).to_have_attribute("data-answer-ready", "true")
    expect(page.locator("#review-status")).to_contain_text(f"All {total} decided")
    page.get_by_role("link", name="Back to the request to answer it").click()
    expect(page.locator("#answer-why")).to_have_attribute("data-answer-ready", "true")
    answer = page.get_by_role("button", name="Answer and close")
    expect(answer).not_to_have_class(re.compile("secondary"))  # now the primary step
    answer.click()
    page.locator("#answer-dialog").get_by_role("button", name="Yes, answer and close").click()
    expect(page.locator("#flash")).to_contain_text("Request answered and closed.")
    expect(page.locator(".badge.state-answered")).to_have_text("answered")
    expect(page.locator(".facts").first).not_to_contain_text("waiting for review")
    expect(page.locator("#answer-draft")).to_contain_text("erased")
    expect(page.locator("#answer-draft")).to_contain_text("Art. 77")

    nav_to(page, "Audit")
    expect(page.locator(".verify.ok")).to_contain_text("Chain verified")
    expect(page.locator("table.audit")).to_contain_text("erasure.done")
    shot(page, "audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the compliance pack").click()
    assert download.value.suggested_filename == "lethe-compliance-pack.zip"
    log_out(page, server)

    # -- the same search now finds nothing --------------------------------------------------------
    log_in(page, server, "admin", server.admin_password, start="/search")
    search(page, fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    expect(page.locator("#no-match")).to_be_visible()
    expect(page.locator("#no-match")).to_contain_text("No match.")
    expect(page.locator(".match")).to_have_count(0)

    page.goto(f"{url}/")
    shot(page, "dashboard")
    page.goto(f"{url}/requests?show=all")
    expect(page.get_by_role("row", name=reference)).to_contain_text("answered")

    # -- a phone: the search page still works and reads well ---------------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{url}/search")
    search(page, fixtures_dir / "identities" / "barack_obama" / "obama1.jpg")
    expect(page.locator(".match").first).to_be_visible()
    expect(page.locator("#results")).to_be_in_viewport()  # scrolled to, not left below the fold
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    page.locator("#probe-figure").evaluate("(figure) => figure.scrollIntoView()")
    for crop in page.locator(".match .crop").element_handles()[:4]:
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=crop)
    shot(page, "search-phone", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 860})


def test_a_running_ingest_is_cancelled_from_the_ingest_page(
    page: Any, server: Server, fixtures_dir: Path, tmp_path: Path
) -> None:
    """ "Cancel ingest" stops a running job (issue 16: the API could, the page could not) and the page
    shows who stopped it and what stays. The job is kept running by another process holding the
    data folder's write lock, as a long walk would keep it running."""
    expect = sync_api.expect
    declaration = ["--basis", "consent", "--art9", "explicit_consent", "--purpose", "guests find photos",
                   "--jurisdiction", "FR", "--retention-days", "30"]  # fmt: skip
    server.cli("source", "add", "archive", *declaration)
    folder = tmp_path / "archive"
    shutil.copytree(fixtures_dir / "identities", folder)
    log_in(page, server, "admin", server.admin_password, start="/ingest")
    page.locator("#dir-source").select_option("archive")
    page.get_by_label("Folder or manifest").fill(str(folder))
    job, status = page.locator("#job"), page.locator("#job-status")
    cancel = page.get_by_role("button", name="Cancel ingest")
    lock = os.open(server.data_dir / ".write.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        page.get_by_role("button", name="Ingest folder").click()
        expect(job).to_have_attribute("data-state", "running")
        cancel.click()
        expect(status).to_contain_text("Cancelling (asked by user:admin)")
        expect(cancel).to_be_disabled()
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    expect(job).to_have_attribute("data-state", "cancelled")
    expect(status).to_contain_text("Stopped: cancelled by user:admin, after 0 photos. What it stored stays")
    expect(cancel).to_be_hidden()
    (archive,) = [s for s in server.cli("source", "list")["sources"] if s["source"] == "archive"]
    assert archive["images"] == 0  # stopped while it waited: nothing read, nothing stored


def test_a_camera_photo_probe_shows_a_box_on_every_face_and_each_box_searches(
    page: Any, server: Server, fixtures_dir: Path, lfw_dir: Path, yunet_model: Path, tmp_path: Path
) -> None:
    """A 24 MP probe with twelve faces 40-200 px wide: the page draws one clickable box per face,
    where the face is in the preview, and a click on the smallest searches for that face."""
    import camera_photos as cp

    from lethe.detection.yunet import YuNetDetector

    expect = sync_api.expect
    detector = YuNetDetector(yunet_model)
    (canvas, *_) = cp.build(
        fixtures_dir,
        lfw_dir,
        tmp_path,
        lambda p: [d.box for d in detector.detect(p)],
        canvases=1,
        faces_per_canvas=12,
    )
    log_in(page, server, "admin", server.admin_password, start="/search")
    search(page, tmp_path / canvas.file)
    boxes = page.locator("button.face-box")
    expect(boxes).to_have_count(len(canvas.faces))
    preview = page.locator("#probe-preview").bounding_box()
    scale = preview["width"] / canvas.width
    # Each box's corner sits on its face's corner in the image as drawn (within 3 screen px; a
    # box is at least 24 px wide on screen, so its far corner is not compared).
    corners = [(f.box[0] * scale, f.box[1] * scale) for f in canvas.faces]
    drawn: list[tuple[float, float]] = []
    for i in range(len(canvas.faces)):
        b = boxes.nth(i).bounding_box()
        drawn.append((b["x"] - preview["x"], b["y"] - preview["y"]))
    placed = [min(corners, key=lambda c: abs(c[0] - x) + abs(c[1] - y)) for x, y in drawn]
    assert all(abs(c[0] - x) <= 3 and abs(c[1] - y) <= 3 for c, (x, y) in zip(placed, drawn, strict=True)), (
        drawn,
        corners,
    )
    assert len(set(placed)) == len(canvas.faces)  # one box per face
    tiny = min(range(len(canvas.faces)), key=lambda i: canvas.faces[i].box[2] - canvas.faces[i].box[0])
    smallest = placed.index(corners[tiny])  # the box of the smallest face (boxes come largest first)
    boxes.nth(smallest).click()
    expect(page.locator("#summary")).to_contain_text(
        f"Searched for face {smallest + 1} of {len(canvas.faces)}"
    )
    expect(boxes.nth(smallest)).to_have_attribute("aria-pressed", "true")
