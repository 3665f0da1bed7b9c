"""The DPIA (GDPR Art. 35), the FRIA (AI Act Art. 27) and the Art. 30 record, generated from the
running system (issue 19, item 4): the fields each article names, the blanks until a DPO answers
them, signing (audited, refused with blanks or for a non-DPO), and the staleness flag when a
threshold, a source, the model or an answer changes after signing. Real catalogs in ``tmp_path``,
the real app through the ASGI client, the CLI through its runner."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lethe.catalog.assessment_tables import AssessmentAnswerRow, AssessmentSignatureRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow, AuditTextRow
from lethe.cli import app as cli_app
from lethe.engine import Lethe
from lethe.errors import InputError, NotFoundError, PrivacyError
from lethe.privacy import SourceSpec
from lethe.privacy.assessment_documents import BLANK, QUESTIONS
from lethe.privacy.assessments import DOCUMENTS, Assessments, document_sha256, pack_files
from lethe.privacy.disclosures import Disclosures

from api_support import add_user, assert_error, bearer, login, serve
from conftest import consent_source, copy_gallery, make_settings

DPO = "cli:dpo@host"
#: The lettered points of each article, as the documents' section keys.
LAW_KEYS = {
    "dpia": [  # GDPR Art. 35(7)(a)-(d)
        "a_systematic_description",
        "b_necessity_and_proportionality",
        "c_risks",
        "d_measures",
    ],
    "fria": [  # AI Act Art. 27(1)(a)-(f)
        "a_processes",
        "b_period_and_frequency",
        "c_categories_of_persons",
        "d_specific_risks",
        "e_human_oversight",
        "f_measures_if_risks_materialise",
    ],
    "art30": [  # GDPR Art. 30(1)(a)-(g)
        "a_controller_and_dpo",
        "b_purposes",
        "c_categories",
        "d_recipients",
        "e_transfers",
        "f_time_limits",
        "g_security_measures",
    ],
}
PRESS = SourceSpec.validated(
    name="press",
    lawful_basis="public_task",
    art9_condition="archiving_research_statistics",
    legal_reference="Code du patrimoine, art. L211-2",
    purpose="the press archive of the city",
    jurisdiction="FR",
    retention_days=3650,
)


def _settings(data: Path, **extra: object) -> dict[str, object]:
    return {"controller_name": "Ville de Lyon", "dpo_contact": "dpo@lyon.example", **extra}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder with one consent source and a controller and DPO named."""
    folder = tmp_path / "data"
    with Lethe(make_settings(folder, **_settings(folder))) as lethe:
        lethe.add_source(consent_source())
    return folder


def _open(data: Path, **extra: object) -> Lethe:
    return Lethe(make_settings(data, **_settings(data, **extra)))


def answer_all(assessments: Assessments, document: str) -> None:
    for question in assessments.document(document)["blanks"]:
        assessments.answer(document, question, f"The controller's answer to {question}.", actor=DPO)


def _audit(lethe: Lethe, action: str) -> list[dict[str, object]]:
    with lethe.catalog.session() as session:
        rows = session.scalars(select(AuditEntryRow).where(AuditEntryRow.action == action)).all()
        return [{"actor": r.actor, **json.loads(r.details)} for r in rows]


# -- the fields the law names ----------------------------------------------------------------------


