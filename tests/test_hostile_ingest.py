"""Hostile files and manifests through the real engine: every file gets a clear reason or a correct
result, the run goes on, nothing else is lost. The whole corpus (>= 1,000 files) is
``bench/hostile_ingest.py``; this is a slice of every category (see tests/hostile_files.py)."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lethe.config import Settings
from lethe.engine import Lethe
from lethe.errors import LetheError
from lethe.imaging import decode_image
from lethe.ingest.driver import MAX_LISTED_ERRORS, _read
from lethe.ingest.inputs import MAX_LINE_CHARS, InputItem, InputProblem, iter_inputs
from lethe.types import Detection

import hostile_files
from conftest import _test_data, consent_source, make_settings

pytestmark = pytest.mark.storage


def _face() -> bytes | None:
    """A real one-face photo when the shared test data is there (for the face variants)."""
    path = _test_data() / "fixtures" / "identities" / "joe_biden" / "biden.jpg"
    return path.read_bytes() if path.is_file() else None


def test_every_category_of_the_corpus_is_generated_and_the_same_each_time() -> None:
    first = hostile_files.corpus(1)
    assert {f.category for f in first} == set(hostile_files.CATEGORIES) - {"face"}
    assert len({f.name for f in first}) == len(first)
    again = hostile_files.small_corpus()
    assert {f.category for f in again} == set(hostile_files.CATEGORIES) - {"face"}
    by_name = {f.name: f.data for f in first}
    assert all(by_name[f.name] == f.data for f in again)


def test_decoding_each_hostile_file_gives_the_right_image_or_a_clear_error() -> None:
    files = hostile_files.corpus(1)
    outcome: dict[str, dict[str, object]] = {}
    for item in files:
        try:
            image = decode_image(item.data, max_pixels=50_000_000)
        except LetheError as exc:  # anything else escaping is the failure this test looks for
            outcome[item.name] = {"error": str(exc)}
        else:
            outcome[item.name] = {"width": image.width, "height": image.height}
    assert hostile_files.check(files, outcome) == []
    kinds = Counter("error" in o for o in outcome.values())
    assert kinds[True] >= 150 and kinds[False] >= 150  # both sides are exercised


@pytest.mark.usefixtures("default_models")
def test_ingest_of_hostile_files_reports_each_one_and_keeps_the_good_ones(tmp_path: Path) -> None:
    files = hostile_files.small_corpus(face=_face())
    folder = hostile_files.write(files, tmp_path / "collection")
    os.mkfifo(folder / "zz-named-pipe.jpg")  # would block a plain read() forever
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "private.jpg").write_bytes(files[0].data)
    (folder / "zz-door").symlink_to(tmp_path / "elsewhere")  # a folder link out of the collection
    with Lethe(make_settings(tmp_path / "data")) as engine:
        engine.add_source(consent_source())
        report = engine.ingest("events", folder)
        outcome = hostile_files.ingest_outcome(engine, report.errors, files)
        assert len(engine.index) == engine.catalog.count_faces() == report.faces
    assert hostile_files.check(files, outcome) == []
    assert outcome["zz-named-pipe.jpg"] == {"error": "not a regular file (a device, pipe or socket)"}
    assert outcome["zz-door"] == {"error": "symbolic link to a folder outside the collection folder"}
    assert "private.jpg" not in outcome
    assert report.images + len(report.errors) + report.skipped == len(files) + 2
    assert report.images == sum(f.expect != "error" for f in files) - sum(
        "error" in outcome[f.name] for f in files if f.expect == "either"
    )
    assert not any("internal error" in e["reason"] for e in report.errors)


def test_a_photo_the_detector_fails_on_is_reported_and_the_ingest_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything a model library raises on one photo (OpenCV once raised on a 1x1 photo) is that
    photo's error, in the driver's own process as in a worker pool, and the other photos go in."""
    from lethe.detection.dlib_hog import DlibHogDetector

    real = DlibHogDetector.detect

    def fails_on_odd_widths(self: DlibHogDetector, image: np.ndarray) -> list[Detection]:
        if image.shape[1] % 2:
            raise RuntimeError("the model library failed")
        return real(self, image)

    monkeypatch.setattr(DlibHogDetector, "detect", fails_on_odd_widths)
    folder = tmp_path / "collection"
    folder.mkdir()
    for name, width in (("a.png", 40), ("b.png", 41), ("c.png", 42)):
        (folder / name).write_bytes(hostile_files.encode(hostile_files.scene(width, 30, 1), "PNG"))
    with Lethe(make_settings(tmp_path / "data", detector="hog", embedder="dlib")) as engine:
        engine.add_source(consent_source())
        report = engine.ingest("events", folder)
    assert report.images == 2
    assert [(Path(e["path"]).name, e["reason"]) for e in report.errors] == [
        ("b.png", "internal error: RuntimeError")
    ]


