"""An event's guest page (issue 17, item 3): through the real app (the service's test client) on the
fixture photos. An ``enrolled_only`` source holds an event's photos, ingested from a folder before
anyone consented (no face stored); its guest page is open. A guest consents with a selfie of Biden
and sees exactly the photos with Biden, as full photos, and nothing else; wrong codes and secrets
get one 404; withdrawal erases; the selfie is nowhere on disk; oversized selfies are refused before
decoding.

The event: the three group photos (Obama with Biden twice, Kit Harington with Rose Leslie), and one
portrait each of Biden and Rose Leslie."""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from test_cli import run

from lethe.api.maintenance import run_once
from lethe.catalog.tables import ImageRow
from lethe.engine import Lethe

from api_support import add_user, assert_error, bearer, serve
from conftest import consent_source, copy_gallery, make_settings, occurrences

pytestmark = pytest.mark.usefixtures("default_models")

BIDEN = {"biden.jpg", "obama_and_biden.jpg", "two_people.jpg"}
LESLIE = {"kit_with_rose.jpg", "leslie.jpg"}
#: The portal's rate limits, out of the way of the tests that do not test them.
LIMITS = {"portal_rate_per_minute": 100, "portal_global_rate_per_minute": 1000}


@pytest.fixture(scope="module")
def event_data(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """A data folder whose ``enrolled_only`` source ``events`` holds the event's photos (rows only:
    nobody had consented), with its guest page open. Tests copy it (``copy_gallery``)."""
    base = tmp_path_factory.mktemp("guest-event")
    photos = base / "photos"
    photos.mkdir()
    for photo in (fixtures_dir / "group_labelled").glob("*.jpg"):
        shutil.copy(photo, photos / photo.name)
    shutil.copy(fixtures_dir / "identities" / "joe_biden" / "biden.jpg", photos / "biden.jpg")
    shutil.copy(fixtures_dir / "identities" / "rose_leslie" / "img1.jpg", photos / "leslie.jpg")
    data = base / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source(mode="enrolled_only"))
        report = lethe.ingest("events", photos)
        assert report.errors == [] and report.faces == 0
        lethe.guests.configure("events", enable=True, actor="test")
    return data


@pytest.fixture
def client(event_data: Path, tmp_path: Path) -> Iterator[TestClient]:
    with serve(copy_gallery(event_data, tmp_path), **LIMITS) as served:
        yield served


def _engine(client: TestClient) -> Lethe:
    engine: Lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
    return engine


def _code(client: TestClient) -> str:
    code = _engine(client).catalog.source("events").event_code
    assert code is not None
    return code


def _selfie(fixtures_dir: Path, person: str, name: str) -> bytes:
    return (fixtures_dir / "identities" / person / name).read_bytes()


