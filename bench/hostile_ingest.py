"""Ingest a generated corpus of >= 1,000 malformed and hostile files through the real engine.

    nice .venv/bin/python bench/hostile_ingest.py --workers 2 --out hostile.json
    nice .venv/bin/python bench/hostile_ingest.py --cli          # through `lethe ingest --json` instead

The corpus is ``tests/hostile_files.py`` (the same bytes every run): truncated and corrupt files of
every format, decompression bombs (real and forged headers), 0-byte files, 1x1 images, 50,000-px
sides, CMYK, 16-bit, palette, animated, wrong extensions, EXIF orientation and oversized/looping
EXIF, polyglots, non-images, randomly mutated files, and (with the shared test data) a real face in
ten hostile encodings. Beside them in the folder: a named pipe, a symbolic link to a file outside
the folder, one to a folder outside it and a link loop.

It is ingested into a fresh data folder in one run; then every file is checked (see
``hostile_files.check``): a usable image was ingested with the right size (and one face for the face
variants), a refused file has a clear one-line reason of the right kind, and nothing crashed the run.
Peak RSS (sampled every 0.2 s, and the kernel's high-water marks) shows the memory stays bounded.
Exit status 1 when any file is wrong, the corpus is under 1,000 files, or the peak RSS of one
process is over ``--max-rss-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ingest_lfw import MB, MemorySampler  # noqa: E402
from machine import describe, machine  # noqa: E402

from lethe.config import Settings  # noqa: E402
from lethe.engine import Lethe  # noqa: E402
from lethe.privacy import SourceSpec  # noqa: E402

import hostile_files  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPECIAL = {
    "zz-named-pipe.jpg": "not a regular file",
    "zz-link-out.jpg": "symbolic link points outside the collection folder",
    "zz-folder-link-out": "symbolic link to a folder outside the collection folder",
    "zz-loop.jpg": "symbolic link loop",
}


def default_face() -> Path | None:
    data = Path(os.environ.get("LETHE_TEST_DATA", REPO.parent / "shared" / "data"))
    path = data / "fixtures" / "identities" / "joe_biden" / "biden.jpg"
    return path if path.is_file() else None


def lay_out(files: list[hostile_files.Hostile], work: Path) -> Path:
    folder = hostile_files.write(files, work / "collection")
    outside = work / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(files[0].data)
    os.mkfifo(folder / "zz-named-pipe.jpg")
    (folder / "zz-link-out.jpg").symlink_to(outside / "secret.jpg")
    (folder / "zz-folder-link-out").symlink_to(outside)
    (folder / "zz-loop.jpg").symlink_to(folder / "zz-loop.jpg")
    return folder


def source() -> SourceSpec:
    return SourceSpec.validated(
        name="hostile",
        lawful_basis="legitimate_interests",
        art9_condition="explicit_consent",
        purpose="hardening benchmark",
        jurisdiction="FR",
        retention_days=30,
    )


def ingest_in_process(folder: Path, data: Path, workers: int) -> tuple[dict[str, Any], Lethe]:
    engine = Lethe(Settings(data_dir=data, workers=workers))
    engine.add_source(source())
    _ = engine.pipeline  # models loaded before the baseline
    sampler = MemorySampler()
    baseline, _ = sampler.measure()
    sampler.start()
    started = time.perf_counter()
    report = engine.ingest("hostile", folder)
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest reaped child's
    return {
        "report": report.as_dict(),
        "seconds": seconds,
        "baseline_rss_mb": baseline / MB,
        "peak_rss_main_mb": sampler.peak_main / MB,
        "peak_rss_one_process_mb": max(worker, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        / MB,
        "peak_rss_tree_mb": sampler.peak_tree / MB,
    }, engine


def ingest_with_cli(folder: Path, data: Path, workers: int) -> tuple[dict[str, Any], Lethe]:
    env = os.environ | {"LETHE_DATA_DIR": str(data), "LETHE_WORKERS": str(workers)}
    lethe = [str(REPO / ".venv" / "bin" / "lethe")]
    spec = source()
    add = ["source", "add", spec.name, "--basis", spec.lawful_basis, "--art9", spec.art9_condition,
           "--purpose", spec.purpose, "--jurisdiction", spec.jurisdiction,
           "--retention-days", str(spec.retention_days), "--json"]  # fmt: skip
    subprocess.run(lethe + add, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    done = subprocess.run(lethe + ["ingest", "hostile", str(folder), "--json"], env=env, capture_output=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lethe ingest exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "report": json.loads(done.stdout),
        "seconds": seconds,
        "exit_status": done.returncode,
        "peak_rss_one_process_mb": children / MB,
    }, Lethe(Settings(data_dir=data, workers=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=5, help="5: the full corpus (>= 1,000 files)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--face", type=Path, default=default_face(), help="a one-face photo (optional)")
    parser.add_argument("--cli", action="store_true", help="ingest with `lethe ingest --json`")
    parser.add_argument("--max-rss-mb", type=float, default=2048.0)
    parser.add_argument("--out", type=Path, help="write every number and problem as JSON")
    args = parser.parse_args(argv)

    files = hostile_files.corpus(args.scale, args.face.read_bytes() if args.face else None)
    with tempfile.TemporaryDirectory(prefix="lethe-hostile-") as tmp:
        work = Path(tmp)
        folder = lay_out(files, work)
        run = ingest_with_cli if args.cli else ingest_in_process
        result, engine = run(folder, work / "data", args.workers)
        with engine:
            outcome = hostile_files.ingest_outcome(engine, result["report"]["errors"])
            index_ok = len(engine.index) == engine.catalog.count_faces()
    problems = hostile_files.check(files, outcome)
    for name, reason in SPECIAL.items():
        got = outcome.get(name, {}).get("error")
        if not isinstance(got, str) or reason not in got:
            problems.append(f"{name}: expected a refusal naming {reason!r}, got {outcome.get(name)}")
    if "secret.jpg" in outcome:
        problems.append("the file behind a link out of the collection was ingested")
    if not index_ok:
        problems.append("index and catalog disagree on the number of faces")
    report = result["report"]
    accounted = report["images"] + len(report["errors"]) + report.get("errors_omitted", 0) + report["skipped"]
    if accounted != len(files) + len(SPECIAL):
        problems.append(f"{accounted} files accounted for, {len(files) + len(SPECIAL)} laid out")
    if args.scale >= 5 and len(files) < 1000:
        problems.append(f"the corpus has {len(files)} files, fewer than 1,000")
    peak = max(result.get("peak_rss_main_mb", 0.0), result.get("peak_rss_one_process_mb", 0.0))
    if peak > args.max_rss_mb:
        problems.append(f"peak RSS {peak:.0f} MB over {args.max_rss_mb:.0f} MB")

    rows: dict[str, Counter[str]] = {}
    for item in files:
        got = outcome.get(item.name, {})
        rows.setdefault(item.category, Counter())["refused" if "error" in got else "ingested"] += 1
        rows[item.category]["files"] += 1
    wrong = Counter(p.split("-")[1] for p in problems if p[:4].isdigit())
    print(describe(machine()))
    print(f"{len(files)} hostile files + {len(SPECIAL)} special entries, {args.workers} worker(s), "
          f"{'lethe ingest --json' if args.cli else 'Lethe.ingest'}: {result['seconds']:.1f} s")  # fmt: skip
    print("\n| category | files | ingested | refused | wrong |\n|---|---:|---:|---:|---:|")
    for category in hostile_files.CATEGORIES:
        if category in rows:
            r = rows[category]
            print(
                f"| {category} | {r['files']} | {r['ingested']} | {r['refused']} | {wrong.get(category, 0)} |"
            )
    total = sum(rows.values(), Counter())
    print(f"| **all** | {total['files']} | {total['ingested']} | {total['refused']} | {len(problems)} |\n")
    memory = {k: round(v, 1) for k, v in result.items() if k.endswith("_mb")}
    print(f"faces stored: {report['faces']}; memory (MB): {memory}")
    reasons = Counter(str(o["error"]).split(":")[0][:60] for o in outcome.values() if "error" in o)
    print("most common reasons:", "; ".join(f"{r} ({n})" for r, n in reasons.most_common(8)))
    for problem in problems[:40]:
        print("PROBLEM", problem)
    if args.out:
        summary = {k: v for k, v in result.items() if k != "report"} | {
            "files": len(files),
            "categories": {c: dict(r) for c, r in rows.items()},
            "faces": report["faces"],
            "problems": problems,
            "machine": machine(),
        }
        args.out.write_text(json.dumps(summary, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
