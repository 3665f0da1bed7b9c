"""The plain-language band of a match's score (lethe.calibration.likelihood): words from the FPIR
measured at the score, on the real calibration files and on a small measurement written here."""

from __future__ import annotations

import json
from pathlib import Path

from lethe.calibration import calibration_file, likelihood


def _measurement(path: Path) -> Path:
    """A calibration file of one gallery size whose FPIR falls through both band edges."""
    rows = {"0.500": [0.05, 0.01], "0.600": [0.008, 0.05], "0.700": [0.0005, 0.2]}
    path.write_text(json.dumps({"results": [{"gallery": 1000, "by_threshold": rows}]}))
    return path


def test_each_band_edge_follows_the_fpir_measured_at_the_score(tmp_path: Path) -> None:
    path = _measurement(tmp_path / "calibration-test.json")
    assert likelihood(0.45, 1000, path).key == "possible"  # below every measured score: no figures
    assert likelihood(0.45, 1000, path).measured is None
    assert likelihood(0.55, 1000, path).key == "possible"  # 5% of absent people matched this strongly
    likely = likelihood(0.65, 1000, path)
    assert (likely.key, likely.words) == ("likely", "likely the same person")
    assert likely.as_dict() == {
        "band": "likely",
        "words": "likely the same person",
        "fpir": 0.008,
        "fnir": 0.05,
        "measured_threshold": 0.6,
        "measured_gallery_faces": 1000,
    }
    very = likelihood(0.93, 1000, path)
    assert (very.key, very.words, very.as_dict()["fpir"]) == (
        "very_likely",
        "very likely the same person",
        0.0005,
    )


def test_the_calibrated_threshold_is_likely_on_a_small_gallery_and_only_possible_on_a_huge_one() -> None:
    sface = calibration_file("sface")
    assert likelihood(0.525, 1_700, sface).key == "likely"
    assert likelihood(0.525, 1_000_000, sface).key == "possible"
    assert likelihood(0.70, 1_700, sface).key == "very_likely"
    assert likelihood(0.30, 1_700, sface).words == "possible — check carefully"
