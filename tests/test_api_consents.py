"""Issue 17 through the real app: source declarations and their warnings (and the strict setting),
the consent ledger's routes and who may use them, the consent texts, the public transparency notice
(the declaration, no count), the ledger in the evidence pack (no template, no contact), and the
pages of the sources and of the ledger.

Real photos (the fixtures) and the real pipeline: the group photos show Obama with Biden (twice) and
Kit Harington with Rose Leslie."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lethe.privacy.report import verify_pack

from api_support import add_user, assert_error, bearer, jpeg, serve

pytestmark = pytest.mark.usefixtures("default_models")

CONTACT = "guest-desk-7f3a@example.org"
DPO_CONTACT = "dpo@controller.example"
GALA = {
    "name": "gala", "basis": "consent", "art9": "explicit_consent", "purpose": "guests find their photos",
    "jurisdiction": "FR", "retention_days": 30,
}  # fmt: skip
ROLES = ("admin", "operator", "dpo", "monitor")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("consents") / "data"
    with serve(data, dpo_contact=DPO_CONTACT, login_rate_per_minute=1000) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, str]:
    return {role: add_user(client, role, role) for role in ROLES}


@pytest.fixture(scope="module")
def gala(
    client: TestClient, tokens: dict[str, str], fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An enrolled_only source (the consent basis's default) whose event photos were ingested before
    anyone enrolled: every face was discarded."""
    added = client.post("/api/sources", headers=bearer(tokens["admin"]), json=GALA)
    assert added.status_code == 201, added.text
    assert added.json()["mode"] == "enrolled_only" and added.json()["warnings"] == []
    event = tmp_path_factory.mktemp("event")
    for photo in sorted((fixtures_dir / "group_labelled").glob("*.jpg")):
        shutil.copy(photo, event / photo.name)
    report = client.app.state.lethe.engine.ingest("gala", event)  # type: ignore[attr-defined]
    assert report.faces == 0 and report.discarded > 0
    return "gala"


def _login(client: TestClient, role: str) -> str:
    client.cookies.clear()
    response = client.post("/login", data={"name": role, "password": f"{role}-password-123"})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


#: A declaration drawing two warnings: Art. 9(2)(e), and legitimate interests without an assessment.
STREET = {"name": "street", "basis": "legitimate_interests", "art9": "made_public_by_subject",
          "purpose": "street photography archive", "jurisdiction": "DE", "retention_days": 365}  # fmt: skip
#: A law-based declaration naming its law: no warning.
ARCHIVE = {"name": "archive", "basis": "public_task", "art9": "archiving_research_statistics",
           "purpose": "the city's photo archive", "jurisdiction": "NL", "retention_days": 3650,
           "legal_reference": "Archiefwet 1995, art. 12", "collection": "licensed_archive"}  # fmt: skip


@pytest.fixture(scope="module")
def declared(client: TestClient, tokens: dict[str, str]) -> dict[str, dict[str, object]]:
    """The answers to registering ``street`` and ``archive``."""
    answers = {}
    for body in (STREET, ARCHIVE):
        added = client.post("/api/sources", headers=bearer(tokens["admin"]), json=body)
        assert added.status_code == 201, added.text
        answers[str(body["name"])] = added.json()
    return answers


