"""The evidence pack: complete, consistent with the catalog, and independently verifiable; and the
HTML pages of the pack and of the access export show what people typed as text, never as markup."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from pathlib import Path

from lethe.catalog.audit_log import GENESIS, entry_hash
from lethe.engine import Lethe
from lethe.privacy.report import verify_pack
from lethe.privacy.sources import SourceSpec

from conftest import copy_gallery, make_settings

MARKUP = '<script>alert("x")</script>'


def test_compliance_pack(gallery: Path, tmp_path: Path, fixtures_dir: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = (fixtures_dir / "identities" / "rose_leslie" / "img1.jpg").read_bytes()
    settings = make_settings(data, controller_name="Gala Photos SAS", dpo_contact="dpo@gala.example")
    with Lethe(settings) as lethe:
        requests = lethe.requests
        erasure = requests.open(kind="erasure", photos=[probe], contact="rose@example.org", actor="dpo")
        requests.verify(erasure.id, actor="dpo", method="id_document", attested=True)
        requests.run(erasure.id, actor="dpo", auto_only=True)
        requests.open(kind="access", photos=[probe], contact="rose@example.org", actor="dpo")
        result = lethe.compliance_pack(tmp_path / "pack", actor="dpo")
        assert lethe.verify_audit().ok
    pack = tmp_path / "pack"
    manifest = json.loads((pack / "manifest.json").read_text())["sha256"]
    assert set(manifest) | {"manifest.json", "manifest.json.sig.json"} == set(result["files"])  # type: ignore[arg-type]
    for name, digest in manifest.items():
        assert hashlib.sha256((pack / name).read_bytes()).hexdigest() == digest
    record = json.loads((pack / "record_of_processing.json").read_text())
    (source,) = record["sources"]
    assert (source["source"], source["lawful_basis_art6"], source["jurisdiction"]) == (
        "events",
        "consent",
        "FR",
    )
    requests_rows = json.loads((pack / "requests.json").read_text())
    assert [(r["kind"], r["state"]) for r in requests_rows] == [
        ("erasure", "answered"),
        ("access", "received"),
    ]
    assert requests_rows[0]["response_days"] != "" and requests_rows[1]["answered_at"] == ""
    (receipt,) = json.loads((pack / "erasure_receipts.json").read_text())
    assert receipt["erased_faces"] and receipt["reason"] == "erasure request"
    # Anyone can recompute the chain from the exported log with the documented rule.
    prev = GENESIS
    lines = (pack / "audit_log.jsonl").read_text().splitlines()
    from datetime import datetime

    for line in lines:
        e = json.loads(line)
        at = datetime.fromisoformat(e["at"])
        assert e["prev_hash"] == prev
        assert entry_hash(prev, e["seq"], at, e["actor"], e["action"], e["details"]) == e["hash"]
        prev = e["hash"]
    verification = json.loads((pack / "audit_verification.json").read_text())
    assert verification["ok"] and verification["head"] == prev == result["audit_head"]
    assert "rose" not in (pack / "audit_log.jsonl").read_text().lower()
    # the page reads for a person (the newcomer review: unstyled, raw terms, no controller)
    page = html.unescape((pack / "index.html").read_text())
    assert "Controller: <strong>Gala Photos SAS</strong>" in page and "dpo@gala.example" in page
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "the data subject's explicit consent (GDPR Art. 9(2)(a)) [explicit_consent]" in text
    for section in ("documents", "audit", "record", "consents", "texts", "requests", "files"):
        assert f'href="#{section}"' in page and f'id="{section}"' in page
    # issue 19 item 8: the pack holds every generated document, each linked from its contents
    documents = {
        "record_of_processing_art30": "Art. 30(1)",
        "dpia": "Art. 35",
        "fria": "Art. 27",
        "technical_documentation": "Annex IV",
        "instructions_for_use": "Art. 13",
        "eu_database_registration": "Annex VIII",
        "incidents": "Arts. 33-34",
    }
    for stem, article in documents.items():
        assert f'<a href="{stem}.html">' in page and article in page
        assert (pack / f"{stem}.html").stat().st_size > 0 and json.loads((pack / f"{stem}.json").read_text())
    for signed in ("technical_documentation", "instructions_for_use", "eu_database_registration"):
        assert f"{signed}.html.sig.json" in manifest and f"{signed}.json.sig.json" in manifest
    assert {"recipients.json", "disclosures.json", "recipient_notices.json"} <= set(manifest)
    # no demographic report was run here: the pack says so instead of linking nothing
    assert "demographic_report.html" not in manifest and "No demographic performance report" in text
    dpia = json.loads((pack / "dpia.json").read_text())
    assert "Gala Photos SAS" in json.dumps(dpia)
    assert verify_pack(pack)["ok"]


def test_both_pages_show_markup_as_text(engine: Lethe, tmp_path: Path, fixtures_dir: Path) -> None:
    """A source's purpose, a photo's file name and published URL, and a search's stated purpose with
    markup in them: the access export's page and the compliance pack's page escape each (the JSON
    files keep them as they were given)."""
    folder = tmp_path / "in"
    folder.mkdir()
    name = '"><script>x.jpg'  # a file name cannot hold '/'
    shutil.copy(fixtures_dir / "identities" / "joe_biden" / "biden.jpg", folder / name)
    url = f'https://example.org/photo?q="><{MARKUP[1:]}'
    manifest = folder / "manifest.jsonl"
    manifest.write_text(json.dumps({"path": name, "source_url": url, "caption": MARKUP}) + "\n")
    source_purpose, search_purpose = f"event photos {MARKUP}", f"check {MARKUP}"
    engine.add_source(
        SourceSpec.validated(
            name="events",
            lawful_basis="consent",
            art9_condition="explicit_consent",
            purpose=source_purpose,
            jurisdiction="FR",
            retention_days=365,
            mode="all_faces",
        )
    )
    report = engine.ingest("events", manifest)
    assert report.errors == [] and engine.catalog.count_faces() == 1
    probe = (folder / name).read_bytes()
    assert engine.search(probe, purpose=search_purpose, actor="alice").matches
    requests = engine.requests
    request = requests.open(kind="access", photos=[probe], contact="joe@example.org", actor="dpo")
    requests.verify(request.id, actor="dpo", method="id_document", attested=True)
    requests.run(request.id, actor="dpo", auto_only=True)
    export = requests.export_path(request.id)
    engine.compliance_pack(tmp_path / "pack", actor="dpo")

    (face,) = json.loads((export / "export.json").read_text())["faces"]
    assert (face["source_url"], face["purpose"]) == (url, source_purpose)
    assert Path(face["image"]).name == name
    assert [s["purpose"] for s in face["searches"]] == [search_purpose]
    access_page = (export / "index.html").read_text()
    pack_page = (tmp_path / "pack" / "index.html").read_text()
    for page in (access_page, pack_page):
        assert "<script" not in page
        assert source_purpose in html.unescape(page)
    text = html.unescape(access_page)
    assert name in text and search_purpose in text
    # the photo's source link, beside the copy's own files (the PDF, the portability archive)
    hrefs = re.findall(r'<a href="([^"]*)">', access_page)  # the quote in the URL did not end it
    (href,) = [h for h in hrefs if h not in ("access_copy.pdf", "portability.zip")]
    assert html.unescape(href) == url


def test_a_pack_is_verifiable_from_its_files_and_shows_a_cut_tail(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    """Finding 16: every pack carries the signed checkpoints and the public key; a regulator checks
    the pack with them alone, and a pack whose log was cut back (and its manifest redone) fails."""
    data = copy_gallery(gallery, tmp_path)
    probe = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    with Lethe(make_settings(data)) as lethe:
        lethe.search(probe, purpose="test: pack", actor="alice")
        result = lethe.compliance_pack(tmp_path / "pack", actor="dpo")
    pack = tmp_path / "pack"
    assert {"audit_checkpoints.jsonl", "audit_public_key.txt", "audit_faces.jsonl"} <= set(result["files"])  # type: ignore[arg-type]
    checked = verify_pack(pack)
    assert checked["ok"], checked
    assert checked["anchored"] == checked["entries"] == result["audit_entries"]
    lines = (pack / "audit_log.jsonl").read_text().splitlines()
    (pack / "audit_log.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["sha256"]["audit_log.jsonl"] = hashlib.sha256(
        (pack / "audit_log.jsonl").read_bytes()
    ).hexdigest()
    (pack / "manifest.json").write_text(json.dumps(manifest))
    cut = verify_pack(pack)
    assert not cut["ok"] and "checkpoint" in str(cut["problem"])


def test_the_packs_words_for_every_basis_and_condition_speak_of_the_data_subject() -> None:
    """The access copy's words speak to the person ("your consent"); the compliance pack, read by a
    DPO or a regulator, uses them in the third person, for every declared value."""
    from lethe.privacy.access_words import ART9_WORDS, BASIS_WORDS, third_person

    for words in [*BASIS_WORDS.values(), *ART9_WORDS.values()]:
        assert not re.search(r"\byou", third_person(words), re.I), words
    assert third_person(BASIS_WORDS["consent"]) == "the data subject's consent (GDPR Art. 6(1)(a))"


def test_a_pack_whose_manifest_was_redone_fails_on_the_manifest_signature(
    gallery: Path, tmp_path: Path
) -> None:
    """Whoever alters a file and redoes the manifest's hashes still cannot sign the new manifest:
    the pack's check names the signature; the pack made by Lethe verifies."""
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        lethe.compliance_pack(tmp_path / "pack", actor="dpo")
    pack = tmp_path / "pack"
    assert verify_pack(pack)["ok"]
    requests_file = pack / "requests.json"
    requests_file.write_text("[]")
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["sha256"]["requests.json"] = hashlib.sha256(requests_file.read_bytes()).hexdigest()
    (pack / "manifest.json").write_text(json.dumps(manifest))
    altered = verify_pack(pack)
    assert not altered["ok"] and "manifest's signature" in str(altered["problem"])
    (pack / "manifest.json.sig.json").unlink()
    missing = verify_pack(pack)
    assert not missing["ok"] and "missing" in str(missing["problem"])
