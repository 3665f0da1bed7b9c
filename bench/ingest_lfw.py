"""Ingest throughput on LFW: Lethe's engine against a face_recognition-style loop, in one run.

Usage: nice .venv/bin/python bench/ingest_lfw.py [--data ../shared/data] [--workers 2] [--limit N]
[--baseline-sample 300] [--seed 0] [--cold 300] [--out results.json].

Lethe: the real engine ingests ``lfw/`` (or a
temporary copy of its first N photos) into a fresh data folder; peak RSS of the main process and of
the process tree is sampled every 0.2 s and noted every 1,000 photos. Baseline: face_recognition's
per-photo calls (load_image_file, HOG upsample 1, 68-point landmarks, compute_face_descriptor with
num_jitters=1) written against dlib, one process, on a seeded sample of the same photos, on which
Lethe's pipeline stages are also timed in-process. Cold: ``lethe ingest`` of the first ``--cold``
photos as a user runs it (a fresh process, a new data folder, models already in the model cache),
timed from the command's start to its exit. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlib
import numpy as np
import psutil
from machine import machine
from PIL import Image
from sqlalchemy import distinct, func, select

from lethe.alignment import quality_score
from lethe.catalog.tables import FaceRow
from lethe.config import Settings
from lethe.engine import Lethe
from lethe.imaging import decode_image
from lethe.ingest.inputs import IMAGE_SUFFIXES
from lethe.models import dlib_model_path
from lethe.pipeline import build_pipeline, encode_jpeg
from lethe.privacy import SourceSpec

MB = 1024 * 1024


class MemorySampler(threading.Thread):
    """Peak RSS of this process (main) and of it plus all its descendants (tree), every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.proc, self.done, self.lock = psutil.Process(), threading.Event(), threading.Lock()
        self.peak_main = self.peak_tree = 0

    def measure(self) -> tuple[int, int]:
        main = tree = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that exited meanwhile
                tree += child.memory_info().rss
        with self.lock:
            self.peak_main, self.peak_tree = max(self.peak_main, main), max(self.peak_tree, tree)
        return main, tree

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.measure()


