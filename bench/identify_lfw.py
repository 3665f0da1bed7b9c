"""Identification (1:N) on LFW, reported the way NIST FRTE 1:N does: rank-1, FNIR at fixed FPIR.

Usage: nice .venv/bin/python bench/identify_lfw.py [--data ../shared/data] [--distractors 0 100000 1000000]
[--thresholds 0.90 0.93 0.95 0.97] [--out results.json]
(``LETHE_EMBEDDER`` chooses the model; write ``src/lethe/calibration-<model>.json`` with ``--out``)

Gallery: one photo per person with two or more photos (the first, sorted) enrolled as the person's
anchor; every other photo of those people is a mated probe. Non-mated probes are the people with a
single photo, who are not enrolled. Faces come from Lethe's own pipeline (the central face of each
photo; bench/lfw_embeddings.py caches them). A photo without a detected face is a miss (a mated probe
that cannot be found, or a non-mated probe that cannot false-alarm). Larger galleries add
face-like distractors (a Gaussian fitted to the real templates), which can only cause false alarms
and displace true anchors. Search is exact, so the figures are about the embedding, not the index.

The calibration table gives FPIR / FNIR at each of ``--thresholds`` (by default Lethe's own defaults:
the search match threshold and the erasure automatic and review thresholds, plus neighbours).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lfw_embeddings import DEFAULT_CACHE, LfwFaces, face_like_distractors, load_lfw_faces  # noqa: E402
from machine import describe, machine  # noqa: E402

from lethe.calibration import model_family  # noqa: E402
from lethe.config import Settings  # noqa: E402

DEFAULTS = Settings()
DEFAULT_THRESHOLD = DEFAULTS.match_threshold
#: Thresholds measured besides the defaults, per model (their score scales differ).
GRID = {
    "dlib": [0.93, 0.94, 0.95, 0.955, 0.96],
    "sface": [round(0.25 + 0.025 * i, 3) for i in range(19)],
}


def top1(gallery: np.ndarray, probes: np.ndarray, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Index and score of the best gallery entry for every probe (exact inner product)."""
    best = np.empty(len(probes), dtype=np.int64)
    score = np.empty(len(probes), dtype=np.float32)
    for start in range(0, len(probes), batch):
        sims = probes[start : start + batch] @ gallery.T
        best[start : start + batch] = sims.argmax(1)
        score[start : start + batch] = sims.max(1)
    return best, score


def evaluate(
    mated_ok: np.ndarray,
    mated_score: np.ndarray,
    non_score: np.ndarray,
    thresholds: list[float],
    default: float,
) -> dict[str, object]:
    """mated_ok: rank-1 is the right person (False also when no face); scores -inf when no face."""
    out: dict[str, object] = {"rank1": float(mated_ok.mean())}
    ordered = np.sort(non_score)[::-1]
    for fpir in (0.01, 0.003):
        threshold = float(ordered[max(0, int(np.floor(fpir * len(ordered))) - 1)]) + 1e-7
        out[f"threshold_fpir_{fpir}"] = threshold
        out[f"fnir_at_fpir_{fpir}"] = float(1 - (mated_ok & (mated_score >= threshold)).mean())
    out["fpir_at_default"] = float((non_score >= default).mean())
    out["fnir_at_default"] = float(1 - (mated_ok & (mated_score >= default)).mean())
    out["by_threshold"] = {
        f"{t:.3f}": [float((non_score >= t).mean()), float(1 - (mated_ok & (mated_score >= t)).mean())]
        for t in thresholds
    }
    return out