def test_every_document_has_the_fields_the_law_names(data: Path) -> None:
    with _open(data) as lethe:
        Disclosures(lethe.store).add_recipient("Agence Photo Inc", "processor", "US", actor=DPO)
        assessments = Assessments(lethe.store)
        docs = {name: assessments.document(name) for name in DOCUMENTS}
    for name, keys in LAW_KEYS.items():
        doc = docs[name]
        assert list(doc["sections"]) == keys, name
        for key, section in doc["sections"].items():
            assert section["law"] and section["heading"] and section["text"], (name, key)
        assert doc["controller"] == {"name": "Ville de Lyon", "dpo_contact": "dpo@lyon.example"}
        assert doc["signature"]["state"] == "not_signed" and doc["signature"]["words"] == "not signed"

    dpia = docs["dpia"]["sections"]
    described = dpia["a_systematic_description"]["facts"]
    assert [s["source"] for s in described["sources"]] == ["events"]
    assert described["sources"][0]["basis_words"].startswith("the data subject's consent")
    assert described["model"]["model_sha256"] == lethe.model_sha256
    # the measured error rates at the threshold in force, from the calibration (not typed in)
    rates = dpia["b_necessity_and_proportionality"]["facts"]["error_rates"]["at_match_threshold"]
    assert rates["measured_threshold"] <= 0.40 and 0 < rates["fpir"] < 1
    assert f"{rates['fpir'] * 100:.2f}%" in " ".join(dpia["b_necessity_and_proportionality"]["text"])
    assert len(dpia["c_risks"]["table"]["rows"]) >= 5
    assert any("Two-person verification" in item for item in dpia["d_measures"]["items"])

    fria = docs["fria"]["sections"]
    assert fria["b_period_and_frequency"]["facts"]["usage"]["searches"] == 0
    assert fria["e_human_oversight"]["facts"]["oversight"]["verifiers_required"] == 2
    assert "requests" in fria["f_measures_if_risks_materialise"]["facts"]["rights"]
    assert any("CNIL" in item for item in fria["f_measures_if_risks_materialise"]["items"])

    art30 = docs["art30"]["sections"]
    assert "Ville de Lyon" in art30["a_controller_and_dpo"]["text"][0]
    assert art30["b_purposes"]["facts"]["sources"][0]["purpose"] == "find my photos at the company event"
    assert art30["c_categories"]["facts"]["data_categories"]
    # the recipients come from the disclosure ledger; one outside the EEA is a transfer
    assert [r["name"] for r in art30["d_recipients"]["facts"]["recipients"]] == ["Agence Photo Inc"]
    assert [r["country"] for r in art30["e_transfers"]["facts"]["transfers"]] == ["US"]
    assert art30["f_time_limits"]["facts"]["retention"]["per_source_days"] == {"events": 365}
    security = art30["g_security_measures"]["facts"]["security"]
    assert security["encryption"] == "AES-256-GCM" and security["audit_chain_ok"] is True
    # no safeguard recorded for that transfer: the record asks the controller for it
    assert "transfer_safeguards" in docs["art30"]["blanks"]


def test_transfer_safeguards_are_asked_only_for_an_unguarded_transfer(data: Path) -> None:
    with _open(data) as lethe:
        assessments = Assessments(lethe.store)
        assert "transfer_safeguards" not in assessments.document("art30")["blanks"]
        Disclosures(lethe.store).add_recipient(
            "Cloud Ltd", "processor", "GB", actor=DPO, safeguard="UK adequacy decision (EU) 2021/1772"
        )
        doc = assessments.document("art30")
    assert "transfer_safeguards" not in doc["blanks"]
    assert "UK adequacy decision" in doc["sections"]["e_transfers"]["text"][0]