def test_declarations_answer_their_warnings_and_refuse_scraping(
    client: TestClient, tokens: dict[str, str], declared: dict[str, dict[str, object]]
) -> None:
    admin = bearer(tokens["admin"])
    body = declared["street"]
    assert body["mode"] == "all_faces" and body["collection"] == "operator_controlled"
    assert isinstance(body["warnings"], list) and len(body["warnings"]) == 2
    warnings = " ".join(body["warnings"])
    assert "9(2)(e)" in warnings and "--lia-reference" in warnings
    assert declared["archive"]["warnings"] == [] and declared["archive"]["collection"] == "licensed_archive"
    lax = STREET

    for refused in ("web_scrape", "social_media", "cctv"):
        scraped = assert_error(
            client.post("/api/sources", headers=admin, json=lax | {"name": "x", "collection": refused}),
            422,
            "no_lawful_basis",
        )
        assert "does not index" in str(scraped["message"])
    assert_error(
        client.post("/api/sources", headers=admin, json=lax | {"name": "y", "mode": "sometimes"}),
        422,
        "no_lawful_basis",
    )
    listed = {
        s["source"]: s
        for s in client.get("/api/sources", headers=bearer(tokens["operator"])).json()["sources"]
    }
    assert "x" not in listed and "y" not in listed
    assert listed["street"]["warnings"] == body["warnings"] and listed["street"]["lia_reference"] is None
    assert (listed["archive"]["legal_reference"], listed["archive"]["collection"]) == (
        "Archiefwet 1995, art. 12",
        "licensed_archive",
    )
    assert (listed["archive"]["enrolled"], listed["archive"]["withdrawn"]) == (0, 0)


def test_strict_declarations_refuse_what_would_be_warned(tmp_path: Path) -> None:
    with serve(tmp_path / "data", strict_declarations=True) as strict:
        admin = bearer(add_user(strict, "root", "admin"))
        warned = GALA | {"name": "all", "mode": "all_faces"}  # consent basis storing everyone's face
        refused = assert_error(
            strict.post("/api/sources", headers=admin, json=warned), 422, "no_lawful_basis"
        )
        assert "LETHE_STRICT_DECLARATIONS" in str(refused["message"])
        assert strict.get("/api/sources", headers=admin).json()["sources"] == []
        assert strict.post("/api/sources", headers=admin, json=GALA).status_code == 201


