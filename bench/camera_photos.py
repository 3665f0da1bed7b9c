"""Small faces in camera-size photos (issue 14): recall, duplicates and false detections on the
camera-size set (``tests/camera_photos.py``: LFW faces 40-200 px wide on enlarged real photos at
12 and 24 MP, and the fixture group photos enlarged), then ingest throughput against the
``face_recognition``-style loop (HOG upsample 1 on the full photo) on the same photos, in one run.

Usage::

    nice .venv/bin/python bench/camera_photos.py [--data ../shared/data] [--canvases 8]
        [--faces 16] [--workers 2] [--baseline-photos N] [--out results.json]

The labelled faces are those YuNet finds in each LFW photo at its own size (the face nearest the
centre): recall at camera size is measured against the same faces at native size, so the native
figure is 100% by construction and the gap to it is the recall reported. Detection is timed per
photo in this process (one thread); ingest is the real engine with ``--workers`` processes, peak
RSS per worker sampled every 0.1 s; the baseline loop runs on the same photos (all of them unless
``--baseline-photos`` takes the first N). Lethe's own stages are also timed per photo in this process,
and YuNet's cost per pixel on ONNX Runtime (what Lethe runs) against OpenCV's FaceDetectorYN.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import camera_photos as cp  # noqa: E402
from ingest_lfw import run_baseline, run_lethe_stages  # noqa: E402
from machine import machine  # noqa: E402

from lethe.config import Settings  # noqa: E402
from lethe.detection.yunet import YuNetDetector  # noqa: E402
from lethe.engine import Lethe  # noqa: E402
from lethe.imaging import decode_image  # noqa: E402
from lethe.models import ensure_model  # noqa: E402
from lethe.privacy import SourceSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MB = 2**20
SIZE_BINS = ((40, 60), (60, 90), (90, 130), (130, 201))


class WorkerPeaks(threading.Thread):
    """Peak RSS of the main process and of its largest single child, every 0.1 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.proc, self.done = psutil.Process(), threading.Event()
        self.main = self.worker = 0

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.main = max(self.main, self.proc.memory_info().rss)
            for child in self.proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    self.worker = max(self.worker, child.memory_info().rss)


def detection(photos: list[cp.CameraPhoto], folder: Path, yunet: Path) -> dict[str, Any]:
    tiled, whole = YuNetDetector(yunet), YuNetDetector(yunet, small_face_px=10**6)
    rows: dict[str, dict[str, float]] = {}
    by_size = {f"{lo}-{hi - 1}": [0, 0] for lo, hi in SIZE_BINS}
    for name, detector in (("tiles (the default)", tiled), ("whole photo only (before)", whole)):
        found = spare = twice = labelled = 0
        seconds = 0.0
        for photo in photos:
            pixels = decode_image((folder / photo.file).read_bytes(), max_pixels=60_000_000).pixels
            t0 = time.perf_counter()
            boxes = [d.box for d in detector.detect(pixels)]
            seconds += time.perf_counter() - t0
            hits, extra, dup = cp.match(photo.faces, boxes)
            found, spare, twice, labelled = (
                found + hits,
                spare + extra,
                twice + dup,
                labelled + len(photo.faces),
            )
            if detector is tiled:
                for face in photo.faces:
                    width = face.box[2] - face.box[0]
                    key = next((f"{lo}-{hi - 1}" for lo, hi in SIZE_BINS if lo <= width < hi), None)
                    if key:
                        by_size[key][0] += cp.match([face], boxes)[0]
                        by_size[key][1] += 1
        rows[name] = {
            "labelled": labelled,
            "found": found,
            "recall": found / labelled,
            "false_detections": spare,
            "duplicates": twice,
            "detect_s_per_photo": seconds / len(photos),
        }
    return {"detectors": rows, "recall_by_width_px": {k: v[0] / max(1, v[1]) for k, v in by_size.items()}}


def smallest_faces(lfw: Path, find: cp.FindBoxes, count: int = 150) -> dict[str, float]:
    """YuNet's recall by face width at the scale it runs at (what ``smallest_face_px`` rests on):
    ``count`` LFW photos (seeded), each shrunk so its central face is W px wide and set in a
    256x256 grey frame, found if a box overlaps the shrunk face (IoU >= 0.3)."""
    import cv2

    faces = cp.central_faces(lfw, find, count, seed=14)
    result = {}
    for width in (16, 20, 24, 28, 32):
        hits = 0
        for face in faces:
            pixels = np.asarray(Image.open(face.path).convert("RGB"))
            factor = width / face.box.width
            h, w = (max(1, round(n * factor)) for n in pixels.shape[:2])
            small = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA)
            frame = np.full((256, 256, 3), 128, np.uint8)
            top, left = (256 - h) // 2, (256 - w) // 2
            frame[top : top + h, left : left + w] = small
            b = face.box.scaled(factor)
            label = cp.LabelledFace((b.left + left, b.top + top, b.right + left, b.bottom + top), "", "")
            hits += cp.match([label], find(frame))[0]
        result[f"{width} px"] = hits / len(faces)
    return result


