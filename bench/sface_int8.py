"""Would real int8 kernels help SFace? ONNX Runtime's static quantization of the prepared graph,
against the prepared fp32 graph, in one run: agreement of the templates and speed.

Usage: nice .venv/bin/python bench/sface_int8.py [--data ../shared/data] [--faces 300] [--repeat 3]

The graph Lethe runs (weights folded, PRelu rewritten) is quantized with
``onnxruntime.quantization.quantize_static``: QDQ format, per-channel int8 weights, uint8
activations, MinMax calibration on the ArcFace chips of every face YuNet finds in the photo
fixtures (not LFW, which is what the templates are then compared on). Both graphs then embed the
chips of a seeded sample of LFW photos (the largest face of each); printed: the cosine between the
int8 and fp32 templates of each face, and ms per face on one thread at batch 1 and 8.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed_speed import arcface_chips  # noqa: E402
from machine import describe, machine  # noqa: E402

from lethe.arcface import arcface_chip  # noqa: E402
from lethe.config import Settings  # noqa: E402
from lethe.embedding import sface  # noqa: E402
from lethe.embedding.prepared import cpu_session, fold_constant_weights  # noqa: E402
from lethe.imaging import decode_image  # noqa: E402
from lethe.pipeline import build_detector  # noqa: E402
from lethe.types import RGBImage, l2_normalise  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def fixture_chips(fixtures: Path) -> list[RGBImage]:
    detector = build_detector(Settings(detector="yunet"))
    chips = []
    for path in sorted(fixtures.rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            pixels = decode_image(path.read_bytes(), max_pixels=60_000_000).pixels
            chips += [
                arcface_chip(pixels, d.landmarks, 112)
                for d in detector.detect(pixels)
                if d.landmarks is not None
            ]
    return chips


class Chips(CalibrationDataReader):
    def __init__(self, name: str, chips: list[RGBImage]) -> None:
        self.name, self.chips = name, iter(chips)

    def get_next(self) -> dict[str, np.ndarray] | None:
        chip = next(self.chips, None)
        if chip is None:
            return None
        return {self.name: np.ascontiguousarray(chip.transpose(2, 0, 1)[None], dtype=np.float32)}


def main() -> int:
    default_data = Path(os.environ.get("LETHE_TEST_DATA", REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument(
        "--model",
        type=Path,
        default=default_data.parent / "models/sface/face_recognition_sface_2021dec_int8bq.onnx",
    )
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}\nmachine: {describe(machine())}")
    fp32 = sface.split_prelu(
        fold_constant_weights(sface.drop_unused_inputs(onnx.load(str(args.model))), "SFace")
    )
    calibration = fixture_chips(args.data / "fixtures")
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(fp32, f"{tmp}/fp32.onnx")
        reader = Chips(fp32.graph.input[0].name, calibration)
        quantize_static(
            f"{tmp}/fp32.onnx", f"{tmp}/int8.onnx", reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )  # fmt: skip
        int8 = onnx.load(f"{tmp}/int8.onnx")
    sessions = {
        "fp32 (prepared)": cpu_session(sface.take_chips(fp32).SerializeToString(), 1, "fp32"),
        "int8 (static QDQ)": cpu_session(sface.take_chips(int8).SerializeToString(), 1, "int8"),
    }
    chips = np.stack(arcface_chips(args.data / "lfw", args.faces, args.seed))

    def run(name: str, batch: int) -> np.ndarray:
        s = sessions[name]
        return np.concatenate(
            [s.run(None, {sface.INPUT_NAME: chips[i : i + batch]})[0] for i in range(0, len(chips), batch)]
        )

    names = list(sessions)
    cos = np.sum(l2_normalise(run(names[0], 8)) * l2_normalise(run(names[1], 8)), axis=1)
    print(f"{len(calibration)} calibration chips (fixtures); {len(chips)} LFW faces compared")
    print(
        f"cosine int8 vs fp32 per face: min {cos.min():.4f}, p01 {np.percentile(cos, 1):.4f}, "
        f"mean {cos.mean():.4f}"
    )
    for batch in (1, 8):
        for name in names:
            best = min(_timed(run, name, batch) for _ in range(args.repeat)) / len(chips) * 1000
            print(f"{name:<18} batch {batch}: {best:.2f} ms/face (best of {args.repeat})")
    return 0


def _timed(run: object, name: str, batch: int) -> float:
    t0 = time.perf_counter()
    run(name, batch)  # type: ignore[operator]
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
