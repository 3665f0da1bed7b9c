"""The technical file (issue 19 item 5; EU AI Act Art. 11 and Annex IV, Art. 13, Art. 49 and Annex
VIII): generated from the running installation, it lists the SHA-256 of every model file in use as
the files on disk hash now, holds the fields each provision names (blanks marked where a person must
answer, settings used where they answer), the calibration with Wilson 95% intervals, the known
limits with the benchmark sections that measured them; every file is signed, a changed byte fails,
and each generation is audited and listed by the next."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from markupsafe import escape
from typer.testing import CliRunner

from lethe.calibration import CALIBRATION_FILES, confidence_table, wilson
from lethe.catalog.repository import now_utc
from lethe.cli import app as cli_app
from lethe.engine import Lethe
from lethe.models import dlib_model_path
from lethe.privacy import signatures, technical_file
from lethe.privacy.technical_facts import KNOWN_LIMITS_FILE
from lethe.privacy.technical_file import SECTIONS

from api_support import add_user, assert_error, bearer, serve
from conftest import consent_source, make_settings, use_data_dir

REPO = Path(__file__).resolve().parents[1]

ANNEX_IV = [
    "general_description",
    "intended_purpose",
    "versions",
    "design_specifications",
    "data_and_calibration",
    "accuracy",
    "known_limits",
    "human_oversight",
    "logging",
    "cybersecurity",
    "risk_management",
    "changes",
    "standards",
    "declaration_of_conformity",
    "post_market_monitoring",
]
ART_13_3 = [
    "a_provider",
    "b_characteristics",
    "c_predetermined_changes",
    "d_human_oversight",
    "e_resources_and_maintenance",
    "f_logs",
]
ART_13_3_B = [
    "i_intended_purpose",
    "ii_accuracy",
    "iii_risks_and_misuse",
    "iv_explaining_output",
    "v_persons_and_groups",
    "vi_input_data",
    "vii_interpreting_output",
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.output


def test_every_model_file_in_use_is_listed_by_the_sha256_of_its_bytes(
    tmp_path: Path, default_models: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    settings = make_settings(data)
    with Lethe(settings) as lethe:
        pipeline = lethe.prepare_models()  # what runs: YuNet, SFace and its prepared graph
        in_use = [settings.yunet_model_path, settings.sface_model_path, pipeline.embedder.model_path]  # type: ignore[attr-defined]
    assert all(p is not None and p.is_file() for p in in_use)
    use_data_dir(monkeypatch, data)
    out = tmp_path / "technical-file"
    code, output = cli("technical-file", "--out", str(out), "--json")
    assert code == 0, output
    document = json.loads((out / "technical_documentation.json").read_text())
    listed = document["design_specifications"]["model_files"]
    assert sorted(f["sha256"] for f in listed) == sorted(sha256(p) for p in in_use)  # type: ignore[arg-type]
    # The official files match their pins, the prepared graph the SHA-256 recorded when it was made.
    assert [f["matches_pin"] for f in listed] == [True, True, True]
    assert listed[2]["derived_from_sha256"] == listed[1]["sha256"]
    assert all(f["licence"] for f in listed)
    assert str(tmp_path) not in (out / "technical_documentation.json").read_text()  # no server path

    # dlib's pipeline: HOG has no file; its 5-point landmarks and ResNet ship in a package.
    with Lethe(make_settings(tmp_path / "dlib", embedder="dlib", detector="hog")) as lethe:
        files = technical_file.gather(lethe.store)["model_files"]
    assert [f["role"] for f in files] == ["detector", "landmarks", "embedder"]
    assert files[0]["file"] is None and files[0]["model"] == "dlib-hog-frontal"
    expected = [sha256(dlib_model_path("shape5")), sha256(dlib_model_path("resnet"))]
    assert [f["sha256"] for f in files[1:]] == expected
    assert files[2]["matches_pin"] is True


def test_the_documents_hold_the_fields_the_law_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Lethe(make_settings(tmp_path / "plain")) as lethe:
        files = technical_file.documents(lethe.store, now=now_utc())
    registration = json.loads(files["eu_database_registration.json"])
    a1 = registration["section_a"][0]["entry"]
    assert a1["name"]["blank"] is True and "LETHE_CONTROLLER_NAME" in a1["name"]["to_fill"]
    assert a1["contact"]["blank"] is True and a1["address"]["blank"] is True
    assert "[blank: the provider" in files["eu_database_registration.html"].decode()

    settings = make_settings(
        tmp_path / "data", controller_name="Ville de Lyon, Archives", dpo_contact="dpo@lyon.example"
    )
    with Lethe(settings) as lethe:
        lethe.add_source(consent_source("town-events", "FR"), actor="admin")
        lethe.add_source(consent_source("geneva-copies", "CH"), actor="admin")
        files = technical_file.documents(lethe.store, now=now_utc())
    documentation = json.loads(files["technical_documentation.json"])
    assert [k for k in ANNEX_IV if k in documentation] == ANNEX_IV
    assert [c["key"] for c in documentation["contents"]] == ANNEX_IV
    general = documentation["general_description"]
    assert general["provider"] == {
        "value": "Ville de Lyon, Archives",
        "blank": False,
        "filled_from": "LETHE_CONTROLLER_NAME",
    }
    assert documentation["versions"]["lethe"] and re.fullmatch(r"[0-9a-f]{64}", documentation["code_sha256"])
    assert {"onnxruntime", "numpy", "faiss-cpu"} <= set(documentation["versions"]["libraries"])
    assert documentation["design_specifications"]["index"]["backend"] in ("faiss", "milvus")
    assert documentation["design_specifications"]["thresholds"]["match_threshold"] == settings.match_threshold
    not_intended = " ".join(documentation["intended_purpose"]["not_intended"])
    for words in ("scraping", "Real-time remote biometric identification", "law enforcement", "emotions"):
        assert words in not_intended
    oversight = documentation["human_oversight"]["in_force"]
    assert oversight["verifiers_required"] == 2 and oversight["score_hidden_until_verdict"] is True
    assert documentation["logging"]["in_force"]["log_retention_days"] == settings.log_retention_days
    assert documentation["declaration_of_conformity"]["blank"] is True
    at_match = documentation["accuracy"]["at_thresholds_in_force"]["match_threshold"]
    assert len(at_match["fpir"]["ci95"]) == 2 and len(at_match["fnir"]["ci95"]) == 2
    assert documentation["data_and_calibration"]["calibration"]["interval"].startswith("Wilson")

    instructions = json.loads(files["instructions_for_use.json"])
    assert [k for k in ART_13_3 if k in instructions] == ART_13_3
    assert list(instructions["b_characteristics"]) == ART_13_3_B
    assert instructions["a_provider"]["contact"]["value"] == "dpo@lyon.example"
    groups = {g["limit"] for g in instructions["b_characteristics"]["v_persons_and_groups"]}
    assert "Children" in groups and "Close relatives and look-alikes" in groups

    registration = json.loads(files["eu_database_registration.json"])
    assert [p["point"] for p in registration["section_a"]] == [f"A.{n}" for n in range(1, 14)]
    points = {p["point"]: p["entry"] for p in registration["section_a"]}
    assert points["A.1"]["name"]["value"] == "Ville de Lyon, Archives"
    assert points["A.10"]["blank"] is True and points["A.10"]["suggested"] == ["FR"]  # CH is no Member State
    assert points["A.12"]["value"]["sha256"] == hashlib.sha256(files["instructions_for_use.html"]).hexdigest()
    assert registration["section_b"]["applies"] is False
    assert [p["point"] for p in registration["section_c"]["fields"]] == [f"C.{n}" for n in range(1, 6)]
    for name, sections in SECTIONS.items():
        page = files[f"{name}.html"].decode()
        assert all(f'id="{key}"' in page and str(escape(title)) in page for key, title, _ in sections), name


def test_the_calibration_carries_wilson_intervals(tmp_path: Path) -> None:
    # Known values of the Wilson score interval (95%).
    assert wilson(0, 10) == pytest.approx((0.0, 0.27754), abs=1e-5)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson(0, 0) is None
    for path in CALIBRATION_FILES:
        table = confidence_table(path)
        for gallery in table["galleries"]:  # type: ignore[attr-defined]
            for row in gallery["by_threshold"]:
                for rate, trials in (
                    (row["fpir"], table["non_mated_probes"]),
                    (row["fnir"], table["mated_probes"]),
                ):
                    assert rate["trials"] == trials and rate["errors"] is not None, (path.name, row)
                    assert rate["errors"] / trials == pytest.approx(rate["rate"], abs=1e-6)
                    low, high = rate["ci95"]
                    assert low <= rate["rate"] <= high and high - low < 0.05
    with Lethe(make_settings(tmp_path / "data", match_threshold=0.525)) as lethe:
        accuracy = technical_file.gather(lethe.store)["accuracy"]
    at = accuracy["at_thresholds_in_force"]["match_threshold"]
    assert at["measured_threshold"] == 0.525 and at["fpir"]["errors"] == 13 and at["fpir"]["trials"] == 4069


def test_every_known_limit_stands_in_the_section_it_cites() -> None:
    def plain(text: str) -> str:
        return re.sub(r"\s+", " ", text.replace("*", "").replace("`", "")).strip()

    def section(doc: Path, title: str) -> str:
        lines = doc.read_text().splitlines()
        for i, line in enumerate(lines):
            heading = re.match(r"(#+) (.*)", line)
            if heading and heading.group(2).strip() == title:
                level, body = len(heading.group(1)), []
                for rest in lines[i + 1 :]:
                    deeper = re.match(r"(#+) ", rest)
                    if deeper and len(deeper.group(1)) <= level:
                        break
                    body.append(rest)
                return "\n".join(body)
        raise AssertionError(f"{doc.name} has no section {title!r}")

    data = json.loads(KNOWN_LIMITS_FILE.read_text())
    assert data["version"] >= 1 and len({lim["id"] for lim in data["limits"]}) == len(data["limits"])
    for limit in data["limits"]:
        assert (
            limit["evidence"]
            and limit["deployer_action"]
            and set(limit["applies_to"]) <= {"all", "sface", "dlib", "yunet", "hog"}
        )
        for evidence in limit["evidence"]:
            text = section(REPO / evidence["doc"], evidence["section"])
            assert plain(evidence["quote"]) in plain(text), (limit["id"], evidence)
    ids = {lim["id"] for lim in data["limits"]}
    assert {"children", "pose", "low-quality", "east-asian-confusion"} <= ids


def test_the_limits_follow_the_configured_models(tmp_path: Path) -> None:
    with Lethe(make_settings(tmp_path / "sface")) as lethe:
        sface = {lim["id"] for lim in technical_file.gather(lethe.store)["known_limits"]["limits"]}
    with Lethe(make_settings(tmp_path / "dlib", embedder="dlib", detector="hog")) as lethe:
        dlib = {lim["id"] for lim in technical_file.gather(lethe.store)["known_limits"]["limits"]}
    assert "east-asian-confusion" in dlib and "east-asian-confusion" not in sface
    assert "label-noise" in sface and "label-noise" not in dlib
    assert {"children", "pose", "low-quality"} <= sface & dlib


def test_each_file_is_signed_audited_and_listed_by_the_next_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    use_data_dir(monkeypatch, data)
    first, second = tmp_path / "first", tmp_path / "second"
    code, output = cli("technical-file", "--out", str(first), "--json")
    assert code == 0, output
    key = json.loads((first / "signing_key.json").read_text())
    assert (first / "signing_key.pem").read_text() == key["pem"]
    signed = sorted(
        p
        for p in first.iterdir()
        if p.name.endswith((".json", ".html"))
        and not p.name.endswith(signatures.SUFFIX)
        and not p.name.startswith("signing_key")
    )
    assert [p.name for p in signed] == [
        f"{n}{s}" for n in sorted(technical_file.KINDS) for s in (".html", ".json")
    ]
    use_data_dir(monkeypatch, tmp_path / "elsewhere")  # checked with the key alone
    for path in signed:
        code, output = cli("signature", "verify", str(path), "--public-key", str(first / "signing_key.pem"))
        assert code == 0 and "valid: " in output, (path.name, output)
    page = first / "technical_documentation.html"
    page.write_bytes(page.read_bytes().replace(b"Annex IV", b"Annex V", 1))
    code, output = cli("signature", "verify", str(page), "--public-key", key["public_key"])
    assert code == 6 and "changed after it was signed" in output
    # A signature of one document does not pass for another.
    code, output = cli(
        "signature",
        "verify",
        str(first / "instructions_for_use.json"),
        "--signature",
        str(first / "technical_documentation.json.sig.json"),
        "--public-key",
        key["public_key"],
    )
    assert code == 6 and "INVALID" in output

    use_data_dir(monkeypatch, data)
    code, output = cli("technical-file", "--out", str(second), "--json")
    assert code == 0, output
    changes = json.loads((second / "technical_documentation.json").read_text())["changes"]
    [earlier] = changes["earlier_versions"]
    assert earlier["sha256"]["technical_documentation.json"] == sha256(first / "technical_documentation.json")
    with Lethe(make_settings(data)) as lethe:
        entries = lethe.audit_entries(action="report.technical_file")
    assert len(entries) == 2 and all(e.actor.startswith("cli:tests@") for e in entries)


def test_the_api_gives_the_documents_to_a_dpo_with_checkable_signatures(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        dpo = add_user(client, "dora", "dpo")
        operator = add_user(client, "otto", "operator")
        assert_error(client.get("/api/technical-file", headers=bearer(operator)), 403, "forbidden")
        assert_error(client.get("/api/technical-file"), 401, "unauthorized")
        answer = client.get("/api/technical-file", headers=bearer(dpo))
        assert answer.status_code == 200, answer.text
        key = bytes.fromhex(client.get("/api/signing-key").json()["public_key"])
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        audited = engine.audit_entries(action="report.technical_file")
    body = answer.json()
    assert sorted(body["documents"]) == sorted(technical_file.KINDS)
    files = body["files"]
    for name in technical_file.KINDS:
        data = files[f"{name}.json"].encode()
        assert json.loads(data) == body["documents"][name]
        record = json.loads(files[f"{name}.json{signatures.SUFFIX}"])
        assert signatures.verify(data, record, key).status == "valid"
        assert signatures.verify(data + b" ", record, key).status == "invalid"
    assert [e.actor for e in audited] == ["user:dora"]