def list_photos(lfw: Path) -> list[Path]:
    """Every photo, in the order the ingest walks a folder (sorted folders, then sorted names)."""
    photos = [p for p in lfw.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(photos, key=lambda p: p.relative_to(lfw).parts)


def run_lethe(photos: list[Path], lfw: Path, limited: bool, workers: int, **settings: Any) -> dict[str, Any]:
    """The real engine, fresh data folder, ``workers`` processes (or other ``settings``, e.g.
    ``ingest_engine="ray"``); RSS checkpoints from ``progress``."""
    spec = SourceSpec.validated(
        name="lfw",
        lawful_basis="consent",
        art9_condition="explicit_consent",
        purpose="ingest throughput benchmark on LFW",
        jurisdiction="FR",
        retention_days=30,
    )
    step = min(1000, max(1, len(photos) // 4))
    checkpoints: list[dict[str, float]] = []
    sampler = MemorySampler()

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            main, tree = sampler.measure()
            at = time.perf_counter() - t0
            checkpoints.append({"images": done, "s": at, "rss_main_mb": main / MB, "rss_tree_mb": tree / MB})

    with tempfile.TemporaryDirectory(prefix="lethe-bench-") as tmp:
        target = Path(tmp) / "photos" if limited else lfw  # symlinks out of the folder are refused
        for photo in photos:  # the copy (or a read) warms the page cache for both sides
            if limited:
                (target / photo.relative_to(lfw)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(photo, target / photo.relative_to(lfw))
            else:
                photo.read_bytes()
        config = Settings(data_dir=Path(tmp) / "data", workers=workers, **settings)
        sampler.start()
        with Lethe(config) as engine:
            engine.add_source(spec)
            t0 = time.perf_counter()
            report = engine.ingest("lfw", target, progress=progress)
            sampler.done.set()
            with engine.catalog.session() as session:
                found = int(session.scalar(select(func.count(distinct(FaceRow.image_id)))) or 0)
    return {
        **summary(workers, report.images, report.faces, found, report.seconds),
        "detector": config.detector,
        "skipped": report.skipped,
        "errors": len(report.errors),
        "error_examples": report.errors[:5],
        "peak_rss_main_mb": sampler.peak_main / MB,
        "peak_rss_tree_mb": sampler.peak_tree / MB,
        "rss_checkpoints": checkpoints,
    }


def run_cold(photos: list[Path], lfw: Path, workers: int) -> dict[str, Any]:
    """``lethe ingest`` as a user runs it: a fresh process and a new data folder (the models already
    in the model cache); wall time of the command, start-up included."""
    lethe = Path(sys.executable).with_name("lethe")
    with tempfile.TemporaryDirectory(prefix="lethe-cold-") as tmp:
        target = Path(tmp) / "photos"
        for photo in photos:
            (target / photo.relative_to(lfw)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photo, target / photo.relative_to(lfw))
        env = os.environ | {"LETHE_DATA_DIR": str(Path(tmp) / "data"), "LETHE_WORKERS": str(workers)}
        add = [
            "source",
            "add",
            "lfw",
            "--basis",
            "consent",
            "--art9",
            "explicit_consent",
            "--purpose",
            "bench",
        ]
        add += ["--jurisdiction", "FR", "--retention-days", "30", "--json"]
        subprocess.run([str(lethe), *add], env=env, check=True, capture_output=True)
        t0 = time.perf_counter()
        done = subprocess.run(
            [str(lethe), "ingest", "lfw", str(target), "--json"], env=env, check=True, capture_output=True
        )
        seconds = time.perf_counter() - t0
    report = json.loads(done.stdout)
    return summary(workers, report["images"], report["faces"], 0, seconds) | {
        "face_found_rate": float("nan"),  # not in the command's report
        "ingest_reported_seconds": report.get("seconds"),
        "errors": len(report["errors"]),
    }


def summary(processes: int, images: int, faces: int, found: int, seconds: float) -> dict[str, Any]:
    keys = ("processes", "images", "faces", "seconds", "images_per_s", "faces_per_image", "face_found_rate")
    n = max(1, images)
    return dict(
        zip(keys, (processes, images, faces, seconds, images / seconds, faces / n, found / n), strict=True)
    )


def timed_loop(sample: list[Path], per_photo: Callable[[Path, Callable[[str], None]], int]) -> dict[str, Any]:
    """Time ``per_photo`` (it calls ``lap(stage)`` after each stage and returns its face count)."""
    totals: dict[str, float] = {}
    last = [0.0]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        totals[stage] = totals.get(stage, 0.0) + now - last[0]
        last[0] = now

    faces = found = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for path in sample:
        last[0] = time.perf_counter()
        n = per_photo(path, lap)
        faces, found = faces + n, found + (n > 0)
    wall = time.perf_counter() - wall0
    return {
        **summary(1, len(sample), faces, found, wall),
        "cpu_per_wall": (time.process_time() - cpu0) / wall,
        "stage_ms_per_image": {k: 1000 * v / max(1, len(sample)) for k, v in totals.items()},
    }


def run_baseline(sample: list[Path]) -> dict[str, Any]:
    """face_recognition's per-photo path, written directly against dlib (same calls, same defaults)."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path("shape68")))
    encoder = dlib.face_recognition_model_v1(str(dlib_model_path("resnet")))

    def per_photo(path: Path, lap: Callable[[str], None]) -> int:
        with Image.open(path) as im:  # load_image_file
            image = np.array(im.convert("RGB"))
        lap("load")
        rects = detector(image, 1)  # face_locations(image, number_of_times_to_upsample=1, model="hog")
        lap("detect")
        shapes = [predictor(image, r) for r in rects]  # face_encodings' pose_predictor, 68 points
        lap("landmarks")
        _ = [np.array(encoder.compute_face_descriptor(image, s, 1)) for s in shapes]  # num_jitters=1
        lap("embed")
        return len(rects)

    return timed_loop(sample, per_photo)


def run_lethe_stages(sample: list[Path], settings: Settings) -> dict[str, Any]:
    """Lethe's pipeline step by step, as ``FacePipeline.faces`` runs it, in this one process."""
    pipeline = build_pipeline(settings)
    embedder = pipeline.embedder

    def per_photo(path: Path, lap: Callable[[str], None]) -> int:
        pixels = decode_image(path.read_bytes(), max_pixels=settings.max_image_pixels).pixels
        lap("load")
        dets = sorted(pipeline.detector.detect(pixels), key=lambda d: d.box.area, reverse=True)
        lap("detect")
        chips = [pipeline.align(pixels, d)[1] for d in dets]
        lap("landmarks+chip")
        embedder.embed(chips)
        lap("embed")
        _ = [(encode_jpeg(c), quality_score(d.box, c)) for d, c in zip(dets, chips, strict=True)]
        lap("crop+quality")
        return len(dets)

    return timed_loop(sample, per_photo)


def markdown(r: dict[str, Any]) -> str:
    m, eng, own, base = r["machine"], r["lethe"], r["lethe_in_process"], r["baseline"]
    b_ms, l_ms = base["stage_ms_per_image"], own["stage_ms_per_image"]
    b_txt = {"landmarks+chip": f"{b_ms['landmarks']:.2f} (landmarks; chip in embed)", "crop+quality": "—"}
    b_txt |= {k: f"{v:.2f}" for k, v in b_ms.items() if k != "landmarks"}

    def row(name: str, x: dict[str, Any]) -> str:
        mem = f"{x['peak_rss_main_mb']:.0f} / {x['peak_rss_tree_mb']:.0f}" if "peak_rss_main_mb" in x else "—"
        rate = x["face_found_rate"]
        found = "—" if rate != rate else f"{100 * rate:.1f}%"  # NaN: not known
        return (
            f"| {name} | {x['processes']} | {x['images']} | {x['faces']} | {x.get('errors', 0)} | "
            f"{x['seconds']:.1f} | {x['images_per_s']:.2f} | {x['faces_per_image']:.3f} | "
            f"{found} | {mem} |"
        )

    rss = ", ".join(
        f"{c['images']} ({c['s']:.0f} s): {c['rss_main_mb']:.0f}/{c['rss_tree_mb']:.0f}"
        for c in eng["rss_checkpoints"]
    )
    return "\n".join(
        [
            f"## Ingest benchmark: LFW ({r['date']})\n",
            f"Command: `{r['command']}`  ",
            f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['memory_gb']} GB RAM, "
            f"{m['os']}; Python {m['python']}, dlib {m['dlib']}, lethe {m['lethe']}; "
            f"1-min load average {r['loadavg_start']:.2f} at start, {r['loadavg_end']:.2f} at end\n",
            "| run | processes | images | faces | errors | seconds | images/s | faces/image | face found "
            "| peak RSS main / tree (MB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            row(f"Lethe engine ({eng['detector']})", eng),
            row("Lethe pipeline in-process (sample)", own),
            *(
                [row("cold `lethe ingest` (fresh process, new data folder)", r["cold"])]
                if "cold" in r
                else []
            ),
            row("face_recognition-style loop (sample)", base),
            f"\n**Lethe images/s ÷ baseline images/s = {r['ratio']:.2f}** (Lethe: {eng['processes']} "
            f"worker processes, start-up included; baseline: 1 process). Lethe's pipeline in 1 process "
            f"÷ baseline = {r['ratio_single_process']:.2f}. Baseline CPU/wall {base['cpu_per_wall']:.2f}."
            + (f" Cold `lethe ingest` ÷ baseline = {r['ratio_cold']:.2f}." if "ratio_cold" in r else "")
            + "\n",
            f"RSS during the ingest — images (seconds): main / tree MB — {rss}\n",
            "| stage, ms per image (sample) | baseline | Lethe |",
            "|---|---:|---:|",
            *(f"| {s} | {b_txt[s]} | {ms:.2f} |" for s, ms in l_ms.items()),
            f"| **total** | {sum(b_ms.values()):.2f} | {sum(l_ms.values()):.2f} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding lfw/")
    parser.add_argument("--workers", type=int, default=2, help="Lethe ingest worker processes")
    parser.add_argument("--limit", type=int, default=None, help="ingest only the first N photos")
    parser.add_argument("--baseline-sample", type=int, default=300, help="photos timed stage by stage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--out", type=Path, default=None, help="also write every number to this JSON file")
    parser.add_argument(
        "--cold", type=int, default=300, help="photos of the cold `lethe ingest` run (0: none)"
    )
    args = parser.parse_args(argv)

    lfw = args.data.resolve() / "lfw"
    every = list_photos(lfw) if lfw.is_dir() else []
    if not every:
        parser.error(f"no photos under {lfw}")
    photos = every[: args.limit] if args.limit else every
    sample = random.Random(args.seed).sample(photos, min(args.baseline_sample, len(photos)))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "loadavg_start": os.getloadavg()[0],
    }
    print(f"ingesting {len(photos)} photos; stage timings on {len(sample)}", file=sys.stderr)
    results["lethe"] = run_lethe(photos, lfw, len(photos) < len(every), args.workers)
    with tempfile.TemporaryDirectory(prefix="lethe-bench-") as tmp:
        results["lethe_in_process"] = run_lethe_stages(sample, Settings(data_dir=Path(tmp), workers=1))
    if args.cold:
        print(f"cold lethe ingest of the first {args.cold} photos", file=sys.stderr)
        results["cold"] = run_cold(every[: args.cold], lfw, args.workers)
    results["baseline"] = base = run_baseline(sample)
    results["loadavg_end"] = os.getloadavg()[0]
    results["ratio"] = results["lethe"]["images_per_s"] / base["images_per_s"]
    results["ratio_single_process"] = results["lethe_in_process"]["images_per_s"] / base["images_per_s"]
    if "cold" in results:
        results["ratio_cold"] = results["cold"]["images_per_s"] / base["images_per_s"]
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