def test_desk_enrolment_ledger_and_withdrawal(
    client: TestClient,
    tokens: dict[str, str],
    gala: str,
    declared: dict[str, dict[str, object]],  # the all_faces "street" source, refused below
    fixtures_dir: Path,
) -> None:
    selfie = fixtures_dir / "identities" / "barack_obama" / "obama.jpg"
    form = {"contact": CONTACT, "channel": "desk", "age_attestation": "of_age"}
    url = f"/api/sources/{gala}/consents"
    # who may enrol: an operator or a DPO at the desk; nobody anonymous, not an admin or a monitor
    assert_error(client.post(url, data=form, files={"photo": jpeg(selfie)}), 401, "unauthorized")
    for role in ("admin", "monitor"):
        assert_error(
            client.post(url, headers=bearer(tokens[role]), data=form, files={"photo": jpeg(selfie)}),
            403,
            "forbidden",
        )
    desk = bearer(tokens["operator"])
    # bad input: a clear error, nothing recorded
    assert_error(
        client.post(url, headers=desk, data=form | {"channel": "guest_page"}, files={"photo": jpeg(selfie)}),
        422,
    )
    assert_error(
        client.post(url, headers=desk, data=form, files={"photo": ("a.jpg", b"not an image", "image/jpeg")}),
        415,
    )
    dog = fixtures_dir / "no_face" / "dog.jpg"
    assert "no face" in str(
        assert_error(client.post(url, headers=desk, data=form, files={"photo": jpeg(dog)}), 422)["message"]
    )
    assert_error(
        client.post("/api/sources/street/consents", headers=desk, data=form, files={"photo": jpeg(selfie)}),
        422,
        "no_lawful_basis",
    )
    assert_error(
        client.post("/api/sources/nowhere/consents", headers=desk, data=form, files={"photo": jpeg(selfie)}),
        404,
    )
    assert client.get("/api/consents", headers=bearer(tokens["dpo"])).json()["consents"] == []

    enrolled = client.post(url, headers=desk, data=form, files={"photo": jpeg(selfie)})
    assert enrolled.status_code == 201, enrolled.text
    consent = enrolled.json()
    # the scan of the photos ingested before found Obama in both photos of him
    assert (consent["source"], consent["channel"], consent["faces"], consent["text_version"]) == (
        gala,
        "desk",
        2,
        1,
    )
    assert consent["given_by"] == "user:operator" and CONTACT not in enrolled.text

    # the ledger: a DPO and an admin read it, an operator does not; never a template or a contact
    assert_error(client.get("/api/consents", headers=desk), 403, "forbidden")
    assert_error(client.get("/api/consents"), 401)
    for role in ("dpo", "admin"):
        ledger = client.get("/api/consents", params={"source": gala}, headers=bearer(tokens[role]))
        assert ledger.status_code == 200
        (row,) = ledger.json()["consents"]
        assert row["consent"] == consent["consent"] and row["withdrawn_at"] is None
        assert not {"template", "contact", "link_hash"} & set(row) and CONTACT not in ledger.text
    assert_error(
        client.get("/api/consents", params={"source": "nowhere"}, headers=bearer(tokens["dpo"])), 404
    )
    sources = {s["source"]: s for s in client.get("/api/sources", headers=desk).json()["sources"]}
    assert (sources[gala]["enrolled"], sources[gala]["withdrawn"], sources[gala]["faces"]) == (1, 0, 2)

    # withdrawal: a DPO only; the faces are erased with a receipt, once
    withdraw = f"/api/consents/{consent['consent']}/withdraw"
    assert_error(client.post(withdraw, headers=desk), 403, "forbidden")
    done = client.post(withdraw, headers=bearer(tokens["dpo"]))
    assert done.status_code == 200, done.text
    answer = done.json()
    assert (answer["withdrawn"], answer["consent"], answer["erased_faces"]) == (True, consent["consent"], 2)
    assert answer["receipt"]["job_id"] == answer["erasure_job_id"] and answer["receipt"]["erased_faces"] == 2
    assert answer["receipt"]["reason"]
    assert_error(client.post(withdraw, headers=bearer(tokens["dpo"])), 409, "conflict")
    assert_error(client.post("/api/consents/999999/withdraw", headers=bearer(tokens["dpo"])), 404)
    (row,) = client.get("/api/consents", headers=bearer(tokens["dpo"])).json()["consents"]
    assert row["withdrawn_by"] == "user:dpo" and row["erasure_job_id"] == answer["erasure_job_id"]
    sources = {s["source"]: s for s in client.get("/api/sources", headers=desk).json()["sources"]}
    assert (sources[gala]["enrolled"], sources[gala]["withdrawn"], sources[gala]["faces"]) == (0, 1, 0)


def test_consent_text_versions(
    client: TestClient, tokens: dict[str, str], gala: str, fixtures_dir: Path
) -> None:
    url = f"/api/sources/{gala}/consent-text"
    first = client.get(url, headers=bearer(tokens["operator"]))
    assert first.status_code == 200
    text = first.json()
    assert text["sha256"] == hashlib.sha256(text["text"].encode()).hexdigest()
    assert text["version"] == len(text["versions"]) and text["versions"][-1]["sha256"] == text["sha256"]
    assert_error(client.get(url), 401)
    new = "I agree that my face is compared with the gala's photos so that I find mine; v2."
    assert_error(client.put(url, headers=bearer(tokens["operator"]), json={"text": new}), 403, "forbidden")
    assert_error(client.put(url, headers=bearer(tokens["dpo"]), json={"text": "too short"}), 422)
    put = client.put(url, headers=bearer(tokens["dpo"]), json={"text": new})
    assert put.status_code == 200, put.text
    assert (put.json()["version"], put.json()["text"]) == (text["version"] + 1, new)
    assert [v["version"] for v in put.json()["versions"]] == list(range(1, text["version"] + 2))
    assert (
        client.put(url, headers=bearer(tokens["admin"]), json={"text": new + " v3"}).json()["version"]
        == text["version"] + 2
    )
    assert_error(client.get("/api/sources/nowhere/consent-text", headers=bearer(tokens["dpo"])), 404)
    # a consent given now names the text in force
    selfie = fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"
    enrolled = client.post(
        f"/api/sources/{gala}/consents",
        headers=bearer(tokens["dpo"]),
        data={"channel": "form", "age_attestation": "parental"},
        files={"photo": jpeg(selfie)},
    )
    assert enrolled.status_code == 201, enrolled.text
    assert (
        enrolled.json()["text_version"],
        enrolled.json()["age_attestation"],
        enrolled.json()["faces"],
    ) == (
        text["version"] + 2,
        "parental",
        1,
    )