def identify(
    faces: LfwFaces, distractors: list[int], thresholds: list[float], default: float
) -> dict[str, Any]:
    """The 1:N protocol on ``faces``, once per distractor count: enrolled and probe counts, and per
    gallery size rank-1, FNIR at FPIR 0.01 / 0.003, and FPIR / FNIR at each threshold."""
    photo_person = faces.photo_person
    central = {int(i): f for f, i in enumerate(faces.image) if faces.is_central[f]}
    counts = Counter(photo_person.tolist())
    by_person: dict[str, list[int]] = {}
    for photo in np.argsort(faces.paths):
        by_person.setdefault(str(photo_person[photo]), []).append(int(photo))
    anchors, anchor_people, mated, mated_people, non_mated = [], [], [], [], []
    for person, photos in by_person.items():
        if counts[person] >= 2:
            anchors.append(photos[0])
            anchor_people.append(person)
            mated += photos[1:]
            mated_people += [person] * (len(photos) - 1)
        else:
            non_mated += photos
    dim = faces.templates.shape[1]

    def vectors(photos: list[int]) -> tuple[np.ndarray, np.ndarray]:
        has = np.array([p in central for p in photos])
        out = np.zeros((len(photos), dim), dtype=np.float32)
        out[has] = faces.templates[[central[p] for p in photos if p in central]]
        return out, has

    gallery, gallery_has = vectors(anchors)
    gallery[~gallery_has] = 0.0  # an anchor without a face can never be found
    mated_v, mated_has = vectors(mated)
    non_v, non_has = vectors(non_mated)
    person_index = {p: i for i, p in enumerate(anchor_people)}
    truth = np.array([person_index[p] for p in mated_people])
    results = []
    for extra in distractors:
        full = (
            gallery
            if not extra
            else np.vstack([gallery, face_like_distractors(faces.templates, extra, seed=1)])
        )
        t = time.perf_counter()
        best, score = top1(full, mated_v)
        _, non_score = top1(full, non_v)
        seconds = time.perf_counter() - t
        ok = mated_has & (best == truth)
        mated_score = np.where(mated_has, score, -np.inf)
        non_score = np.where(non_has, non_score, -np.inf)
        row = {"gallery": len(full), "distractors": extra, "seconds": round(seconds, 1)}
        row |= evaluate(ok, mated_score, non_score, thresholds, default)
        results.append(row)
        print(json.dumps(row), file=sys.stderr)
    return {
        "enrolled": len(anchors),
        "mated_probes": len(mated),
        "non_mated_probes": len(non_mated),
        "mated_without_face": int((~mated_has).sum()),
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--distractors", type=int, nargs="*", default=[0, 100_000, 1_000_000])
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="*",
        default=sorted(
            {
                DEFAULTS.erasure_review_threshold,
                DEFAULTS.match_threshold,
                DEFAULTS.erasure_auto_threshold,
                *GRID[model_family(DEFAULTS.embedder)],
            }
        ),
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    faces = load_lfw_faces(args.data, args.cache)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    found = identify(faces, args.distractors, args.thresholds, DEFAULT_THRESHOLD)
    results = found["results"]
    report = {
        "date": started,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": describe(machine()),
        **found,
    }
    print(
        f"## Identification (1:N) on LFW ({started})\n\nCommand: `{report['command']}`  \n"
        f"Machine: {report['machine']}\n"
    )
    print(
        f"Enrolled {found['enrolled']} people (one anchor photo each); {found['mated_probes']} mated probes "
        f"({found['mated_without_face']} without a detected face); {found['non_mated_probes']} non-mated "
        "probes.\n"
    )
    print(
        "| gallery | rank-1 | FNIR @ FPIR 0.01 (threshold) | FNIR @ FPIR 0.003 (threshold) | "
        f"at the default {DEFAULT_THRESHOLD}: FPIR / FNIR |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['gallery']:,} | {r['rank1']:.2%} | "
            f"{r['fnir_at_fpir_0.01']:.2%} ({r['threshold_fpir_0.01']:.3f}) | "
            f"{r['fnir_at_fpir_0.003']:.2%} ({r['threshold_fpir_0.003']:.3f}) | "
            f"{r['fpir_at_default']:.2%} / {r['fnir_at_default']:.2%} |"
        )
    print("\nFPIR / FNIR by threshold:\n")
    print("| threshold | " + " | ".join(f"gallery {r['gallery']:,}" for r in results) + " |")
    print("|---:|" + "---:|" * len(results))
    for t in args.thresholds:
        cells = [r["by_threshold"][f"{t:.3f}"] for r in results]  # type: ignore[index]
        print(f"| {t:.3f} | " + " | ".join(f"{c[0]:.2%} / {c[1]:.2%}" for c in cells) + " |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
