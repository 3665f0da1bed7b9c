"""The access copy (issue 19 item 1; GDPR Art. 15(3), CJEU C-487/21): the whole photos held, with
every other person's face blurred and the requester's outlined, in plain language, with who was
shown the face (by role) and the requester's template. Real photos, the real pipeline and catalog."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter
from sqlalchemy import select

from lethe.catalog.tables import FaceRow, ImageRow
from lethe.engine import Lethe
from lethe.imaging import decode_image
from lethe.privacy.access_words import ART9_WORDS, BASIS_WORDS, ROLE_WORDS, long_date
from lethe.privacy.sources import ART6_BASES, ART9_CONDITIONS
from lethe.types import Box
from lethe.users import Users

from conftest import consent_source, make_settings

pytestmark = pytest.mark.storage

OPERATOR = "olga-ops"


@dataclass
class Exported:
    lethe: Lethe
    folder: Path
    photos: Path
    document: dict[str, Any]
    page: str
    rose_face: int  # Rose Leslie's face in the group photo: the other person
    rose_box: Box
    fixtures_dir: Path


def _pixels(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), max_pixels=50_000_000).pixels


def _access(lethe: Lethe, probe: Path) -> Path:
    requests = lethe.requests
    request_id = requests.open(
        kind="access", photos=[probe.read_bytes()], contact="kit@example.org", actor="op"
    ).id
    requests.verify(request_id, actor="dpo", method="id_document", attested=True)
    assert requests.run(request_id, actor="dpo", auto_only=True)["state"] == "answered"
    return requests.export_path(request_id)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Iterator[Exported]:
    """Kit Harington's access copy: a folder with the group photo of Kit and Rose Leslie, one more
    photo of Kit and one of Rose; an operator's search returned Kit's faces first."""
    root = tmp_path_factory.mktemp("access-copy")
    photos = root / "photos"
    photos.mkdir()
    for name in (
        "group_labelled/kit_with_rose.jpg",
        "identities/kit_harington/john1.jpeg",
        "identities/rose_leslie/img1.jpg",
    ):
        shutil.copy(fixtures_dir / name, photos / Path(name).name)
    with Lethe(make_settings(root / "data")) as lethe:
        lethe.add_source(consent_source())
        assert lethe.ingest("events", photos).errors == []
        Users(lethe.catalog).create(OPERATOR, ["operator"], actor="test", password="olga-password-123")
        probe = (fixtures_dir / "identities/kit_harington/john2.jpeg").read_bytes()
        found = lethe.search(probe, purpose="find Kit at the gala", actor=f"user:{OPERATOR}").matches
        assert len(found) == 2  # Kit in the group photo and in john1
        folder = _access(lethe, fixtures_dir / "identities/kit_harington/johnsnow_test1.jpg")
        document = json.loads((folder / "export.json").read_text())
        mine = {item["face_id"] for item in document["faces"]}
        with lethe.catalog.session() as session:
            group = str((photos / "kit_with_rose.jpg").resolve())
            rows = session.scalars(select(FaceRow).join(ImageRow).where(ImageRow.uri == group)).all()
        (rose,) = [r for r in rows if r.id not in mine]
        yield Exported(
            lethe,
            folder,
            photos,
            document,
            (folder / "index.html").read_text(),
            rose.id,
            Box(rose.box_left, rose.box_top, rose.box_right, rose.box_bottom),
            fixtures_dir,
        )


def _group(exported: Exported) -> dict[str, Any]:
    (item,) = [i for i in exported.document["faces"] if i["image"].endswith("kit_with_rose.jpg")]
    return item


def _detail(pixels: np.ndarray, box: Box) -> float:
    """High-frequency energy of a box: the variance of its grey levels' edges."""
    grey = Image.fromarray(np.ascontiguousarray(pixels[box.top : box.bottom, box.left : box.right])).convert(
        "L"
    )
    return float(np.asarray(grey.filter(ImageFilter.FIND_EDGES), dtype=np.float64)[1:-1, 1:-1].var())


