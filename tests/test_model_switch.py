"""Templates know their model: a gallery made with dlib's ResNet (the old default, HOG + ResNet) and
opened with SFace (the new default) compares nothing across models; `lethe index reembed` moves it
from the photos; objections and restrictions made under the old model keep working after the switch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lethe.catalog.tables import FaceRow
from lethe.cli import app
from lethe.engine import Lethe
from lethe.model_ids import DLIB_RESNET_SHA256, SFACE_SHA256

from conftest import consent_source, make_settings, use_data_dir

pytestmark = pytest.mark.storage

PURPOSE = "model switch test"
OLD = {"embedder": "onnx", "detector": "hog"}
PEOPLE = ("barack_obama", "kit_harington", "rose_leslie", "joe_biden")


def _models(lethe: Lethe) -> dict[str, int]:
    with lethe.catalog.session() as session:
        shas = session.scalars(select(FaceRow.model_sha256)).all()
    return {sha: shas.count(sha) for sha in set(shas)}


@pytest.fixture
def old_gallery(tmp_path: Path, fixtures_dir: Path) -> tuple[Path, Path]:
    """A data folder ingested with dlib's ResNet, from a copy of four people's photos."""
    photos = tmp_path / "photos"
    for person in PEOPLE:
        shutil.copytree(fixtures_dir / "identities" / person, photos / person)
    data = tmp_path / "data"
    with Lethe(make_settings(data, **OLD)) as lethe:
        lethe.add_source(consent_source())
        report = lethe.ingest("events", photos)
        assert report.errors == [] and report.faces == 14
    return data, photos


def test_a_switched_embedder_compares_no_template_of_the_old_model(
    old_gallery: tuple[Path, Path], fixtures_dir: Path
) -> None:
    data, _ = old_gallery
    probe = (fixtures_dir / "identities" / "barack_obama" / "obama.jpg").read_bytes()
    with Lethe(make_settings(data, **OLD)) as lethe:
        assert _models(lethe) == {DLIB_RESNET_SHA256: 14}
        assert not lethe.search(probe, purpose=PURPOSE).no_match
    with Lethe(make_settings(data)) as lethe:  # SFace
        assert lethe.model_sha256 == SFACE_SHA256
        assert lethe.catalog.count_faces() == 14 and len(lethe.index) == 0  # kept, not comparable
        result = lethe.search(probe, threshold=-1.0, purpose=PURPOSE)
        assert result.no_match and len(result.probe_faces) == 1
        (entry,) = lethe.audit_entries(action="search", limit=1)
        assert entry.details["model_sha256"] == SFACE_SHA256
        assert entry.details["gallery_faces"] == 0 and entry.details["sources_searched"] == ["events"]
    with Lethe(make_settings(data, **OLD)) as lethe:  # switching back: the old gallery is whole again
        assert len(lethe.index) == 14
        assert not lethe.search(probe, purpose=PURPOSE).no_match


def test_reembed_moves_the_gallery_and_reports_photos_it_cannot_read(
    old_gallery: tuple[Path, Path], fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, photos = old_gallery
    gone = photos / "joe_biden" / "biden2.jpg"
    gone.unlink()
    (photos / "rose_leslie" / "img2.jpg").write_bytes(b"not the photo any more")
    use_data_dir(monkeypatch, data)
    result = CliRunner().invoke(app, ["index", "reembed", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["photos"] == 12 and report["faces"] + report["unmatched_faces"] == 12
    assert report["unmatched_faces"] == 0
    reasons = {Path(p["path"]).name: p["reason"] for p in report["unreadable"]}
    assert set(reasons) == {"biden2.jpg", "img2.jpg"}
    assert "sha256 differs" in reasons["img2.jpg"] and "No such file" in reasons["biden2.jpg"]
    assert report["remaining_faces"] == 2
    with Lethe(make_settings(data)) as lethe:
        assert _models(lethe) == {SFACE_SHA256: 12, DLIB_RESNET_SHA256: 2}
        assert len(lethe.index) == 12
        probe = (fixtures_dir / "identities" / "kit_harington" / "john1.jpeg").read_bytes()
        found = {Path(m.image).parent.name for m in lethe.search(probe, purpose=PURPOSE).matches}
        assert found == {"kit_harington"}
        (entry,) = lethe.audit_entries(action="index.reembed", limit=1)
        assert entry.details["faces"] == 12 and entry.details["unreadable"] == 2
    again = json.loads(CliRunner().invoke(app, ["index", "reembed", "--json"]).stdout)
    assert (again["photos"], again["faces"], again["remaining_faces"]) == (0, 0, 2)  # resumes, redoes nothing


def test_an_objection_made_under_the_old_model_keeps_the_person_out_after_the_switch(
    old_gallery: tuple[Path, Path], fixtures_dir: Path, tmp_path: Path
) -> None:
    data, _ = old_gallery
    kit = fixtures_dir / "identities" / "kit_harington"
    with Lethe(make_settings(data, **OLD)) as lethe:
        requests = lethe.requests
        opened = requests.open(
            kind="objection", photos=[(kit / "john1.jpeg").read_bytes()], contact="k@example.org"
        )
        requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
        assert requests.run(opened.id, actor="dpo", auto_only=True)["suppressed"] is True
        (entry,) = lethe.objections.list_active()
        assert entry["model"] == "dlib-resnet-v1"
    # Another source, so no erased-photo tombstone applies: only the objection can keep him out.
    again = tmp_path / "archive"
    shutil.copytree(kit, again / "kit")
    shutil.copy(fixtures_dir / "identities" / "tom_cruise" / "Tom_Cruise_avp_2014_4.jpg", again)
    with Lethe(make_settings(data)) as lethe:  # SFace: his new faces get a dlib template in memory only
        lethe.add_source(consent_source("archive"))
        report = lethe.ingest("archive", again)
        assert (report.images, report.faces, report.suppressed) == (4, 1, 3)
        assert _models(lethe).get(SFACE_SHA256) == 1  # Tom Cruise only


def test_a_restriction_made_under_the_old_model_still_hides_the_person_after_reembed(
    old_gallery: tuple[Path, Path], fixtures_dir: Path
) -> None:
    data, _ = old_gallery
    rose = fixtures_dir / "identities" / "rose_leslie"
    with Lethe(make_settings(data, **OLD)) as lethe:
        requests = lethe.requests
        opened = requests.open(
            kind="restriction", photos=[(rose / "img1.jpg").read_bytes()], contact="r@x.org"
        )
        requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
        assert requests.run(opened.id, actor="dpo", auto_only=True)["restricted"] is True
    with Lethe(make_settings(data)) as lethe:
        report = lethe.reembed(actor="dpo")
        assert report.faces == 14 and report.carried_suppression_templates == 2
        hidden = lethe.search((rose / "img2.jpg").read_bytes(), threshold=-1.0, top_k=50, purpose=PURPOSE)
        assert all("rose_leslie" not in m.image for m in hidden.matches)
        assert len(hidden.matches) == 12  # everyone else is still found
        entries = [e for e in lethe.objections.list_active() if e["request_id"] == opened.id]
        assert sorted(str(e["model"]) for e in entries) == ["dlib-resnet-v1", "sface-2021dec-int8bq"]
