"""The shipped threshold calibration (written by bench/identify_lfw.py on LFW) and its lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lethe.calibration import CALIBRATION_FILES, calibration_file, implied, table
from lethe.config import Settings
from lethe.errors import ConfigError

#: (embedder setting, embed_flip) of every shipped measurement.
MEASURED = [("sface", False), ("sface", True), ("dlib", False), ("dlib", True)]
MEASUREMENTS = [calibration_file(embedder, flip) for embedder, flip in MEASURED]
IDS = [f"{e}{'-flip' if f else ''}" for e, f in MEASURED]


def test_every_shipped_measurement_is_named_and_every_embedder_has_one() -> None:
    assert sorted(MEASUREMENTS) == CALIBRATION_FILES
    for embedder in ("sface", "onnx", "dlib"):
        assert calibration_file(embedder).is_file()


@pytest.mark.parametrize(("embedder", "flip"), MEASURED, ids=IDS)
def test_every_default_threshold_was_measured(embedder: str, flip: bool) -> None:
    defaults = Settings(embedder=embedder)  # type: ignore[arg-type]
    for gallery, rows in table(calibration_file(embedder, flip)).items():
        for threshold in (
            defaults.match_threshold,
            defaults.erasure_auto_threshold,
            defaults.erasure_review_threshold,
        ):
            assert any(abs(t - threshold) < 1e-9 for t in rows), (gallery, threshold)


@pytest.mark.parametrize("path", MEASUREMENTS, ids=IDS)
def test_measured_rates_behave_like_rates(path: Path) -> None:
    for rows in table(path).values():
        ordered = sorted(rows.items())
        fpirs = [fpir for _, (fpir, _) in ordered]
        fnirs = [fnir for _, (_, fnir) in ordered]
        assert all(0.0 <= x <= 1.0 for x in fpirs + fnirs)
        assert fpirs == sorted(fpirs, reverse=True)  # a higher threshold never adds false matches
        assert fnirs == sorted(fnirs)  # ... and never finds more true ones


def test_lookup_uses_the_nearest_gallery_and_the_threshold_at_or_below() -> None:
    path = calibration_file("dlib")
    sizes = sorted(table(path))
    small, large = sizes[0], sizes[-1]
    near_small = implied(0.952, small + 10, path)
    assert near_small is not None
    assert near_small.gallery_faces == small and near_small.threshold == pytest.approx(0.95)
    assert implied(0.95, large * 3, path).gallery_faces == large  # type: ignore[union-attr]
    assert implied(-0.5, small, path) is None


def test_a_broken_calibration_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "calibration.json"
    broken.write_text(json.dumps({"results": [{"gallery": 10}]}))
    with pytest.raises(ConfigError, match="calibration"):
        implied(0.95, 10, broken)
    for path in MEASUREMENTS:  # written by the benchmark, not by hand
        assert json.loads(path.read_text())["command"].count("identify_lfw.py") == 1
