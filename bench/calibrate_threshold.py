"""Calibrate the default match threshold on LFW View 1 (pairsDevTrain.txt, 1,100 + 1,100 pairs).

Usage: .venv/bin/python bench/calibrate_threshold.py --data ../shared/data [--workers 2]

Prints the cosine-similarity threshold of best accuracy and thresholds at fixed false-accept rates.
View 1 is the development split, so the View 2 evaluation stays untouched by this choice.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from lethe.config import Settings
from lethe.imaging import decode_image

_PIPELINE = None


def _init() -> None:
    global _PIPELINE
    from lethe.pipeline import build_pipeline

    _PIPELINE = build_pipeline(Settings())


def _embed(path: str) -> tuple[str, list[float] | None]:
    assert _PIPELINE is not None
    image = decode_image(Path(path).read_bytes(), max_pixels=50_000_000)
    faces = _PIPELINE.faces(image.pixels)
    if not faces:
        return path, None
    # LFW photos are centred on the person: take the face nearest the centre.
    cx, cy = image.width / 2, image.height / 2
    best = min(
        faces,
        key=lambda f: ((f.box.left + f.box.right) / 2 - cx) ** 2 + ((f.box.top + f.box.bottom) / 2 - cy) ** 2,
    )
    return path, best.embedding.tolist()


def read_pairs(path: Path, lfw: Path) -> list[tuple[Path, Path, bool]]:
    lines = path.read_text().split("\n")[1:]
    pairs = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            a = lfw / parts[0] / f"{parts[0]}_{int(parts[1]):04d}.jpg"
            b = lfw / parts[0] / f"{parts[0]}_{int(parts[2]):04d}.jpg"
            pairs.append((a, b, True))
        elif len(parts) == 4:
            a = lfw / parts[0] / f"{parts[0]}_{int(parts[1]):04d}.jpg"
            b = lfw / parts[2] / f"{parts[2]}_{int(parts[3]):04d}.jpg"
            pairs.append((a, b, False))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="JSON file of embeddings to reuse between runs")
    args = parser.parse_args()
    pairs = read_pairs(args.data / "lfw_protocol" / "pairsDevTrain.txt", args.data / "lfw")
    paths = sorted({str(p) for a, b, _ in pairs for p in (a, b)})
    start = time.perf_counter()
    if args.cache and args.cache.is_file():
        vectors = json.loads(args.cache.read_text())
    else:
        with ProcessPoolExecutor(args.workers, initializer=_init) as pool:
            vectors = dict(pool.map(_embed, paths, chunksize=16))
        if args.cache:
            args.cache.write_text(json.dumps(vectors))
    elapsed = time.perf_counter() - start
    sims, labels = [], []
    failures = 0
    for a, b, same in pairs:
        va, vb = vectors[str(a)], vectors[str(b)]
        if va is None or vb is None:
            failures += 1
            sims.append(-1.0)
        else:
            sims.append(float(np.dot(va, vb)))
        labels.append(same)
    s, y = np.array(sims), np.array(labels)
    grid = np.linspace(0.5, 1.0, 501)
    acc = np.array([((s >= t) == y).mean() for t in grid])
    best = float(grid[acc.argmax()])
    neg = np.sort(s[~y])[::-1]
    default = Settings().match_threshold
    t2, t3 = float(neg[int(len(neg) * 1e-2)]), float(neg[max(0, int(len(neg) * 1e-3))])
    out = {
        "pairs": len(pairs),
        "images": len(paths),
        "images_without_face": sum(v is None for v in vectors.values()),
        "pairs_with_failure": failures,
        "best_accuracy": float(acc.max()),
        "best_threshold": best,
        "threshold_far_1e-2": t2,
        "tar_far_1e-2": float((s[y] >= t2).mean()),
        "threshold_far_1e-3": t3,
        "tar_far_1e-3": float((s[y] >= t3).mean()),
        "default_threshold": default,
        "tar_at_default": float((s[y] >= default).mean()),
        "far_at_default": float((s[~y] >= default).mean()),
        "tar_at_best": float((s[y] >= best).mean()),
        "far_at_best": float((s[~y] >= best).mean()),
        "seconds": round(elapsed, 1),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