def test_the_group_photo_keeps_the_requesters_face_and_blurs_the_other_person(exported: Exported) -> None:
    item = _group(exported)
    assert len(exported.document["faces"]) == 2 and len(exported.document["photos"]) == 2
    assert item["photo"] == "photos/photo-1.jpg" or item["photo"] == "photos/photo-2.jpg"
    original = _pixels(exported.photos / "kit_with_rose.jpg")
    copy = _pixels(exported.folder / item["photo"])
    assert copy.shape == original.shape  # the fixture is under the size cap: no scaling
    kit = Box(*item["box"])
    inner = Box(kit.left + 2, kit.top + 2, kit.right - 2, kit.bottom - 2)
    region = (slice(inner.top, inner.bottom), slice(inner.left, inner.right))
    assert np.abs(copy[region].astype(int) - original[region].astype(int)).mean() < 4  # JPEG noise only
    # The outline: orange just outside Kit's box.
    assert tuple(copy[kit.top + kit.height // 2, kit.left - 1]) != tuple(
        original[kit.top + kit.height // 2, kit.left - 1]
    )
    # Rose's face: its detail gone, and no face of the copy matches her at the match threshold.
    rose = exported.rose_box
    assert _detail(copy, rose) < 0.1 * _detail(original, rose)
    lethe = exported.lethe
    rose_template = lethe.catalog.face_templates([exported.rose_face])[exported.rose_face]
    kit_template = lethe.catalog.face_templates([item["face_id"]])[item["face_id"]]
    again = lethe.pipeline.faces(copy)
    assert max(float(f.embedding @ kit_template) for f in again) >= lethe.settings.match_threshold
    assert all(float(f.embedding @ rose_template) < lethe.settings.match_threshold for f in again)
    # Her face did match her in the original (the check above can fail).
    assert max(float(f.embedding @ rose_template) for f in lethe.pipeline.faces(original)) > 0.9
    photo = next(p for p in exported.document["photos"] if p["file"] == item["photo"])
    assert photo["others_blurred"] == 1 and photo["your_faces"] == 1 and photo["note"] is None
    # No metadata carried over: a plain JPEG.
    with Image.open(exported.folder / item["photo"]) as im:
        assert im.format == "JPEG" and not im.getexif() and "comment" not in im.info


def test_nothing_of_the_other_person_is_in_the_export(exported: Exported) -> None:
    text = (exported.folder / "export.json").read_text()
    ids = {i["face_id"] for i in exported.document["faces"]}
    assert exported.rose_face not in ids
    assert not (exported.folder / "crops" / f"{exported.rose_face}.jpg").exists()
    files = sorted(
        p.relative_to(exported.folder).as_posix() for p in exported.folder.rglob("*") if p.is_file()
    )
    assert files == sorted(
        [
            "export.json",
            "export.json.sig.json",  # its signature, and how to check it (docs/privacy.md)
            "how-to-check-the-signature.txt",
            "index.html",
            "access_copy.pdf",  # the same copy as a PDF
            "portability.zip",  # the consent source's photos (Art. 20)
            *(f"crops/{i}.jpg" for i in ids),
            "photos/photo-1.jpg",
            "photos/photo-2.jpg",
        ]
    )
    rose_only = str((exported.photos / "img1.jpg").resolve())
    assert rose_only not in text and rose_only not in exported.page
    # Rose's template is nowhere; Kit's templates are there, labelled, as the catalog holds them.
    rose = exported.lethe.catalog.face_templates([exported.rose_face])[exported.rose_face]
    held = exported.lethe.catalog.face_templates(sorted(ids))
    for item in exported.document["faces"]:
        values = np.asarray(item["template"]["values"], dtype=np.float32)
        assert (
            item["template"]["length"] == len(values) == len(rose) and "template" in item["template"]["what"]
        )
        np.testing.assert_array_equal(values, held[item["face_id"]])
        assert float(values @ rose) < 0.5
    assert OPERATOR not in text and OPERATOR not in exported.page


def test_the_page_says_it_in_plain_words(exported: Exported) -> None:
    page = exported.page
    visible = re.sub(r"<[^>]+>", " ", page)
    assert BASIS_WORDS["consent"] in visible and ART9_WORDS["explicit_consent"] in visible
    assert "explicit_consent" not in visible and not re.search(r"\d{4}-\d\d-\d\dT\d\d:", visible)
    today = long_date(datetime.now(UTC))
    assert today is not None and re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}", today) and today in visible
    assert (
        "UTC" in visible
        and "Commission nationale de l'informatique et des libertés (CNIL)" in page.replace("&#39;", "'")
    )
    for right in ("erase", "object", "restricted", "supervisory authority", "court"):
        assert right in visible
    assert "match threshold" in visible and "false positive identification rate" in visible
    assert 'src="photos/photo-1.jpg"' in page and 'src="photos/photo-2.jpg"' in page
    item = _group(exported)
    assert item["kept_until"] in visible and item["kept_until"] == long_date(
        datetime.fromisoformat(item["retention_until"])
    )


def test_recipients_are_counted_by_role(exported: Exported) -> None:
    shown = exported.document["recipients"]["shown"]
    searches = {(r["role"], r["action"]): r["times"] for r in shown}
    # The operator's search returned both of Kit's faces: one search, counted once (the request's
    # own search is audited once the export is written: a later copy lists it).
    assert searches == {("operator", "search"): 1}
    assert ROLE_WORDS["operator"] in exported.page
    for item in exported.document["faces"]:
        assert [s["operator"] for s in item["searches"]] == ["operator"]
        assert item["searches"][0]["purpose"] == "find Kit at the gala"
    assert exported.document["recipients"]["disclosures"] == []


def test_a_photo_changed_at_its_source_gives_the_crop_and_says_so(exported: Exported) -> None:
    changed = exported.photos / "john1.jpeg"
    kept = changed.read_bytes()
    try:
        changed.write_bytes(kept + b"\0")  # the file at the path is no longer the one ingested
        folder = _access(exported.lethe, exported.fixtures_dir / "identities/kit_harington/john2.jpeg")
    finally:
        changed.write_bytes(kept)
    document = json.loads((folder / "export.json").read_text())
    (item,) = [i for i in document["faces"] if i["image"].endswith("john1.jpeg")]
    assert item["photo"] is None and (folder / item["crop"]).is_file()
    (photo,) = [p for p in document["photos"] if p["file"] is None]
    # The first copy's search for this request is listed now, by role.
    roles = {(r["role"], r["action"]): r["times"] for r in document["recipients"]["shown"]}
    assert roles == {("operator", "search"): 1, ("request_staff", "search"): 1}
    assert "no longer at the place it was collected from" in photo["note"]
    assert len(list((folder / "photos").iterdir())) == 1  # only the group photo


def test_every_basis_and_condition_has_words() -> None:
    assert set(BASIS_WORDS) == set(ART6_BASES) and set(ART9_WORDS) == set(ART9_CONDITIONS)
    assert all("GDPR Art. 6(1)" in w for w in BASIS_WORDS.values())
    assert all("GDPR Art. 9(2)" in w for w in ART9_WORDS.values())