@pytest.mark.usefixtures("default_models")
def test_the_volumes_come_from_real_searches_and_the_gallery(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    """Real photos and models: the fixture gallery ingested, three searches run; the documents
    count them (the monitoring report's figures), and the sources' faces and photos."""
    folder = copy_gallery(gallery, tmp_path)
    probe = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    with _open(folder) as lethe:
        found = [lethe.search(probe, purpose=f"case {i}: who is this", actor="user:olga") for i in range(3)]
        matched = sum(1 for r in found if r.matches)
        faces, images = lethe.catalog.count_faces(), lethe.catalog.count_images()
        fria = Assessments(lethe.store).document("fria")
    usage = fria["sections"]["b_period_and_frequency"]["facts"]["usage"]
    assert usage["searches"] == 3 and usage["searches_with_match"] == matched >= 1
    assert usage["weeks_with_searches"] == 1 and usage["busiest_week"] == 3
    assert usage["most_operators_in_a_week"] == 1 and usage["first_search_at"] <= usage["last_search_at"]
    assert "3 searches from " in fria["sections"]["b_period_and_frequency"]["text"][0]
    persons = fria["sections"]["c_categories_of_persons"]["facts"]["totals"]
    assert (persons["faces"], persons["images"]) == (faces, images) and faces > 0


# -- blanks and answers ----------------------------------------------------------------------------


def test_blanks_show_until_answered_and_answers_are_versioned_and_audited(data: Path) -> None:
    with _open(data) as lethe:
        assessments = Assessments(lethe.store)
        doc = assessments.document("dpia")
        assert doc["blanks"] == [q.id for q in QUESTIONS["dpia"]]
        html = assessments.html("dpia")
        assert html.count(BLANK) == len(QUESTIONS["dpia"])
        secret = "Less intrusive means: a bib number search was tried at two races and failed."
        first = assessments.answer("dpia", "necessity", "Bib numbers first.", actor=DPO)
        second = assessments.answer("dpia", "necessity", secret, actor=DPO)
        assert (first["version"], second["version"]) == (1, 2)
        doc = assessments.document("dpia")
        html = assessments.html("dpia")
        history = assessments.answer_history("dpia")
        entries = _audit(lethe, "assessment.answer")
        with lethe.catalog.session() as session:
            texts = [t.text for t in session.scalars(select(AuditTextRow))]
    shown = next(q for q in doc["questions"] if q["id"] == "necessity")
    assert shown["answer"] == secret and shown["version"] == 2 and "necessity" not in doc["blanks"]
    assert html.count(BLANK) == len(QUESTIONS["dpia"]) - 1 and "bib number search was tried" in html
    assert [(h["question"], h["version"]) for h in history] == [("necessity", 1), ("necessity", 2)]
    # audited with who, the question and the version; the text only as its sha256, never in the log
    assert [(e["actor"], e["question"], e["version"]) for e in entries] == [
        (DPO, "necessity", 1),
        (DPO, "necessity", 2),
    ]
    assert entries[1]["answer_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in json.dumps(e) for e in entries) and secret not in texts


def test_bad_input_is_a_clear_error_and_records_nothing(data: Path) -> None:
    with _open(data) as lethe:
        assessments = Assessments(lethe.store)
        with pytest.raises(NotFoundError, match="no document 'dpiaa': the documents are dpia, fria, art30"):
            assessments.document("dpiaa")
        with pytest.raises(NotFoundError, match="no document"):
            assessments.answer("nope", "necessity", "An answer.", actor=DPO)
        with pytest.raises(NotFoundError, match="the dpia has no question 'purpose'.*necessity"):
            assessments.answer("dpia", "purpose", "An answer.", actor=DPO)
        with pytest.raises(InputError, match="3 to 20000 characters"):
            assessments.answer("dpia", "necessity", "  ", actor=DPO)
        with pytest.raises(PrivacyError, match="cannot be signed while 6 question"):
            assessments.sign("dpia", actor=DPO)
        with lethe.catalog.session() as session:
            assert session.scalars(select(AssessmentAnswerRow)).all() == []
            assert session.scalars(select(AssessmentSignatureRow)).all() == []
        assert _audit(lethe, "assessment.answer") == [] and _audit(lethe, "assessment.sign") == []


# -- signing and staleness -------------------------------------------------------------------------


def test_signing_is_audited_and_keeps_the_document_as_signed(data: Path) -> None:
    with _open(data) as lethe:
        assessments = Assessments(lethe.store)
        answer_all(assessments, "dpia")
        signed = assessments.sign("dpia", actor=DPO)
        status = assessments.status("dpia")
        kept = assessments.signed_document("dpia")
        entries = _audit(lethe, "assessment.sign")
        assert lethe.verify_audit().ok
    assert status["state"] == "signed" and not status["stale"] and status["changes"] == []
    assert status["words"].startswith("signed on ") and status["signed_by"] == DPO
    assert [(e["actor"], e["document"], e["document_sha256"], e["fingerprint"]) for e in entries] == [
        (DPO, "dpia", signed["document_sha256"], signed["fingerprint"])
    ]
    # the document as signed is kept, and its sha256 is the one recorded
    assert kept is not None and document_sha256(kept) == signed["document_sha256"]
    assert kept["blanks"] == [] and list(kept["sections"]) == LAW_KEYS["dpia"]


def test_the_dpia_turns_stale_after_a_threshold_change_not_before(data: Path) -> None:
    with _open(data, match_threshold=0.40) as lethe:
        assessments = Assessments(lethe.store)
        for name in ("dpia", "fria"):
            answer_all(assessments, name)
            assessments.sign(name, actor=DPO)
    with _open(data, match_threshold=0.40) as lethe:  # reopened unchanged: still signed
        assert [Assessments(lethe.store).status(n)["state"] for n in ("dpia", "fria")] == ["signed"] * 2
    with _open(data, match_threshold=0.45) as lethe:
        assessments = Assessments(lethe.store)
        status = assessments.status("dpia")
        doc = assessments.document("dpia")
        html = assessments.html("dpia")
        listed = {d["document"]: d["signature"]["state"] for d in assessments.listing()}
    assert status["state"] == "stale" and status["stale"] is True
    assert status["changes"] == ["match threshold 0.4 -> 0.45"]
    assert re.fullmatch(r"match threshold 0\.4 -> 0\.45 since signed on \d{1,2} \w+ 20\d\d", status["words"])
    assert doc["signature"]["state"] == "stale" and status["fingerprint_now"] != status["fingerprint_signed"]
    assert "Stale:" in html and "match threshold 0.4 -&gt; 0.45 since signed on" in html
    assert listed == {"dpia": "stale", "fria": "stale", "art30": "not_signed"}


def test_a_new_source_a_model_change_and_a_new_answer_make_it_stale(data: Path) -> None:
    with _open(data) as lethe:
        assessments = Assessments(lethe.store)
        for name in DOCUMENTS:
            answer_all(assessments, name)
            assessments.sign(name, actor=DPO)
        lethe.add_source(PRESS)
        assert assessments.status("dpia")["changes"] == ["source 'press' added"]
        # a recipient matters to the Art. 30 record, not to the DPIA
        Disclosures(lethe.store).add_recipient("Archives nationales", "public_authority", "FR", actor=DPO)
        assert assessments.status("art30")["changes"] == [
            "recipient 'Archives nationales' added",
            "source 'press' added",
        ]
        assessments.sign("dpia", actor=DPO)
        assessments.answer("dpia", "residual_risk", "Accepted by the mayor's office.", actor=DPO)
        assert assessments.status("dpia")["changes"] == [
            "the answer to 'residual_risk' changed (version 1 -> 2)"
        ]
        assessments.sign("dpia", actor=DPO)
    # another embedder: another model (and its calibrated thresholds)
    with Lethe(make_settings(data, embedder="dlib", **_settings(data))) as lethe:
        changes = Assessments(lethe.store).status("dpia")["changes"]
    assert "embedder 'sface' -> 'dlib'" in changes and "match threshold 0.4 -> 0.93" in changes
    assert any(c.startswith("model sface-2021dec-int8bq (fb143eea0783) -> dlib-resnet-v1") for c in changes)


def test_pack_files_carry_each_document_with_its_signature_status(data: Path) -> None:
    with _open(data) as lethe:
        assessments = Assessments(lethe.store)
        answer_all(assessments, "art30")
        assessments.sign("art30", actor=DPO)
        lethe.add_source(PRESS)
        files = pack_files(lethe.store, now=now_utc())
    assert sorted(files) == [
        "dpia.html",
        "dpia.json",
        "fria.html",
        "fria.json",
        "record_of_processing_art30.html",
        "record_of_processing_art30.json",
        "record_of_processing_art30_signed.json",
    ]
    record = json.loads(files["record_of_processing_art30.json"])
    assert record["signature"]["state"] == "stale" and record["signature"]["changes"] == [
        "source 'press' added"
    ]
    assert json.loads(files["dpia.json"])["signature"]["state"] == "not_signed"
    signed = json.loads(files["record_of_processing_art30_signed.json"])
    assert document_sha256(signed) == record["signature"]["document_sha256"]
    page = files["record_of_processing_art30.html"].decode()
    assert (
        "<h1>Record of processing activities" in page
        and "Stale:" in page
        and "source &#39;press&#39; added" in page
    )
    assert BLANK in files["dpia.html"].decode()


# -- the API, the pages and the CLI ----------------------------------------------------------------


@pytest.fixture
def client(data: Path) -> Iterator[object]:
    with serve(data, **_settings(data)) as test_client:
        test_client.app.state.tokens = {  # type: ignore[attr-defined]
            role: add_user(test_client, role, role) for role in ("dpo", "admin", "operator")
        }
        yield test_client


def test_api_a_dpo_answers_and_signs_an_admin_only_reads(client) -> None:  # type: ignore[no-untyped-def]
    tokens = client.app.state.tokens
    dpo, admin = bearer(tokens["dpo"]), bearer(tokens["admin"])
    listed = client.get("/api/assessments", headers=admin)
    assert listed.status_code == 200
    assert [d["document"] for d in listed.json()["documents"]] == ["dpia", "fria", "art30"]
    assert client.get("/api/assessments/fria", headers=admin).json()["blanks"]
    # an admin reads but neither answers nor signs; an operator does not even read
    assert_error(
        client.put("/api/assessments/dpia/answers/necessity", headers=admin, json={"answer": "x" * 5}), 403
    )
    assert_error(client.post("/api/assessments/dpia/sign", headers=admin), 403, "forbidden")
    assert_error(client.get("/api/assessments/dpia", headers=bearer(tokens["operator"])), 403)
    # bad input: unknown document or question, a too short answer, signing with blanks
    assert_error(client.get("/api/assessments/dpiaa", headers=dpo), 404, "not_found")
    assert_error(
        client.put("/api/assessments/dpia/answers/nope", headers=dpo, json={"answer": "an answer"}), 404
    )
    assert_error(
        client.put("/api/assessments/dpia/answers/necessity", headers=dpo, json={"answer": "no"}), 422
    )
    refused = assert_error(client.post("/api/assessments/dpia/sign", headers=dpo), 409, "refused")
    assert "necessity" in str(refused["message"])
    for question in client.get("/api/assessments/dpia", headers=dpo).json()["blanks"]:
        put = client.put(
            f"/api/assessments/dpia/answers/{question}",
            headers=dpo,
            json={"answer": f"Answer to {question}."},
        )
        assert put.status_code == 200 and put.json()["answered_by"] == "user:dpo"
    signed = client.post("/api/assessments/dpia/sign", headers=dpo)
    assert signed.status_code == 200, signed.text
    doc = client.get("/api/assessments/dpia", headers=admin).json()
    assert doc["signature"]["state"] == "signed" and doc["signature"]["signed_by"] == "user:dpo"
    assert doc["signature"]["document_sha256"] == signed.json()["document_sha256"]
    history = client.get("/api/assessments/dpia/answers", headers=admin).json()["answers"]
    assert len(history) == len(QUESTIONS["dpia"])
    engine = client.app.state.lethe.engine
    assert [e["actor"] for e in _audit(engine, "assessment.sign")] == ["user:dpo"]


def test_pages_show_the_blanks_the_sign_button_and_the_stale_banner(client) -> None:  # type: ignore[no-untyped-def]
    login(client, "dpo")
    index = client.get("/assessments").text
    for name in DOCUMENTS:
        assert f'href="/assessments/{name}"' in index
    page = client.get("/assessments/dpia").text
    assert page.count(BLANK) == len(QUESTIONS["dpia"]) and 'class="question blank"' in page
    assert 'data-api="/api/assessments/dpia/answers/necessity"' in page and "Not signed." in page
    assert f"{len(QUESTIONS['dpia'])} questions still wait" in page  # no Sign form while questions are blank
    assert " style=" not in page and "<style" not in page and "<script>" not in page
    assert client.get("/static/assessments.css").status_code == 200
    engine = client.app.state.lethe.engine
    assessments = Assessments(engine.store)
    answer_all(assessments, "dpia")
    page = client.get("/assessments/dpia").text
    assert BLANK not in page and 'data-api="/api/assessments/dpia/sign"' in page
    assessments.sign("dpia", actor=DPO)
    engine.add_source(PRESS)
    page = client.get("/assessments/dpia").text
    assert "Stale:" in page and "source &#39;press&#39; added since signed on" in page
    dashboard = client.get("/").text
    assert 'href="/assessments/dpia"' in dashboard and "stale" in dashboard
    login(client, "admin")  # an admin reads, without answer forms or Sign
    page = client.get("/assessments/fria").text
    assert BLANK in page and "data-api=" not in page
    login(client, "operator")
    assert client.get("/assessments/dpia", follow_redirects=False).status_code == 403
    client.cookies.clear()


def test_cli_list_show_answer_sign(data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LETHE_DATA_DIR", str(data))
    pinned = make_settings(data).model_dump(include={"match_threshold", "erasure_auto_threshold"})
    for key, value in {**pinned, "controller_name": "Ville de Lyon"}.items():
        monkeypatch.setenv(f"LETHE_{key.upper()}", str(value))
    cli = CliRunner()

    def run(*args: str) -> dict[str, object]:
        result = cli.invoke(cli_app, ["--actor", "dpo", *args, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    listed = run("assessment", "list")["documents"]
    assert [d["signature"]["state"] for d in listed] == ["not_signed"] * 3  # type: ignore[index]
    shown = run("assessment", "show", "art30")
    questions = list(shown["blanks"])  # type: ignore[call-overload]
    assert questions == ["contact_details", "organisational_measures"]
    answer_file = tmp_path / "answer.txt"
    answer_file.write_text("Backups are encrypted and kept in a locked room.", encoding="utf-8")
    assert (
        run("assessment", "answer", "art30", "organisational_measures", "--file", str(answer_file))["version"]
        == 1
    )
    run("assessment", "answer", "art30", "contact_details", "--text", "1 place de la Comédie, Lyon")
    signed = run("assessment", "sign", "art30")
    assert signed["signed_by"] == f"cli:dpo@{signed['signed_by'].split('@')[1]}"  # type: ignore[union-attr]
    page = tmp_path / "art30.html"
    shown = run("assessment", "show", "art30", "--html", str(page))
    assert shown["signature"]["state"] == "signed"  # type: ignore[index]
    assert "Backups are encrypted" in page.read_text() and (page.stat().st_mode & 0o077) == 0
    # bad input: a clear message and the exit codes of the other commands
    unknown = cli.invoke(cli_app, ["--actor", "dpo", "assessment", "show", "dpiaa"])
    assert unknown.exit_code == 3 and "no document 'dpiaa'" in unknown.output
    missing = cli.invoke(cli_app, ["--actor", "dpo", "assessment", "answer", "dpia", "nope", "--text", "abc"])
    assert missing.exit_code == 3 and "has no question 'nope'" in missing.output
    blanks = cli.invoke(cli_app, ["--actor", "dpo", "assessment", "sign", "dpia"])
    assert blanks.exit_code == 4 and "cannot be signed" in blanks.output
    neither = cli.invoke(cli_app, ["--actor", "dpo", "assessment", "answer", "dpia", "necessity"])
    assert neither.exit_code == 2 and "--text or --file" in neither.output
