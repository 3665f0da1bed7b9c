"""The access copy as a PDF and the portability archive (issue 19 item 1; GDPR Arts. 15(3), 20).

Kit Harington enrolled with consent in an ``enrolled_only`` event source whose group photo also
shows Rose Leslie (her face is discarded at ingest, never stored), and a press archive on
legitimate interests (Poland: its authority's name needs a Unicode font) holds one more photo of
him. An operator searched for him; then he asked for his data. Real photos, the real pipeline,
catalog and PDF library; the PDF read back with pypdf."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from lethe.engine import Lethe
from lethe.imaging import decode_image
from lethe.privacy import SourceSpec, access_pdf, portability
from lethe.privacy.access import exports_root
from lethe.privacy.access_photos import iou
from lethe.privacy.access_words import ROLE_WORDS
from lethe.types import Box
from lethe.users import Users

from conftest import consent_source, make_settings

pypdf = pytest.importorskip("pypdf", reason="pypdf (dev extras: pip install -e '.[dev]') reads the PDF back")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (dev extras) checks the archive's schema")

pytestmark = pytest.mark.storage

PRESS_AUTHORITY = "Urząd Ochrony Danych Osobowych (UODO)"
CNIL = "Commission nationale de l'informatique et des libertés (CNIL)"
PROBE = "identities/kit_harington/johnsnow_test1.jpg"


@dataclass
class Export:
    lethe: Lethe
    folder: Path
    document: dict[str, Any]
    sources: Path
    consent_id: int
    fixtures_dir: Path


def _access(lethe: Lethe, probe: Path, before_run: Any = None) -> Path:
    requests = lethe.requests
    request = requests.open(kind="access", photos=[probe.read_bytes()], contact="kit@example.org", actor="op")
    requests.verify(request.id, actor="dpo", method="id_document", attested=True)
    if before_run is not None:
        before_run(request)
    assert requests.run(request.id, actor="dpo", auto_only=True)["state"] == "answered"
    return requests.export_path(request.id)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Iterator[Export]:
    root = tmp_path_factory.mktemp("access-pdf")
    guests, press = root / "guests", root / "press"
    guests.mkdir()
    press.mkdir()
    shutil.copy(fixtures_dir / "group_labelled/kit_with_rose.jpg", guests)
    shutil.copy(fixtures_dir / "identities/kit_harington/john1.jpeg", press)
    with Lethe(make_settings(root / "data")) as lethe:
        lethe.add_source(consent_source("guests", mode="enrolled_only"))
        lethe.add_source(
            SourceSpec.validated(
                name="press",
                lawful_basis="legitimate_interests",
                art9_condition="made_public_by_subject",
                purpose="illustrate news reports",
                jurisdiction="PL",
                retention_days=365,
                lia_reference="LIA-2026-04",
            )
        )
        selfie = (fixtures_dir / "identities/kit_harington/john2.jpeg").read_bytes()
        consent = lethe.consents.add("guests", selfie, actor="desk", contact=None)
        assert lethe.ingest("guests", guests).errors == [] and lethe.ingest("press", press).errors == []
        Users(lethe.catalog).create("olga-ops", ["operator"], actor="test", password="olga-password-123")
        found = lethe.search(selfie, purpose="find Kit at the gala", actor="user:olga-ops").matches
        assert len(found) == 2  # his face in the group photo (Rose's was never stored) and in john1
        folder = _access(lethe, fixtures_dir / PROBE)
        document = json.loads((folder / "export.json").read_text())
        yield Export(lethe, folder, document, root, consent.id, fixtures_dir)


def _pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(path)
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def _pdf_images(path: Path) -> int:
    return sum(len(page.images) for page in pypdf.PdfReader(path).pages)


def _detail(pixels: np.ndarray, box: Box) -> float:
    """High-frequency energy of a box: the variance of its grey levels' edges."""
    crop = np.ascontiguousarray(pixels[box.top : box.bottom, box.left : box.right])
    edges = Image.fromarray(crop).convert("L").filter(ImageFilter.FIND_EDGES)
    return float(np.asarray(edges, dtype=np.float64)[1:-1, 1:-1].var())


def _pixels(data: bytes) -> np.ndarray:
    return decode_image(data, max_pixels=50_000_000).pixels


# -- (A) the PDF ------------------------------------------------------------------------------------


