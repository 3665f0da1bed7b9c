"""Embedding speed: dlib's ResNet on dlib's runtime against its ONNX conversion, and SFace.

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

SFace (``--sface MODEL``, default the shared file) is timed in the same run on the ArcFace chips of
the same photos (YuNet's landmarks), three ways: as shipped (only the unused inputs dropped, so
it loads: every weight dequantized on each call), with the weights folded to fp32, and as Lethe
prepares it (folded, PRelu rewritten). GFLOP per face counts the multiply-adds of every Conv and
Gemm of the shipped network (weights folded, so their shapes are known; x2).
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
import onnx  # noqa: E402
from machine import describe, machine  # noqa: E402

from lethe.alignment import Landmarker, face_chip  # noqa: E402
from lethe.arcface import arcface_chip  # noqa: E402
from lethe.config import Settings  # noqa: E402
from lethe.detection import DlibHogDetector  # noqa: E402
from lethe.embedding import DlibResnetEmbedder, sface  # noqa: E402
from lethe.embedding.dlib_format import load_face_resnet, multiply_accumulates  # noqa: E402
from lethe.embedding.onnx_resnet import OnnxResnetEmbedder  # noqa: E402
from lethe.embedding.prepared import cpu_session, fold_constant_weights  # noqa: E402
from lethe.imaging import decode_image  # noqa: E402
from lethe.models import dlib_model_path  # noqa: E402
from lethe.pipeline import build_detector  # noqa: E402
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


def arcface_chips(lfw: Path, count: int, seed: int) -> list[RGBImage]:
    """As :func:`lfw_chips`, with YuNet and the ArcFace template (SFace's chips)."""
    photos = sorted(p for p in lfw.rglob("*.jpg") if p.is_file())
    random.Random(seed).shuffle(photos)
    detector = build_detector(Settings(detector="yunet"))
    chips: list[RGBImage] = []
    for path in photos:
        if len(chips) >= count:
            break
        pixels = decode_image(path.read_bytes(), max_pixels=40_000_000).pixels
        found = sorted(detector.detect(pixels), key=lambda d: d.box.area, reverse=True)
        if found and found[0].landmarks is not None:
            chips.append(arcface_chip(pixels, found[0].landmarks, 112))
    return chips


def conv_gemm_macs(model: onnx.ModelProto) -> int:
    """Multiply-adds of every Conv and Gemm for one face (shapes from ONNX shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        w = weights[node.input[1]]
        out = shapes[node.output[0]]
        macs += int(np.prod(out)) * (
            int(np.prod(w[1:])) if node.op_type == "Conv" else w[1] if len(w) > 1 else 1
        )
    return macs


def sface_graphs(model: Path) -> dict[str, bytes]:
    """The shipped graph (loadable), folded, and prepared (what Lethe runs), NHWC uint8 input each."""
    original = model.read_bytes()

    def load() -> onnx.ModelProto:
        return sface.drop_unused_inputs(onnx.load_from_string(original))

    return {
        "sface as shipped": sface.take_chips(load()).SerializeToString(),
        "sface folded": sface.take_chips(fold_constant_weights(load(), "SFace")).SerializeToString(),
        "sface prepared": sface.take_chips(
            sface.split_prelu(fold_constant_weights(load(), "SFace"))
        ).SerializeToString(),
    }


def sface_speed(args: argparse.Namespace, dlib_best_ms: float) -> dict[str, Any]:
    chips = arcface_chips(args.data / "lfw", args.faces, args.seed)
    graphs = sface_graphs(args.sface)
    network = fold_constant_weights(sface.drop_unused_inputs(onnx.load(str(args.sface))), "SFace")
    gflop = 2 * conv_gemm_macs(network) / 1e9
    results: dict[str, Any] = {"faces": len(chips), "gflop_per_face": gflop}
    print(f"\nSFace, {len(chips)} ArcFace chips; network {gflop:.3f} GFLOP per face")
    print(f"{'graph':<18} {'batch':>5} {'ms/face (best)':>15} {'ms/face (median)':>17} {'GFLOP/s':>8}")
    for name, data in graphs.items():
        session = cpu_session(data, 1, name)
        for batch in BATCH_SIZES:

            def embed(c: list[RGBImage], session: Any = session) -> np.ndarray:
                return session.run(None, {sface.INPUT_NAME: np.stack(c)})[0]

            embed(chips[:batch])
            per_face = [1000 * time_embed(embed, chips, batch)[0] / len(chips) for _ in range(args.repeat)]
            best = min(per_face)
            median = statistics.median(per_face)
            results.setdefault(name, {})[batch] = {"best_ms": best, "median_ms": median}
            print(f"{name:<18} {batch:>5} {best:>15.2f} {median:>17.2f} {gflop / best * 1e3:>8.1f}")
    best = min(r["best_ms"] for r in results["sface prepared"].values())
    results["best_ms"], results["gflop_per_s"] = best, gflop / best * 1e3
    results["dlib_bin_over_sface"] = dlib_best_ms / best
    print(
        f"SFace prepared at best {best:.2f} ms/face, {gflop / best * 1e3:.1f} GFLOP/s; "
        f"dlib-bin / SFace = {dlib_best_ms / best:.1f}x"
    )
    return results


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
    parser.add_argument(
        "--sface",
        type=Path,
        default=default_data.parent / "models/sface/face_recognition_sface_2021dec_int8bq.onnx",
        help="the SFace file to time (skipped when absent)",
    )
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
            if args.sface.is_file():
                dlib_best = min(r["best_ms"] for r in results["dlib"].values())
                results["sface"] = sface_speed(args, dlib_best)
    if args.out:
        args.out.write_text(json.dumps({"command": command, "machine": info, **results}, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