def test_the_public_notice_has_the_declaration_and_no_count(
    client: TestClient, tokens: dict[str, str], gala: str, declared: dict[str, object], fixtures_dir: Path
) -> None:
    client.cookies.clear()
    before_json = client.get(f"/api/notices/{gala}")
    before_page = client.get(f"/notice/{gala}")
    assert before_json.status_code == 200 and before_page.status_code == 200
    notice = before_json.json()
    assert (notice["purpose"], notice["lawful_basis"], notice["mode"], notice["retention_days"]) == (
        GALA["purpose"], "consent", "enrolled_only", 30,
    )  # fmt: skip
    assert notice["contact"] == DPO_CONTACT and "CNIL" in notice["complaint"]["words"]
    assert {r["right"] for r in notice["rights"]} == {
        "access",
        "erasure",
        "objection",
        "restriction",
        "withdrawal",
    }
    assert not {"faces", "images", "enrolled", "withdrawn", "consents", "status"} & set(notice)
    page = before_page.text
    facts = (GALA["purpose"], "Only people who consented are matched", "at most 30 days", DPO_CONTACT, "CNIL",
             'href="/portal"', "Withdrawal of consent", "Your explicit consent (Art. 9(2)(a))")  # fmt: skip
    for fact in facts:
        assert fact in page, fact
    assert "default-src 'self'" in before_page.headers["content-security-policy"]
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []

    # no count: enrolling someone (whose faces are then stored) changes neither the JSON nor the page
    selfie = fixtures_dir / "identities" / "barack_obama" / "obama.jpg"
    enrolled = client.post(
        f"/api/sources/{gala}/consents", headers=bearer(tokens["operator"]), files={"photo": jpeg(selfie)}
    )
    assert enrolled.status_code == 201 and enrolled.json()["faces"] == 2
    client.cookies.clear()
    assert client.get(f"/api/notices/{gala}").content == before_json.content
    assert client.get(f"/notice/{gala}").text == page

    # a law-based archive names its law; every source is listed, the portal links the list
    archive = client.get("/api/notices/archive").json()
    assert archive["legal_reference"] == "Archiefwet 1995, art. 12" and "withdrawal" not in {
        r["right"] for r in archive["rights"]
    }
    assert "Autoriteit Persoonsgegevens" in archive["complaint"]["words"]
    index = client.get("/api/notices").json()["notices"]
    assert {"source": gala, "purpose": GALA["purpose"], "notice": f"/notice/{gala}"} in index
    assert f'href="/notice/{gala}"' in client.get("/notice").text
    assert 'href="/notice"' in client.get("/portal").text
    assert_error(client.get("/api/notices/nowhere"), 404, "not_found")
    assert client.get("/notice/nowhere").status_code == 404