def runtimes(photo: Path, yunet: Path) -> dict[str, float]:
    """ns per pixel of one YuNet pass over a 1024x683 shrink of ``photo`` (a tile's size): ONNX
    Runtime with Lethe's decoding, and OpenCV's FaceDetectorYN on the same file, best of 5."""
    import cv2

    cv2.setNumThreads(1)  # as ingest runs it (lethe.pipeline.build_detector)
    pixels = decode_image(photo.read_bytes(), max_pixels=60_000_000).pixels
    image = cv2.resize(pixels, (1024, 683), interpolation=cv2.INTER_AREA)
    ours = YuNetDetector(yunet)
    opencv = cv2.FaceDetectorYN.create(str(yunet), "", (1024, 683), 0.8, 0.3, 5000)
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    runs = {
        "onnxruntime (Lethe)": lambda: ours._pass(image),
        "opencv FaceDetectorYN": lambda: opencv.detect(bgr),
    }
    result = {}
    for name, run in runs.items():
        run()
        best = min(_seconds(run) for _ in range(5))
        result[name + " ns/px"] = best / image.shape[0] / image.shape[1] * 1e9
    return result


def _seconds(run: Any) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def ingest(folder: Path, workers: int) -> dict[str, Any]:
    spec = SourceSpec.validated(
        name="camera",
        lawful_basis="consent",
        art9_condition="explicit_consent",
        purpose="camera-size ingest benchmark",
        jurisdiction="FR",
        retention_days=30,
    )
    peaks = WorkerPeaks()
    with tempfile.TemporaryDirectory(prefix="lethe-bench-") as tmp:
        peaks.start()
        with Lethe(Settings(data_dir=Path(tmp) / "data", workers=workers)) as engine:
            engine.add_source(spec)
            report = engine.ingest("camera", folder)
        peaks.done.set()
    return {
        "processes": workers,
        "images": report.images,
        "faces": report.faces,
        "errors": len(report.errors),
        "seconds": report.seconds,
        "images_per_s": report.images / report.seconds,
        "peak_rss_main_mb": peaks.main / MB,
        "peak_rss_worker_mb": peaks.worker / MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--canvases", type=int, default=8)
    parser.add_argument("--faces", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-photos", type=int, default=0, help="0: every photo of the set")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = Settings()
    yunet = ensure_model(
        "yunet", path=settings.yunet_model_path, cache_dir=settings.model_cache, offline=True
    )
    folder = REPO / "bench" / ".cache" / "camera"
    native = YuNetDetector(yunet)
    started = time.perf_counter()
    photos = cp.build(
        args.data / "fixtures",
        args.data / "lfw",
        folder,
        lambda px: [d.box for d in native.detect(px)],
        canvases=args.canvases,
        faces_per_canvas=args.faces,
    )
    built = time.perf_counter() - started
    result: dict[str, Any] = {
        "command": shlex.join(["bench/camera_photos.py", *sys.argv[1:]]),
        "machine": machine(),
        "set": {
            "photos": len(photos),
            "labelled_faces": sum(len(p.faces) for p in photos),
            "megapixels": sorted({round(p.width * p.height / 1e6) for p in photos}),
            "build_s": built,
        },
    }
    result["detection"] = detection(photos, folder, yunet)
    any_size = YuNetDetector(yunet, min_face_px=1)  # the 20 px floor of ingest would hide 16 px
    result["yunet_recall_by_face_px"] = smallest_faces(
        args.data / "lfw", lambda px: [d.box for d in any_size.detect(px)]
    )
    result["yunet_runtime"] = runtimes(folder / photos[0].file, yunet)
    result["lethe_ingest"] = ingest(folder, args.workers)
    every = [folder / p.file for p in photos]
    result["lethe_in_process"] = run_lethe_stages(every, settings)
    sample = every[: args.baseline_photos or len(every)]
    baseline = run_baseline(sample)
    result["baseline_loop"] = baseline
    result["ratio_ingest_to_baseline"] = result["lethe_ingest"]["images_per_s"] / baseline["images_per_s"]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
