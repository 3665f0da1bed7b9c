"""What a similarity threshold implies, as measured: FPIR and FNIR on LFW 1:N identification.

``calibration.json`` beside this module is written by ``bench/identify_lfw.py --out`` (never by
hand), and ``calibration-flip.json`` likewise with ``LETHE_EMBED_FLIP=1`` and the flipped templates'
cache (the templates, hence the scores, differ): for each measured gallery size (LFW anchors plus
face-like distractors) and each measured threshold, the false positive identification rate
(share of searches for a person who is *not* in the gallery that return a match) and the false
negative identification rate (share of searches for an enrolled person whose best hit is not that
person at or above the threshold).

``implied`` answers with the nearest measurement, saying which one it used: the measured gallery
size closest to the real one (on a log scale) and the highest measured threshold not above the one
asked about, so the FPIR it reports is never an underestimate for that gallery size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lethe.errors import ConfigError

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
FLIP_CALIBRATION_FILE = Path(__file__).with_name("calibration-flip.json")


def calibration_file(embed_flip: bool) -> Path:
    """The measurement that matches how templates are made (``Settings.embed_flip``)."""
    return FLIP_CALIBRATION_FILE if embed_flip else CALIBRATION_FILE


@dataclass(frozen=True, slots=True)
class Implied:
    threshold: float  # the measured threshold used
    gallery_faces: int  # the measured gallery size used
    fpir: float
    fnir: float

    def as_dict(self) -> dict[str, object]:
        return {
            "measured_threshold": self.threshold,
            "measured_gallery_faces": self.gallery_faces,
            "fpir": round(self.fpir, 4),
            "fnir": round(self.fnir, 4),
            "on": "LFW 1:N identification (bench/identify_lfw.py)",
        }


@cache
def table(path: Path = CALIBRATION_FILE) -> dict[int, dict[float, tuple[float, float]]]:
    """{gallery size: {threshold: (fpir, fnir)}} from the measurement file."""
    try:
        raw = json.loads(path.read_text())
        return {
            int(row["gallery"]): {
                float(t): (float(r[0]), float(r[1])) for t, r in row["by_threshold"].items()
            }
            for row in raw["results"]
        }
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"cannot read the threshold calibration {path}: {exc}") from exc


def implied(threshold: float, gallery_faces: int, path: Path = CALIBRATION_FILE) -> Implied | None:
    """The measured FPIR/FNIR nearest to ``threshold`` at ``gallery_faces``; None below every
    measured threshold."""
    measured = table(path)
    size = min(measured, key=lambda n: abs(math.log(max(n, 1)) - math.log(max(gallery_faces, 1))))
    below = [t for t in measured[size] if t <= threshold + 1e-9]
    if not below:
        return None
    used = max(below)
    fpir, fnir = measured[size][used]
    return Implied(threshold=used, gallery_faces=size, fpir=fpir, fnir=fnir)