def test_the_evidence_pack_holds_the_ledger_and_no_template_or_contact(
    client: TestClient,
    tokens: dict[str, str],
    gala: str,
    declared: dict[str, object],
    tmp_path: Path,
    fixtures_dir: Path,
) -> None:
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    # one consent active (with its contact sealed in the catalog), one withdrawn
    for person, photo in (("rose_leslie", "img1.jpg"), ("joe_biden", "biden.jpg")):
        enrolled = client.post(
            f"/api/sources/{gala}/consents",
            headers=bearer(tokens["operator"]),
            data={"contact": CONTACT},
            files={"photo": jpeg(fixtures_dir / "identities" / person / photo)},
        )
        assert enrolled.status_code == 201, enrolled.text
    withdrawn_now = client.post(
        f"/api/consents/{enrolled.json()['consent']}/withdraw", headers=bearer(tokens["dpo"])
    )
    assert withdrawn_now.status_code == 200 and withdrawn_now.json()["erased_faces"] >= 1
    templates = []
    from sqlalchemy import select

    from lethe.catalog.consent_tables import ConsentRow

    with engine.catalog.session() as session:
        for consent_id, blob in session.execute(
            select(ConsentRow.id, ConsentRow.template).where(ConsentRow.template.is_not(None))
        ):
            source_id = engine.catalog.source(gala).id
            templates.append(engine.keyring.open(source_id, blob, b"lethe-consent-template:%d" % consent_id))
    assert templates

    response = client.get("/api/reports/compliance", headers=bearer(tokens["dpo"]))
    assert response.status_code == 200, response.text[:300]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path)
    pack = tmp_path / "compliance-pack"
    files = {p.name: p.read_bytes() for p in pack.rglob("*") if p.is_file()}
    assert {"consents.json", "consents.csv", "consent_texts.json"} <= set(files)
    for name, blob in files.items():
        assert CONTACT.encode() not in blob, name
        for template in templates:
            assert template not in blob and base64.b64encode(template) not in blob, name
    ledger = json.loads(files["consents.json"])
    assert [c["consent"] for c in ledger] == [c.id for c in engine.consents.listing()]
    withdrawn = [c for c in ledger if c["withdrawn_at"]]
    assert withdrawn and all(c["erasure_job_id"] for c in withdrawn)
    assert not {"template", "contact", "link_hash"} & set(ledger[0])
    assert b"given_by" in files["consents.csv"].splitlines()[0]
    texts = json.loads(files["consent_texts.json"])
    assert {(t["source"], t["version"]) for t in texts} >= {(c["source"], c["text_version"]) for c in ledger}
    for t in texts:
        assert hashlib.sha256(t["text"].encode()).hexdigest() == t["sha256"]
    record = json.loads(files["record_of_processing.json"])
    row = next(s for s in record["sources"] if s["source"] == gala)
    assert (row["mode"], row["collection"], row["warnings"]) == ("enrolled_only", "operator_controlled", [])
    assert (row["consents_active"], row["consents_withdrawn"]) == (
        sum(1 for c in ledger if c["source"] == gala and not c["withdrawn_at"]),
        len(withdrawn),
    )
    street = next(s for s in record["sources"] if s["source"] == "street")
    assert len(street["warnings"]) == 2
    assert verify_pack(pack)["ok"]

    # a consent text altered after the fact (the manifest redone to match) is caught
    texts[0]["text"] += " (amended later)"
    (pack / "consent_texts.json").write_text(json.dumps(texts))
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["sha256"]["consent_texts.json"] = hashlib.sha256(
        (pack / "consent_texts.json").read_bytes()
    ).hexdigest()
    (pack / "manifest.json").write_text(json.dumps(manifest))
    checked = verify_pack(pack)
    assert not checked["ok"] and "consent text" in str(checked["problem"])


def test_the_sources_and_ledger_pages_for_their_roles(
    client: TestClient, gala: str, declared: dict[str, object]
) -> None:
    _login(client, "operator")
    sources = client.get("/sources").text
    assert "enrolled only" in sources and 'href="/notice/gala"' in sources
    assert "Warning: Art. 9(2)(e)" in sources  # the street source's declaration
    assert 'href="/consents"' not in sources  # not in an operator's navigation
    assert client.get("/consents").status_code == 403

    _login(client, "admin")
    sources = client.get("/sources").text
    for field in ("mode", "legal_reference", "lia_reference", "collection"):
        assert f'name="{field}"' in sources, field
    assert 'value="web_scrape"' not in sources and "no photos scraped from the web" in sources
    ledger = client.get("/consents", params={"source": gala}).text
    assert 'href="/consents"' in ledger and "/withdraw" not in ledger  # an admin reads, a DPO withdraws
    assert 'data-api="/api/sources/gala/consent-text" data-method="PUT"' in ledger

    _login(client, "dpo")
    page = client.get("/consents", params={"source": gala})
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [] and " style=" not in html
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    for consent in engine.consents.listing(gala):
        withdraw = f'data-api="/api/consents/{consent.id}/withdraw"'
        assert (withdraw in html) == consent.active, consent.id
    assert "Version 1" in html and "(in force)" in html and CONTACT not in html
    assert client.get("/consents", params={"source": "nowhere"}).status_code == 404
    client.cookies.clear()


