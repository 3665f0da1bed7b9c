"""LFW View 2 for several pipeline variants in one run: accuracy (10 folds), TAR at FAR 1e-3, detection
failures, wall time, and one ROC/DET plot with every variant.

Usage: .venv/bin/python bench/eval_lfw.py --data ../shared/data [--workers 2]
           [--variants default flip yunet] [--plot docs/plots/lfw_roc_det.png]

Variants: ``default`` (dlib HOG + dlib 5-point alignment + ONNX ResNet, what Lethe ships), ``flip``
(the same, each template averaged with its mirror image's), ``yunet`` (the YuNet detector instead of
HOG; needs --yunet-model or the shared file).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from machine import describe, machine

from lethe.config import Settings
from lethe.evaluation import EvalResult, evaluate_lfw, plot_roc_det

VARIANTS = ("default", "flip", "yunet")


def run_variant(name: str, data: Path, workers: int, yunet: Path | None, work: Path) -> EvalResult:
    extra: dict[str, object] = {"embed_flip": name == "flip"}
    if name == "yunet":
        if yunet is None:
            raise SystemExit("the yunet variant needs --yunet-model")
        extra |= {"detector": "yunet", "yunet_model_path": yunet}
    settings = Settings(data_dir=work / name, workers=workers, **extra)  # type: ignore[arg-type]
    return evaluate_lfw(data, settings)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--yunet-model",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/models/yunet/face_detection_yunet_2023mar.onnx",
    )
    parser.add_argument("--plot", type=Path, default=Path("docs/plots/lfw_roc_det.png"))
    args = parser.parse_args()
    print(describe(machine()))
    yunet = args.yunet_model if args.yunet_model.is_file() else None
    results: dict[str, EvalResult] = {}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.variants:
            start = time.perf_counter()
            result = run_variant(name, args.data, args.workers, yunet, Path(work))
            seconds = time.perf_counter() - start
            results[name] = result
            tar, threshold = result.tar_at_far_1e3
            rows.append(
                {
                    "variant": name,
                    "accuracy": round(result.accuracy, 5),
                    "std": round(result.std, 5),
                    "tar_at_far_1e-3": round(tar, 5),
                    "threshold_at_far_1e-3": round(threshold, 4),
                    "detection_failures": result.detection_failures,
                    "seconds": round(seconds, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    plot_roc_det(results, args.plot)
    print("\n| variant | accuracy ± std | TAR at FAR 1e-3 (threshold) | photos without a face | wall s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['accuracy'] * 100:.2f}% ± {row['std'] * 100:.2f} | "
            f"{row['tar_at_far_1e-3'] * 100:.2f}% ({row['threshold_at_far_1e-3']}) | "
            f"{row['detection_failures']} | {row['seconds']} |"
        )
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
