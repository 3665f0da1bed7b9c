"""What a similarity threshold implies, as measured: FPIR and FNIR on LFW 1:N identification; and
each embedder's calibrated default thresholds.

``calibration-<model>.json`` beside this module is written by ``bench/identify_lfw.py --out`` (never
by hand) for each embedder's model (``sface``, ``dlib``), and ``calibration-<model>-flip.json``
likewise with ``LETHE_EMBED_FLIP=1`` (the templates, hence the scores, differ): for each measured
gallery size (LFW anchors plus
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

from lethe.errors import ConfigError, InputError

HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Thresholds:
    match_threshold: float
    erasure_auto_threshold: float
    erasure_review_threshold: float


#: The defaults each embedder's model gets, chosen from the measurements in docs/benchmarks.md
#: ("Thresholds"): the match threshold at FPIR <= 0.01 on the LFW 1:N gallery; the automatic erasure
#: band where erasure by one photo made no wrongful erasure on all of LFW; the review band where
#: review reaches >= 99.7% of a person's photos.
DEFAULT_THRESHOLDS = {
    "dlib": Thresholds(match_threshold=0.95, erasure_auto_threshold=0.97, erasure_review_threshold=0.90),
    "sface": Thresholds(match_threshold=0.525, erasure_auto_threshold=0.625, erasure_review_threshold=0.35),
}


def model_family(embedder: str) -> str:
    """``sface`` or ``dlib`` (both dlib runtimes make the same templates) for an embedder setting."""
    return "sface" if embedder == "sface" else "dlib"


def model_family_of(model_sha256: str) -> str:
    """``sface`` or ``dlib`` for a template's model (lethe.model_ids)."""
    from lethe.model_ids import SFACE_SHA256

    return "sface" if model_sha256 == SFACE_SHA256 else "dlib"


def default_thresholds(embedder: str) -> Thresholds:
    return DEFAULT_THRESHOLDS[model_family(embedder)]


def calibration_file(embedder: str, embed_flip: bool = False) -> Path:
    """The measurement that matches how templates are made (``Settings.embedder``, ``embed_flip``)."""
    return HERE / f"calibration-{model_family(embedder)}{'-flip' if embed_flip else ''}.json"


CALIBRATION_FILES = sorted(HERE.glob("calibration-*.json"))


#: The normal quantile of a two-sided 95% confidence interval.
Z95 = 1.959963984540054


def wilson(errors: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``errors`` in ``n`` trials; None for no trial. Used by the
    calibration tables and the demographic report alike."""
    if n <= 0:
        return None
    if not 0 <= errors <= n:
        raise InputError(f"{errors} errors in {n} trials")
    p = errors / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 and at n the bounds are 0 and 1 exactly (the arithmetic leaves a rounding error).
    low = 0.0 if errors == 0 else max(0.0, centre - half)
    high = 1.0 if errors == n else min(1.0, centre + half)
    return low, high


def _count(rate: float, n: int) -> int | None:
    """The whole number of trials behind ``rate`` over ``n``, or None when no whole number gives it
    (then the rate was not a plain share of these trials)."""
    errors = round(rate * n)
    return errors if abs(errors - rate * n) < 1e-6 else None


def _rate(rate: float, n: int) -> dict[str, object]:
    errors = _count(rate, n)
    interval = wilson(errors, n) if errors is not None else None
    return {
        "rate": round(rate, 6),
        "errors": errors,
        "trials": n,
        "ci95": [round(interval[0], 6), round(interval[1], 6)] if interval else None,
    }


def confidence_table(path: Path) -> dict[str, object]:
    """A calibration file with a 95% confidence interval (Wilson) beside every rate: FPIR over the
    non-mated probes, FNIR over the mated probes (those without a face count as misses). The
    files store rates; the counts behind them are recovered as rate x probes, and a rate that no
    whole count gives is shown without an interval."""
    try:
        raw = json.loads(path.read_text())
        non_mated, mated = int(raw["non_mated_probes"]), int(raw["mated_probes"])
        galleries = [
            {
                "gallery_faces": int(row["gallery"]),
                "distractors": int(row["distractors"]),
                "rank1": round(float(row["rank1"]), 6),
                "by_threshold": [
                    {
                        "threshold": float(t),
                        "fpir": _rate(float(r[0]), non_mated),
                        "fnir": _rate(float(r[1]), mated),
                    }
                    for t, r in sorted(row["by_threshold"].items(), key=lambda item: float(item[0]))
                ],
            }
            for row in raw["results"]
        ]
        return {
            "file": path.name,
            "measured_on": str(raw["date"]),
            "command": str(raw["command"]),
            "machine": str(raw["machine"]),
            "enrolled_people": int(raw["enrolled"]),
            "mated_probes": mated,
            "non_mated_probes": non_mated,
            "mated_without_face": int(raw["mated_without_face"]),
            "interval": "Wilson score interval, 95%, over independent probes",
            "galleries": galleries,
        }
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"cannot read the threshold calibration {path}: {exc}") from exc


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
def table(path: Path) -> dict[int, dict[float, tuple[float, float]]]:
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


def implied(threshold: float, gallery_faces: int, path: Path) -> Implied | None:
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


#: The plain-language bands of a match's score, strongest first: (key, words, the highest FPIR
#: measured at that score that still earns the band). A score's band is the first whose edge its
#: measured FPIR does not exceed; every other score above the threshold is "possible".
BAND_EDGES = (
    ("very_likely", "very likely the same person", 0.001),
    ("likely", "likely the same person", 0.01),
)
POSSIBLE = ("possible", "possible — check carefully")


@dataclass(frozen=True, slots=True)
class Likelihood:
    """How strong a match's score is, in words, with the measurement behind the words."""

    key: str
    words: str
    #: The measurement used (``implied`` at the score), None when the score is below every
    #: measured threshold.
    measured: Implied | None

    def as_dict(self) -> dict[str, object]:
        return {
            "band": self.key,
            "words": self.words,
            "fpir": round(self.measured.fpir, 4) if self.measured else None,
            "fnir": round(self.measured.fnir, 4) if self.measured else None,
            "measured_threshold": self.measured.threshold if self.measured else None,
            "measured_gallery_faces": self.measured.gallery_faces if self.measured else None,
        }


def likelihood(score: float, gallery_faces: int, path: Path) -> Likelihood:
    """The plain-language band of ``score`` for a gallery of ``gallery_faces`` faces: the FPIR
    measured on LFW at the score (the share of searches for someone absent that returned a match
    this strong, :func:`implied`) against :data:`BAND_EDGES`. The calibrated match threshold sits
    at FPIR <= 1% on the calibration's gallery, so a score at the threshold is "likely" there and
    only "possible" on a much larger gallery, where false matches that strong are more frequent."""
    measured = implied(score, gallery_faces, path)
    if measured is not None:
        for key, words, edge in BAND_EDGES:
            if measured.fpir <= edge:
                return Likelihood(key, words, measured)
    return Likelihood(*POSSIBLE, measured)
