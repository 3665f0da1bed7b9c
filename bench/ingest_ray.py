"""Ingest throughput: local worker processes against Ray actors, same photos, same worker count.

Usage: nice .venv/bin/python bench/ingest_ray.py [--data ../shared/data] [--limit 2000] [--workers 2]
[--repeats 3] [--address ADDR] [--out results.json]. Each repeat ingests the first N LFW photos into a
fresh data folder once per engine (the order alternates between repeats) through the real engine
(``run_lethe`` of ingest_lfw.py): ``local`` with ``--workers`` processes, ``ray`` with as many
actors, on a Ray instance started inside the timed run (as ``lethe ingest --engine ray`` does) or on
the cluster at ``--address``. Reports medians, the spread, and ray ÷ local for the whole run
(start-up included) and for the steady state (between the first and the last progress checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from ingest_lfw import list_photos, run_lethe
from machine import describe, machine

ENGINES = ("local", "ray")


def steady_rate(run: dict[str, Any]) -> float:
    """Photos per second between the first and the last RSS checkpoint (start-up excluded)."""
    first, last = run["rss_checkpoints"][0], run["rss_checkpoints"][-1]
    return float((last["images"] - first["images"]) / max(1e-9, last["s"] - first["s"]))


def one_run(photos: list[Path], lfw: Path, workers: int, engine: str, address: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"ingest_engine": engine}
    if engine == "ray":
        extra.update(ray_actors=workers, ray_address=address)
    load, cpu = os.getloadavg()[0], psutil.Process().cpu_times()
    result = run_lethe(photos, lfw, True, workers, **extra)
    after = psutil.Process().cpu_times()
    driver_cpu = (after.user - cpu.user) + (after.system - cpu.system)
    result.update(engine=engine, loadavg_before=load, steady_images_per_s=steady_rate(result))
    result["driver_cpu_ms_per_image"] = 1000 * driver_cpu / max(1, result["images"])
    print(
        f"{engine}: {result['images']} photos in {result['seconds']:.1f} s = {result['images_per_s']:.1f}/s "
        f"(steady {result['steady_images_per_s']:.1f}/s), driver CPU "
        f"{result['driver_cpu_ms_per_image']:.1f} ms/photo, load {load:.2f}",
        file=sys.stderr,
    )
    return result


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def markdown(r: dict[str, Any]) -> str:
    runs: dict[str, list[dict[str, Any]]] = {e: [x for x in r["runs"] if x["engine"] == e] for e in ENGINES}
    rows = []
    for engine in ENGINES:
        xs = runs[engine]
        rows.append(
            f"| {engine} | {r['workers']} | {xs[0]['images']} | {xs[0]['faces']} | {xs[0]['errors']} | "
            f"{spread([x['seconds'] for x in xs])} | {spread([x['images_per_s'] for x in xs])} | "
            f"{spread([x['steady_images_per_s'] for x in xs])} | "
            f"{statistics.median(x['driver_cpu_ms_per_image'] for x in xs):.1f} | "
            f"{statistics.median(x['peak_rss_tree_mb'] for x in xs):.0f} |"
        )
    loads = [x["loadavg_before"] for x in r["runs"]]
    return "\n".join(
        [
            f"## Ingest: local processes vs Ray actors on LFW ({r['date']})\n",
            f"Command: `{r['command']}`  ",
            f"Machine: {describe(r['machine'])}; 1-minute load average {min(loads):.2f}–{max(loads):.2f} "
            f"before the runs, {r['loadavg_end']:.2f} at the end\n",
            "| engine | workers | photos | faces | errors | seconds | photos/s | steady photos/s "
            "| driver CPU ms/photo | peak RSS tree (MB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            f"\nMedian (min–max) of {r['repeats']} runs each, alternating. **Ray ÷ local: "
            f"{r['ratio']:.2f} whole run, {r['ratio_steady']:.2f} steady state.**",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding lfw/")
    parser.add_argument("--limit", type=int, default=2000, help="ingest the first N photos")
    parser.add_argument("--workers", type=int, default=2, help="worker processes / Ray actors")
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine")
    parser.add_argument("--address", default=None, help="a running Ray cluster (default: start one)")
    parser.add_argument("--out", type=Path, default=None, help="also write every number to this JSON file")
    args = parser.parse_args(argv)

    lfw = args.data.resolve() / "lfw"
    photos = list_photos(lfw)[: args.limit] if lfw.is_dir() else []
    if not photos:
        parser.error(f"no photos under {lfw}")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "workers": args.workers,
        "repeats": args.repeats,
        "runs": [],
    }
    for repeat in range(args.repeats):
        for engine in ENGINES if repeat % 2 == 0 else ENGINES[::-1]:
            results["runs"].append(one_run(photos, lfw, args.workers, engine, args.address))
    results["loadavg_end"] = os.getloadavg()[0]
    for key, field in (("ratio", "images_per_s"), ("ratio_steady", "steady_images_per_s")):
        median = {
            e: statistics.median(x[field] for x in results["runs"] if x["engine"] == e) for e in ENGINES
        }
        results[key] = median["ray"] / median["local"]
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