def test_the_pdf_holds_the_same_copy_with_one_image_per_photo(export: Export) -> None:
    document = export.document
    assert document["pdf"] == {"file": "access_copy.pdf", "font": "DejaVuSans", "error": None}
    path = export.folder / "access_copy.pdf"
    assert path.read_bytes().startswith(b"%PDF-")
    text = _pdf_text(path)
    # The recipients' words, the purposes, the bases in words, the complaint authorities (accents
    # and a Polish letter intact: the Unicode font), the retention end date, the score's meaning.
    assert ROLE_WORDS["operator"] in text and "returned it as a search result" in text
    assert "find my photos at the company event" in text and "illustrate news reports" in text
    for item in document["faces"]:
        assert item["lawful_basis_words"] in text and item["art9_words"] in text
        assert item["kept_until"] in text and item["source"] in text
    assert CNIL in text and PRESS_AUTHORITY in text
    assert "false positive identification rate" in text and "supervisory authority" in text
    assert "olga-ops" not in text  # roles, never a name
    # One image per photo held: the two access copies (both readable), nothing else.
    assert len(document["photos"]) == 2 and all(p["file"] for p in document["photos"])
    assert _pdf_images(path) == 2
    page = (export.folder / "index.html").read_text()
    assert 'href="access_copy.pdf"' in page


def test_without_a_unicode_font_the_pdf_is_written_in_the_core_font(export: Export, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(export.folder, folder)
    (folder / "access_copy.pdf").unlink()
    made = access_pdf.write_pdf(folder, export.document, fonts=())
    assert (
        made["file"] == "access_copy.pdf" and made["font"].startswith("Helvetica") and made["error"] is None
    )
    text = _pdf_text(folder / "access_copy.pdf")
    assert CNIL in text  # Latin-1 letters kept
    assert "Urzad Ochrony Danych Osobowych (UODO)" in text and PRESS_AUTHORITY not in text  # ą → a
    assert _pdf_images(folder / "access_copy.pdf") == 2


def test_a_pdf_that_cannot_be_written_leaves_the_html_and_json_and_says_why(export: Export) -> None:
    def block_the_pdf(request: Any) -> None:
        # The PDF's name taken by a folder: writing the file fails (as a full or broken disk would).
        folder = exports_root(export.lethe.store) / f"request-{request.id}-{request.ref}"
        (folder / "access_copy.pdf").mkdir(parents=True)

    folder = _access(export.lethe, export.fixtures_dir / PROBE, before_run=block_the_pdf)
    document = json.loads((folder / "export.json").read_text())
    assert document["pdf"]["file"] is None and document["pdf"]["font"] is None
    assert "IsADirectoryError" in document["pdf"]["error"] and str(folder) not in document["pdf"]["error"]
    assert len(document["faces"]) == 2 and (folder / "portability.zip").is_file()
    page = (folder / "index.html").read_text()
    assert "the PDF could not be made (IsADirectoryError)" in page and "Photo 2" in page
    assert (folder / "access_copy.pdf").is_dir() and not any((folder / "access_copy.pdf").iterdir())


def test_latin1_folds_only_what_latin1_lacks() -> None:
    assert access_pdf.latin1("libertés — “Urząd” Úřad") == 'libertés - "Urzad" Úrad'


# -- (B) portability ----------------------------------------------------------------------------------


def _archive(export: Export) -> zipfile.ZipFile:
    return zipfile.ZipFile(export.folder / "portability.zip")


def test_the_archive_holds_only_the_consent_sources_photo_with_the_others_blurred(export: Export) -> None:
    document = export.document
    (consented,) = [f for f in document["faces"] if f["source"] == "guests"]
    (press,) = [f for f in document["faces"] if f["source"] == "press"]
    number = consented["photo_number"]
    with _archive(export) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(
            ["README.txt", "schema.json", "manifest.json"]
            + [f"photo-{number}/{n}" for n in ("photo.jpg", "metadata.json", "templates.json")]
        )
        manifest = json.loads(archive.read("manifest.json"))
        photo = archive.read(f"photo-{number}/photo.jpg")
        metadata = json.loads(archive.read(f"photo-{number}/metadata.json"))
        templates = json.loads(archive.read(f"photo-{number}/templates.json"))
    assert [p["faces"] for p in manifest["photos"]] == [[consented["face_id"]]]
    assert manifest["not_portable"] == [
        {
            "photo_number": press["photo_number"],
            "face_id": press["face_id"],
            "source": "press",
            "lawful_basis": "legitimate_interests",
            "reason": "not portable: lawful basis legitimate_interests (Art. 20(1)(a))",
        }
    ]
    assert document["portability"]["file"] == "portability.zip"
    assert (
        document["portability"]["portable_faces"] == 1 and document["portability"]["not_portable_faces"] == 1
    )

    # The photo: full size, Kit's pixels as held (no outline drawn), Rose's face unrecognisable.
    original = _pixels((export.sources / "guests" / "kit_with_rose.jpg").read_bytes())
    copy = _pixels(photo)
    assert copy.shape == original.shape
    kit = Box(*consented["box"])
    ring = (slice(kit.top - 2, kit.bottom + 2), slice(kit.left - 2, kit.right + 2))
    assert np.abs(copy[ring].astype(int) - original[ring].astype(int)).mean() < 4  # JPEG noise only
    lethe = export.lethe
    faces = lethe.pipeline.faces(original)
    (rose,) = [f.box for f in faces if iou(f.box, kit) < 0.4]  # discarded at ingest: found again here
    assert _detail(copy, rose) < 0.1 * _detail(original, rose)
    kit_template = np.asarray(templates["faces"][0]["values"], dtype=np.float32)
    rose_template = next(f.embedding for f in faces if f.box == rose)
    again = lethe.pipeline.faces(copy)
    assert max(float(f.embedding @ kit_template) for f in again) >= lethe.settings.match_threshold
    assert all(float(f.embedding @ rose_template) < lethe.settings.match_threshold for f in again)
    with Image.open(io.BytesIO(photo)) as im:
        assert im.format == "JPEG" and not im.getexif()

    # The metadata: source, dates, the face box, the consent record; the template as held.
    assert metadata["source"]["name"] == "guests" and metadata["source"]["lawful_basis"] == "consent"
    assert metadata["ingested_at"] == consented["ingested_at"] and metadata["source_url"] is None
    (face,) = metadata["faces"]
    assert face["box"] == dict(zip(("left", "top", "right", "bottom"), consented["box"], strict=True))
    assert face["consent"]["consent_id"] == export.consent_id and face["consent"]["text_version"] == 1
    assert metadata["photo_size"] == {"width": original.shape[1], "height": original.shape[0]}
    held = lethe.catalog.face_templates([consented["face_id"]])[consented["face_id"]]
    np.testing.assert_array_equal(kit_template, held)
    assert templates["faces"][0]["model_sha256"] == consented["template"]["model_sha256"]


def test_the_manifest_and_metadata_follow_the_archives_own_schema(export: Export) -> None:
    with _archive(export) as archive:
        schema = json.loads(archive.read("schema.json"))
        manifest = json.loads(archive.read("manifest.json"))
        readme = archive.read("README.txt").decode()
        (entry,) = manifest["photos"]
        metadata = json.loads(archive.read(entry["metadata"]))
        templates = json.loads(archive.read(entry["templates"]))
    assert schema == portability.schema() and manifest["format"] == "lethe-portability"
    assert manifest["version"] == 1 and "version 1" in readme and "Article 20(4)" in readme
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(manifest, schema)
    defs = schema["$defs"]
    jsonschema.validate(metadata, {**defs["metadata"], "$defs": defs})
    jsonschema.validate(templates, {**defs["templates"], "$defs": defs})
    # The schema can fail: a manifest of another version does not pass.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**manifest, "version": 2}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**metadata, "source": {**metadata["source"], "lawful_basis": "public_task"}},
                            {**defs["metadata"], "$defs": defs})  # fmt: skip