def test_the_ledger_pages_through_and_a_dpo_enrols_at_the_desk_from_its_page(
    client: TestClient,
    tokens: dict[str, str],
    declared: dict[str, dict[str, object]],  # "street" (all_faces): no desk form
    fixtures_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fair = {**GALA, "name": "fair", "purpose": "visitors of the fair find their photos"}
    added = client.post("/api/sources", headers=bearer(tokens["admin"]), json=fair)
    assert added.status_code == 201 and added.json()["mode"] == "enrolled_only", added.text
    people = fixtures_dir / "identities"
    desk = bearer(tokens["operator"])
    for photo in (people / "joe_biden" / "biden.jpg", people / "tom_cruise" / "Tom_Cruise_avp_2014_4.jpg"):
        enrolled = client.post("/api/sources/fair/consents", headers=desk, files={"photo": jpeg(photo)})
        assert enrolled.status_code == 201, enrolled.text

    # the desk form, on the ledger page of an enrolled_only source, for a DPO only
    form = 'id="desk-form" data-api="/api/sources/fair/consents" data-encoding="multipart"'
    _login(client, "admin")
    assert form not in client.get("/consents", params={"source": "fair"}).text
    csrf = _login(client, "dpo")
    assert form in client.get("/consents", params={"source": "fair"}).text
    assert "desk-form" not in client.get("/consents", params={"source": "street"}).text
    html = client.get("/consents", params={"source": "fair"}).text
    names = set(re.findall(r'name="([a-z_]+)"', html.split('id="desk-form"')[1].split("</form>")[0]))
    assert names == {"photo", "contact", "channel", "age_attestation"}
    # what the form posts, with the page's session: a third consent, by the DPO, on a paper form
    kit = people / "kit_harington" / "john1.jpeg"
    posted = client.post(
        "/api/sources/fair/consents",
        headers={"X-CSRF-Token": csrf},
        data={"contact": "", "channel": "form", "age_attestation": "parental"},
        files={"photo": jpeg(kit)},
    )
    assert posted.status_code == 201, posted.text
    assert (posted.json()["given_by"], posted.json()["channel"]) == ("user:dpo", "form")
    assert posted.json()["age_attestation"] == "parental"

    # the API pages through the ledger, oldest first, and counts it all
    dpo = bearer(tokens["dpo"])
    first = client.get("/api/consents", params={"source": "fair", "limit": 2}, headers=dpo).json()
    rest = client.get("/api/consents", params={"source": "fair", "limit": 2, "offset": 2}, headers=dpo).json()
    assert (first["total"], len(first["consents"]), rest["total"], len(rest["consents"])) == (3, 2, 3, 1)
    ids = [c["consent"] for c in first["consents"] + rest["consents"]]
    assert ids == sorted(ids) and rest["consents"][0]["channel"] == "form"
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        assert_error(client.get("/api/consents", params=bad, headers=dpo), 422)

    # and so does the page
    import lethe.web.dpo

    monkeypatch.setattr(lethe.web.dpo, "LEDGER_PAGE", 2)
    page = client.get("/consents", params={"source": "fair"}).text
    assert "Consents 1–2 of 3" in page and 'offset=2" rel="next"' in page and 'rel="prev"' not in page
    page = client.get("/consents", params={"source": "fair", "offset": 2}).text
    assert "Consents 3–3 of 3" in page and 'offset=0" rel="prev"' in page and 'rel="next"' not in page
    client.cookies.clear()