def _consent(
    client: TestClient, code: str, selfie: bytes, *, age: str = "of_age", **more: str
) -> dict[str, object]:
    """A guest's consent through the API, as the page's form sends it; the answer."""
    version = _engine(client).consents.text("events")[0]
    form = {"consent": "yes", "age": age, "text_version": str(version), **more}
    answer = client.post(
        f"/api/e/{code}/consent", data=form, files={"selfie": ("me.jpg", selfie, "image/jpeg")}
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def _photo_names(client: TestClient, image_ids: list[int]) -> set[str]:
    with _engine(client).catalog.session() as session:
        uris = session.scalars(select(ImageRow.uri).where(ImageRow.id.in_(image_ids)))
        return {Path(u).name for u in uris}


def _image_id(client: TestClient, name: str) -> int:
    with _engine(client).catalog.session() as session:
        found = session.scalar(select(ImageRow.id).where(ImageRow.uri.like(f"%/{name}")))
    assert found is not None
    return int(found)


def _shown(page: str) -> list[int]:
    """The photos a private page shows (their ids, from the <img> sources)."""
    return [int(i) for i in re.findall(r'<img src="/e/[^"]+/photo/(\d+)"', page)]


def test_a_guest_sees_exactly_the_photos_they_are_in_and_nothing_else(
    fixtures_dir: Path, event_data: Path, tmp_path: Path
) -> None:
    data = copy_gallery(event_data, tmp_path)
    selfie = _selfie(fixtures_dir, "joe_biden", "biden2.jpg")
    with serve(data, **LIMITS) as client:
        _guest_sees_their_photos(client, selfie, fixtures_dir, event_data)
    # The app closed (index saved, catalog checkpointed): the selfie is nowhere in the data folder,
    # whole or in part.
    needles = {"selfie": [selfie, selfie[:4096], selfie[len(selfie) // 2 : len(selfie) // 2 + 4096]]}
    assert occurrences(data, needles) == []


def _guest_sees_their_photos(client: TestClient, selfie: bytes, fixtures_dir: Path, event_data: Path) -> None:
    code = _code(client)
    page = client.get(f"/e/{code}")
    assert page.status_code == 200
    text = _engine(client).consents.text("events")[1]
    assert text.replace("'", "&#39;") in page.text
    consent_box = re.search(r'<input type="checkbox" id="guest-consent"[^>]*>', page.text)
    assert consent_box and "checked" not in consent_box.group(0)  # explicit: never ticked for them
    assert 'capture="user"' in page.text and 'accept="image/*"' in page.text
    assert "at least 15 years old" in page.text  # France: Art. 8 age 15
    assert 'value="parental"' in page.text
    assert 'id="guest-ask"' in page.text and "/photos" not in page.text  # no gallery: ask the organiser
    assert "/static/guest.js" in page.text and "<script>" not in page.text

    answer = _consent(client, code, selfie, contact="joe@example.org")
    assert sorted(answer) == ["link", "message"]
    link = str(answer["link"])
    assert re.fullmatch(rf"/e/{re.escape(code)}/me/[A-Za-z0-9_-]{{43}}", link)
    # A guest found in no photo gets the same answer, save the link.
    stranger = _consent(client, code, _selfie(fixtures_dir, "tom_cruise", "Tom_Cruise_avp_2014_4.jpg"))
    assert sorted(stranger) == ["link", "message"] and stranger["message"] == answer["message"]

    mine = client.get(link)
    assert mine.status_code == 200 and mine.headers["cache-control"] == "no-store"
    shown = _shown(mine.text)
    assert _photo_names(client, shown) == BIDEN and len(shown) == 3
    assert "Download" not in mine.text  # the event allows no downloads
    as_json = client.get(f"/api{link}").json()
    assert [p["image_id"] for p in as_json["photos"]] == shown
    assert as_json["searching"] is False and as_json["withdrawn_at"] is None
    for image_id in shown:
        photo = client.get(f"{link}/photo/{image_id}")
        assert photo.status_code == 200
        assert photo.headers["content-type"] == "image/jpeg"
        assert photo.headers["content-disposition"].startswith("inline")
        assert photo.headers["cache-control"] == "private, no-store"
        name = _photo_names(client, [image_id]).pop()
        assert photo.content == (event_data.parent / "photos" / name).read_bytes()  # full, not a crop
    not_found = client.get(f"/e/{code}x")
    assert not_found.status_code == 404
    for other in ("kit_with_rose.jpg", "leslie.jpg"):  # photos of the event without Biden
        refused = client.get(f"{link}/photo/{_image_id(client, other)}")
        assert (refused.status_code, refused.text) == (404, not_found.text)
    refused = client.get(f"{link}/photo/{shown[0]}?download=1")
    assert (refused.status_code, refused.text) == (404, not_found.text)

    # The organiser allows downloads: the same photo, as an attachment.
    _engine(client).guests.configure("events", enable=False, actor="test")
    source = _engine(client).catalog.source("events")
    assert source.event_code is None
    assert client.get(link).text == not_found.text  # disabling kills the code and its links
    # (re-enabling makes a new code; its links are new links: the secret opens under it)
    source = _engine(client).guests.configure("events", enable=True, downloads=True, actor="test")
    assert source.event_code not in (None, code) and source.guest_downloads
    link = link.replace(f"/e/{code}/", f"/e/{source.event_code}/")
    mine = client.get(link)
    assert mine.text.count(">Download</a>") == 3
    download = client.get(f"{link}/photo/{shown[0]}?download=1")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="photo-{shown[0]}.jpeg"'

    # Views are the guest's own data: not audited one by one.
    engine = _engine(client)
    before = len(engine.audit_entries(limit=10_000))
    client.get(link)
    client.get(f"{link}/photo/{shown[0]}")
    assert len(engine.audit_entries(limit=10_000)) == before
    gives = [e for e in engine.audit_entries(limit=10_000) if e.action == "consent.give"]
    assert [e.details["channel"] for e in gives] == ["guest_page", "guest_page"]


def test_wrong_codes_and_secrets_get_one_404_and_a_secret_opens_only_its_own_photos(
    client: TestClient, fixtures_dir: Path
) -> None:
    code = _code(client)
    engine = _engine(client)
    biden = str(_consent(client, code, _selfie(fixtures_dir, "joe_biden", "biden2.jpg"))["link"])
    leslie = str(_consent(client, code, _selfie(fixtures_dir, "rose_leslie", "img2.jpg"))["link"])
    biden_photos, leslie_photos = _shown(client.get(biden).text), _shown(client.get(leslie).text)
    assert _photo_names(client, leslie_photos) == LESLIE
    for image_id in biden_photos:  # the second guest's secret does not open the first's photos
        assert client.get(f"{leslie}/photo/{image_id}").status_code == 404

    # Another event with its own guest page and guest: its secret does not open this event.
    engine.add_source(consent_source("gala", mode="enrolled_only"))
    gala = engine.guests.configure("gala", enable=True, actor="test").event_code
    gala_link = str(_consent_in(client, str(gala), fixtures_dir)["link"])
    gala_secret = gala_link.rsplit("/", 1)[1]
    secret = biden.rsplit("/", 1)[1]
    engine.guests.configure("events", enable=True, actor="test")  # a new code: the old one is dead
    new_code = _code(client)
    wrong = [
        "/e/unknown-code-123",
        f"/e/{code}",  # disabled (replaced)
        f"/e/{code}/me/{secret}",
        f"/e/{new_code}/me/{'A' * 43}",  # a wrong secret
        f"/e/{new_code}/me/{gala_secret}",  # another event's secret
        f"/e/{str(gala)}/me/{secret}",
        f"/e/{new_code}/me/{gala_secret}/photo/{biden_photos[0]}",
        f"/e/{new_code}/photos",  # no browsing allowed
    ]
    pages = [client.get(path) for path in wrong]
    assert {(p.status_code, p.text) for p in pages} == {(404, pages[0].text)}
    assert "nothing at this address" in pages[0].text
    answers = [client.get(f"/api{path}") for path in wrong if "/photo/" not in path]
    assert {(a.status_code, a.text) for a in answers} == {(404, answers[0].text)}
    assert_error(answers[0], 404, "not_found")
    assert client.get(f"/e/{new_code}/me/{secret}").status_code == 200


def _consent_in(client: TestClient, code: str, fixtures_dir: Path) -> dict[str, object]:
    version = _engine(client).consents.text("gala")[0]
    answer = client.post(
        f"/api/e/{code}/consent",
        data={"consent": "yes", "age": "parental", "text_version": str(version)},
        files={"selfie": ("me.jpg", _selfie(fixtures_dir, "barack_obama", "obama.jpg"), "image/jpeg")},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_withdrawal_erases_the_guests_faces_and_the_link_then_shows_only_the_day(
    client: TestClient, fixtures_dir: Path
) -> None:
    code = _code(client)
    link = str(_consent(client, code, _selfie(fixtures_dir, "joe_biden", "biden2.jpg"))["link"])
    shown = _shown(client.get(link).text)
    assert len(shown) == 3 and _engine(client).catalog.count_faces() == 3
    cross_site = client.post(f"/api{link}/withdraw", headers={"Origin": "https://evil.example"})
    assert_error(cross_site, 403, "csrf_failed")

    done = client.post(f"/api{link}/withdraw", headers={"Origin": "http://testserver"})
    assert done.status_code == 200, done.text
    assert done.json()["withdrawn"] is True and done.json()["erased_faces"] == 3
    assert _engine(client).catalog.count_faces() == 0
    page = client.get(link)
    assert page.status_code == 200
    day = done.json()["withdrawn_at"][:10]
    assert f"withdrawn on {day}" in page.text
    assert "<img" not in page.text and "Withdraw my consent" not in page.text
    assert client.get(f"{link}/photo/{shown[0]}").status_code == 404
    assert client.get(f"/api{link}").json()["photos"] == []
    assert_error(client.post(f"/api{link}/withdraw"), 409, "conflict")
    (ledger,) = _engine(client).consents.listing("events")
    assert (ledger.channel, ledger.withdrawn_by, ledger.faces) == ("guest_page", "guest", 0)


def test_the_form_needs_consent_an_age_answer_and_the_text_shown(
    client: TestClient, fixtures_dir: Path
) -> None:
    code = _code(client)
    selfie = ("me.jpg", _selfie(fixtures_dir, "joe_biden", "biden2.jpg"), "image/jpeg")
    version = str(_engine(client).consents.text("events")[0])
    url = f"/api/e/{code}/consent"
    full = {"consent": "yes", "age": "of_age", "text_version": version}
    unticked = client.post(url, data={**full, "consent": ""}, files={"selfie": selfie})
    assert "tick the box" in assert_error(unticked, 422)["message"]  # type: ignore[operator]
    no_age = client.post(url, data={k: v for k, v in full.items() if k != "age"}, files={"selfie": selfie})
    assert "at least 15" in assert_error(no_age, 422)["message"]  # type: ignore[operator]
    assert_error(client.post(url, data={**full, "age": "child"}, files={"selfie": selfie}), 422)
    assert_error(client.post(url, data={**full, "text_version": "99"}, files={"selfie": selfie}), 409)
    assert_error(client.post(url, data=full), 422)  # no selfie
    face_less = sorted((fixtures_dir / "no_face").iterdir())[0].read_bytes()
    assert_error(client.post(url, data=full, files={"selfie": ("x.jpg", face_less, "image/jpeg")}), 422)
    assert _engine(client).consents.listing("events") == []  # nothing recorded by a refusal
    _consent(client, code, selfie[1], age="parental")
    (consent,) = _engine(client).consents.listing("events")
    assert (consent.age_attestation, consent.age_threshold) == ("parental", 15)


def test_oversized_selfies_and_pixel_bombs_are_refused_before_decoding_and_nothing_spools(
    event_data: Path, tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = io.BytesIO()
    Image.new("1", (3000, 3000), 0).save(bomb, "PNG")  # 9 MP in a few kilobytes
    biden = Image.open(io.BytesIO(_selfie(fixtures_dir, "joe_biden", "biden2.jpg"))).convert("RGB")
    big = io.BytesIO()
    biden.save(big, "PNG")  # a face, in a file over 1 MB
    assert len(big.getvalue()) > 1024 * 1024  # Starlette's own spool threshold: it would go to disk
    rolled: list[int] = []
    original = tempfile.SpooledTemporaryFile.rollover

    def spy(self: tempfile.SpooledTemporaryFile[bytes]) -> None:
        rolled.append(1)
        original(self)

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", spy)
    settings = {"portal_max_image_pixels": 4_000_000, "portal_max_photo_bytes": len(big.getvalue()) + 10}
    with serve(copy_gallery(event_data, tmp_path), **settings) as client:
        code = _code(client)
        version = str(_engine(client).consents.text("events")[0])
        form = {"consent": "yes", "age": "of_age", "text_version": version}
        url = f"/api/e/{code}/consent"
        refused = client.post(url, data=form, files={"selfie": ("b.png", bomb.getvalue(), "image/png")})
        assert "over the limit of 4000000 pixels" in assert_error(refused, 413)["message"]  # type: ignore[operator]
        huge = b"\xff\xd8" + b"\0" * (len(big.getvalue()) + 100 * 1024)
        assert_error(client.post(url, data=form, files={"selfie": ("h.jpg", huge, "image/jpeg")}), 413)
        just_over = huge[: len(big.getvalue()) + 11]  # within the form's allowance, over the photo's
        assert_error(client.post(url, data=form, files={"selfie": ("h.jpg", just_over, "image/jpeg")}), 413)
        assert _engine(client).consents.listing("events") == []
        fine = client.post(url, data=form, files={"selfie": ("big.png", big.getvalue(), "image/png")})
        assert fine.status_code == 201, fine.text
        assert len(_shown(client.get(fine.json()["link"]).text)) == 3
    assert rolled == []  # no upload of this story went to a temporary file


def test_misses_count_against_the_portal_rate_limit_whatever_the_forwarded_header(
    event_data: Path, tmp_path: Path
) -> None:
    with serve(copy_gallery(event_data, tmp_path), portal_rate_per_minute=2) as client:
        code = _code(client)
        for n in range(2):
            assert (
                client.get(f"/e/{code}/me/wrong-{n}", headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code
                == 404
            )
        limited = client.get(f"/e/{code}/me/wrong-3", headers={"X-Forwarded-For": "10.0.0.9"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert_error(client.get(f"/api/e/{code}/me/wrong-4"), 429, "rate_limited")
        assert client.get(f"/e/{code}").status_code == 200  # the open page itself costs nothing


def test_guest_page_settings_through_the_cli_and_the_api(event_data: Path, tmp_path: Path) -> None:
    data = copy_gallery(event_data, tmp_path)
    old = _json(run(data, "source", "guest", "events", "--disable", "--json"))
    assert old == {
        "source": "events",
        "event_code": None,
        "url_path": None,
        "downloads": False,
        "browse": False,
    }
    on = _json(run(data, "source", "guest", "events", "--enable", "--browse", "--json"))
    code = str(on["event_code"])
    assert len(code) >= 10 and on["url_path"] == f"/e/{code}" and on["browse"] is True
    again = _json(run(data, "source", "guest", "events", "--enable", "--downloads", "--json"))
    assert again["event_code"] != code and (again["downloads"], again["browse"]) == (True, True)
    _json(run(data, "source", "add", "archive", "--basis", "consent", "--art9", "explicit_consent",
              "--purpose", "archive", "--jurisdiction", "FR", "--retention-days", "30",
              "--mode", "all_faces", "--json"))  # fmt: skip
    refused = run(data, "source", "guest", "archive", "--enable", "--json")
    assert refused.returncode != 0 and "all faces" in refused.stderr and refused.stdout == ""

    with serve(data) as client:
        operator, dpo = add_user(client, "olga", "operator"), add_user(client, "dora", "dpo")
        assert_error(
            client.post("/api/sources/events/guest", json={"enable": True}, headers=bearer(dpo)), 403
        )
        answer = client.post(
            "/api/sources/events/guest", json={"enable": True, "browse": False}, headers=bearer(operator)
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert sorted(body) == ["browse", "downloads", "event_code", "source", "url_path"]
        assert body["event_code"] != again["event_code"] and (body["downloads"], body["browse"]) == (
            True,
            False,
        )
        assert client.get(f"/e/{again['event_code']}").status_code == 404
        assert_error(
            client.post("/api/sources/archive/guest", json={"enable": True}, headers=bearer(operator)), 422
        )
        audited = [e for e in _engine(client).audit_entries(limit=1000) if e.action == "source.guest"]
        assert len(audited) == 5 and "event_code" not in json.dumps([e.details for e in audited])


def test_the_gallery_is_the_non_biometric_way(client: TestClient) -> None:
    engine = _engine(client)
    code = str(engine.guests.configure("events", enable=True, browse=True, actor="test").event_code)
    page = client.get(f"/e/{code}")
    assert f'href="/e/{code}/photos"' in page.text
    gallery = client.get(f"/e/{code}/photos")
    assert gallery.status_code == 200
    ids = [int(i) for i in re.findall(rf'<img src="/e/{re.escape(code)}/photos/(\d+)"', gallery.text)]
    assert _photo_names(client, ids) == BIDEN | LESLIE
    assert client.get(f"/e/{code}/photos/{ids[0]}").status_code == 200
    assert client.get(f"/api/e/{code}/photos").json()["total"] == 5
    assert engine.catalog.count_faces() == 0  # browsing matched nobody


def _json(result: object) -> dict[str, object]:
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    payload: dict[str, object] = json.loads(result.stdout)  # type: ignore[attr-defined]
    return payload


def test_a_guest_scan_cut_short_by_a_stop_is_finished_by_the_next_maintenance_pass(
    client: TestClient, fixtures_dir: Path
) -> None:
    """The scan runs after the answer; if the service stops first, the consent stays pending and the
    private page says it is still looking, until a maintenance pass finishes it."""
    engine = _engine(client)
    secret = "s" * 43
    engine.consents.add(  # what the consent route records before its answer; the scan never ran
        "events",
        _selfie(fixtures_dir, "joe_biden", "biden2.jpg"),
        actor="guest",
        contact=None,
        channel="guest_page",
        link_secret=secret,
        scan=False,
    )
    link = f"/e/{_code(client)}/me/{secret}"
    waiting = client.get(link)
    assert 'id="guest-searching"' in waiting.text and 'http-equiv="refresh"' in waiting.text
    assert _shown(waiting.text) == []
    assert run_once(engine)["consent_scans"] == 3
    done = client.get(link)
    assert "guest-searching" not in done.text and _photo_names(client, _shown(done.text)) == BIDEN