def test_the_copy_says_what_the_archive_holds_and_what_is_not_portable(export: Export) -> None:
    visible = html.unescape(re.sub(r"<[^>]+>", " ", (export.folder / "index.html").read_text()))
    words = export.document["portability"]["words"]
    assert "GDPR Art. 20" in words and "1 face(s) in sources on another lawful basis" in words
    assert " ".join(words.split()) in " ".join(visible.split())
    assert "Taking your data elsewhere (portability)" in _pdf_text(export.folder / "access_copy.pdf")


def test_no_archive_when_no_face_is_in_a_consent_or_contract_source(export: Export) -> None:
    lethe = export.lethe
    (press,) = [f for f in export.document["faces"] if f["source"] == "press"]
    folder = export.folder.parent / "only-press"
    folder.mkdir()
    document = {**export.document, "faces": [press]}
    made = portability.write_archive(lethe.store, folder, document, {})
    assert made["file"] is None and made["portable_faces"] == 0 and made["not_portable_faces"] == 1
    assert "Art. 20(1)(a)" in made["words"] and not (folder / "portability.zip").exists()


def test_a_named_recipient_of_a_disclosure_is_in_the_pdf(export: Export, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(export.folder, folder)
    named = {
        "at": "2026-12-01T10:00:00+00:00",
        "date": "1 December 2026",
        "recipient": "Agence Éclair",
        "kind_words": "a press agency",
        "country_name": "Switzerland",
        "outside_eea": True,
        "what": "the photo with your face",
        "reason": "publication of the gala report",
    }
    document = {**export.document, "recipients": {**export.document["recipients"], "named": [named]}}
    assert access_pdf.write_pdf(folder, document)["error"] is None
    text = _pdf_text(folder / "access_copy.pdf")
    assert (
        "1 December 2026: to Agence Éclair (a press agency, Switzerland, outside the European Economic "
        "Area): the photo with your face. The reason given: publication of the gala report"
    ) in text
    assert "not exported or disclosed" not in text and "not exported or disclosed" in _pdf_text(
        export.folder / "access_copy.pdf"
    )
