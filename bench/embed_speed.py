"""Embedding speed and equality: dlib's ResNet on dlib's runtime against its ONNX conversion.

Usage::

    nice .venv/bin/python bench/embed_speed.py [--data ../shared/data] [--faces 200] [--repeat 3]
        [--dlib-repeat 1] [--seed 0] [--out results.json]
    nice .venv/bin/python bench/embed_speed.py --lfw-check [N]      # cosine on N LFW faces (500)

Both runtimes are held to one core: ONNX Runtime with ``intra_op_num_threads=1`` and sequential
execution, dlib (and any BLAS) with ``OMP/OPENBLAS/MKL_NUM_THREADS=1`` set before it is imported;
the CPU time of each run is printed next to its wall time so that a second core at work would show.
The chips are the pipeline's own: HOG detection, 5-point landmarks, 150x150 chips with padding 0.25,
the largest face of each photo of a seeded sample of ``lfw/``. Speed mode times batch sizes 1, 8
and 32 on the same chips and prints the cosine between the two runtimes' vectors on them.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from machine import describe, machine  # noqa: E402

from lethe.alignment import Landmarker, face_chip  # noqa: E402
from lethe.detection import DlibHogDetector  # noqa: E402
from lethe.embedding import DlibResnetEmbedder  # noqa: E402
from lethe.embedding.dlib_format import load_face_resnet, multiply_accumulates  # noqa: E402
from lethe.embedding.onnx_resnet import OnnxResnetEmbedder  # noqa: E402
from lethe.imaging import decode_image  # noqa: E402
from lethe.models import dlib_model_path  # noqa: E402
from lethe.types import RGBImage  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH_SIZES = (1, 8, 32)
MIN_COSINE = 0.9999


def lfw_chips(lfw: Path, count: int, seed: int) -> tuple[list[RGBImage], int]:
    """The largest face of each photo in a seeded shuffle of ``lfw``, until ``count`` chips."""
    photos = sorted(p for p in lfw.rglob("*.jpg") if p.is_file())
    if not photos:
        raise SystemExit(f"no LFW photos under {lfw}")
    random.Random(seed).shuffle(photos)
    detector, landmarker = DlibHogDetector(), Landmarker()
    chips: list[RGBImage] = []
    tried = 0
    for path in photos:
        if len(chips) >= count:
            break
        tried += 1
        pixels = decode_image(path.read_bytes(), max_pixels=40_000_000).pixels
        found = sorted(detector.detect(pixels), key=lambda d: d.box.area, reverse=True)
        if found:
            chips.append(face_chip(pixels, landmarker.shape(pixels, found[0].box), 150, 0.25))
    return chips, tried


def time_embed(
    embed: Callable[[list[RGBImage]], np.ndarray], chips: list[RGBImage], batch: int
) -> tuple[float, float]:
    """Wall and CPU seconds for embedding every chip, ``batch`` chips per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(chips), batch):
        embed(chips[start : start + batch])
    return time.perf_counter() - wall, time.process_time() - cpu


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def speed(args: argparse.Namespace, chips: list[RGBImage], cache: Path) -> dict[str, Any]:
    ref = DlibResnetEmbedder()
    results: dict[str, Any] = {"onnx": {}, "dlib": {}}
    print(f"\n{'runtime':<8} {'batch':>5} {'ms/face (best)':>15} {'ms/face (median)':>17} {'cpu/wall':>9}")
    for batch in BATCH_SIZES:
        onnx = OnnxResnetEmbedder(cache, threads=1, batch_size=batch)
        for runtime, embed, repeat in (
            ("onnx", onnx.embed, args.repeat),
            ("dlib", ref.embed, args.dlib_repeat),
        ):
            embed(chips[:batch])  # warm up
            runs = [time_embed(embed, chips, batch) for _ in range(repeat)]
            per_face = [1000 * wall / len(chips) for wall, _ in runs]
            cpu_ratio = sum(c for _, c in runs) / sum(w for w, _ in runs)
            results[runtime][batch] = {"best_ms": min(per_face), "median_ms": statistics.median(per_face)}
            print(
                f"{runtime:<8} {batch:>5} {min(per_face):>15.2f} {statistics.median(per_face):>17.2f}"
                f" {cpu_ratio:>9.2f}"
            )
    print()
    for batch in BATCH_SIZES:
        ratio = results["dlib"][batch]["best_ms"] / results["onnx"][batch]["best_ms"]
        results.setdefault("speedup", {})[batch] = ratio
        print(f"batch {batch:>2}: ONNX is {ratio:.1f}x faster than dlib")
    macs = multiply_accumulates(load_face_resnet(dlib_model_path("resnet")))
    best = min(r["best_ms"] for r in results["onnx"].values())
    print(f"network: {2 * macs / 1e9:.3f} GFLOP per face; ONNX at best {2 * macs / best / 1e6:.1f} GFLOP/s")
    results["gflop_per_face"] = 2 * macs / 1e9
    a = OnnxResnetEmbedder(cache).embed(chips)
    b = ref.embed(chips)
    cos = cosines(a, b)
    results["cosine"] = {"min": float(cos.min()), "mean": float(cos.mean()), "faces": len(chips)}
    print(f"cosine ONNX vs dlib on these {len(chips)} faces: min {cos.min():.7f}, mean {cos.mean():.7f}")
    return results


def lfw_check(chips: list[RGBImage], cache: Path) -> dict[str, Any]:
    a = OnnxResnetEmbedder(cache, batch_size=32).embed(chips)
    b = DlibResnetEmbedder().embed(chips)
    cos = cosines(a, b)
    diff = np.abs(a - b).max(axis=1)
    below = int(np.sum(cos < MIN_COSINE))
    print(
        f"cosine ONNX vs dlib on {len(chips)} LFW faces: min {cos.min():.7f}, mean {cos.mean():.7f}, "
        f"p01 {np.percentile(cos, 1):.7f}; max |difference| of unit vectors {diff.max():.2e}; "
        f"faces below {MIN_COSINE}: {below}"
    )
    return {"faces": len(chips), "min": float(cos.min()), "mean": float(cos.mean()), "below": below}


def main() -> int:
    default_data = Path(os.environ.get("LETHE_TEST_DATA", REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=default_data, help="folder holding lfw/")
    parser.add_argument("--faces", type=int, default=200, help="faces to time (speed mode)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes of ONNX per batch size")
    parser.add_argument("--dlib-repeat", type=int, default=1, help="timed passes of dlib per batch size")
    parser.add_argument("--lfw-check", type=int, nargs="?", const=500, default=None, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None, help="ONNX cache (default: temporary)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()

    info = machine()
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}")
    print(f"machine: {describe(info)}")

    count = args.lfw_check if args.lfw_check is not None else args.faces
    started = time.perf_counter()
    chips, tried = lfw_chips(args.data / "lfw", count, args.seed)
    elapsed = time.perf_counter() - started
    print(f"{len(chips)} faces from {tried} LFW photos (seed {args.seed}) in {elapsed:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp)
        started = time.perf_counter()
        OnnxResnetEmbedder(cache)
        print(f"ONNX model ready in {time.perf_counter() - started:.2f} s (cache {cache})")
        if args.lfw_check is not None:
            results = {"lfw_check": lfw_check(chips, cache)}
            ok = results["lfw_check"]["below"] == 0
        else:
            results = speed(args, chips, cache)
            ok = results["cosine"]["min"] >= MIN_COSINE
    if args.out:
        args.out.write_text(json.dumps({"command": command, "machine": info, **results}, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