@pytest.mark.usefixtures("default_models")
def test_a_manifest_with_hostile_rows_refuses_them_and_ingests_the_rest(tmp_path: Path) -> None:
    good = hostile_files.encode(hostile_files.scene(40, 30, 1), "PNG")
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "ok.png").write_bytes(good)
    (tmp_path / "secret.png").write_bytes(good + b"secret")
    (root / "door").symlink_to(tmp_path)
    rows = [
        {"path": "photos/ok.png"},
        {"path": "../secret.png"},
        {"path": str(tmp_path / "secret.png")},
        {"path": "door/secret.png"},
        {"path": "photos/../../secret.png"},
        {"path": "http://example.org/a.png"},
        {"path": "file:///etc/passwd"},
        {"path": "//server/share/a.png"},
        {"path": "photos/\u0000.png"},
        {"path": "/dev/zero"},
        {"path": "photos"},
    ]
    manifest = root / "list.jsonl"
    lines = [json.dumps(r) for r in rows] + ["x" * (MAX_LINE_CHARS + 10), "\ufeff{not json"]
    manifest.write_text("\n".join(lines) + "\n")
    with Lethe(make_settings(tmp_path / "data")) as engine:
        engine.add_source(consent_source())
        report = engine.ingest("events", manifest)
    assert report.images == 1 and report.skipped == 0
    reasons = {e["path"]: e["reason"] for e in report.errors}
    assert len(reasons) == len(rows) + 1
    for line in range(2, 6):
        assert "leaves the manifest's folder" in reasons[f"list.jsonl:{line}"]
    for line in (6, 7, 8):
        assert "URL" in reasons[f"list.jsonl:{line}"]
    assert "cannot be resolved" in reasons["list.jsonl:9"]
    assert "leaves" in reasons["list.jsonl:10"]
    assert reasons[str(root / "photos")] == "is a folder, not a file"
    assert reasons["list.jsonl:12"] == f"line is longer than {MAX_LINE_CHARS} characters"
    assert reasons["list.jsonl:13"] == "not valid JSON"


def test_one_huge_manifest_line_is_read_in_bounded_memory(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    with manifest.open("w") as handle:  # 40 MB on one line, then one good row
        for _ in range(40):
            handle.write("a" * 1_000_000)
        handle.write('\n{"path": "x.jpg"}\n')
    tracemalloc.start()
    try:
        results = list(iter_inputs(manifest))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(results[0], InputProblem) and "longer than" in results[0].reason
    assert isinstance(results[1], InputItem) and results[1].path.name == "x.jpg"
    assert peak < 8 * MAX_LINE_CHARS * 4  # a few line buffers, not the 40 MB line


@pytest.mark.usefixtures("default_models")
def test_a_manifest_of_many_bad_rows_lists_the_first_ones_and_counts_the_rest(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    extra = 7
    manifest.write_text("path\n" + "https://example.org/a.jpg\n" * (MAX_LISTED_ERRORS + extra))
    with Lethe(make_settings(tmp_path / "data")) as engine:
        engine.add_source(consent_source())
        report = engine.ingest("events", manifest)
    assert len(report.errors) == MAX_LISTED_ERRORS and report.errors_omitted == extra
    assert report.as_dict()["errors_omitted"] == extra and report.images == 0


@pytest.mark.parametrize("swap", ["link-out", "file", "none"])
def test_a_folder_swapped_for_a_link_after_the_walk_is_not_followed(tmp_path: Path, swap: str) -> None:
    """The walk saw ``sub/`` as a folder inside the collection; if ``sub`` is then replaced by a
    link to a folder elsewhere (or by a file), reading ``sub/a.jpg`` must not leave the collection."""
    root, outside = tmp_path / "collection", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "a.jpg").write_bytes(b"inside")
    (outside / "a.jpg").write_bytes(b"outside: not the operator's collection")
    items = [i for i in iter_inputs(root) if isinstance(i, InputItem)]
    assert [i.path.name for i in items] == ["a.jpg"]
    if swap != "none":
        (root / "sub").rename(tmp_path / "moved")
        if swap == "link-out":
            (root / "sub").symlink_to(outside, target_is_directory=True)
        else:
            (root / "sub").write_bytes(b"a file now")
    read = _read(items[0], Settings(data_dir=tmp_path / "data"))
    if swap == "none":
        assert read == (b"inside", hashlib.sha256(b"inside").hexdigest())
    else:
        assert read == "cannot read file: a folder on its path became a symbolic link or a file"
