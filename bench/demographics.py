"""The demographic performance report (``lethe eval groups``) on a large labelled set: per-group FNIR
and FPIR with 95% Wilson intervals at the configured threshold and at ``--threshold``, the
differential and the wrong candidates by group; timed, with the machine.

The labels are yours: a CSV ``image,group[,identity]`` with image paths relative to ``--images``
(docs/benchmarks.md, "Demographic performance"). LFW carries no demographic labels and this script
invents none. To try it, ``--write-arbitrary-labels FILE`` writes a labelling of LFW people by the
first letter of their name, which means nothing about anyone, and exits:

    .venv/bin/python bench/demographics.py --write-arbitrary-labels /tmp/arbitrary.csv \\
        --images ../shared/data/lfw --max-photos 10
    nice .venv/bin/python bench/demographics.py --labels /tmp/arbitrary.csv \\
        --images ../shared/data/lfw --threshold 0.4 --workers 2 --out /tmp/demographics

The measurement is the product's (``lethe.demographics``: ``read_labels``, ``embed_all``,
``measure``), without the data folder or the audit entry the command writes; ``--vectors FILE.npz``
keeps the templates to measure again (another seed, other thresholds) without embedding again.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import describe, machine

from lethe.config import Settings
from lethe.demographics import MIN_IDENTITIES, Labels, measure, read_labels
from lethe.evaluation import embed_all

#: The arbitrary labelling's groups: first letter of the person's folder name.
ARBITRARY = (("A-D", "D"), ("E-J", "J"), ("K-R", "R"), ("S-Z", "Z"))


def arbitrary_group(name: str) -> str:
    first = name[0].upper()
    return next(label for label, last in ARBITRARY if first <= last)


def write_arbitrary_labels(target: Path, images: Path, max_photos: int) -> None:
    rows = 0
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "group"])
        for folder in sorted(p for p in images.iterdir() if p.is_dir()):
            for photo in sorted(folder.glob("*.jpg"))[:max_photos]:
                writer.writerow([f"{folder.name}/{photo.name}", arbitrary_group(folder.name)])
                rows += 1
    print(f"wrote {rows} rows to {target}: an ARBITRARY labelling by first letter of the name")


def embedded(cache: Path | None, labels: Labels, settings: Settings) -> tuple[dict[Path, Any], bool]:
    """Every labelled photo's template (None: no face), from ``cache`` (an .npz this script wrote
    for the same photos) or embedded now and saved there."""
    paths = [r.path for r in labels.rows]
    if cache is not None and cache.is_file():
        held = np.load(cache)
        known = dict(zip(held["paths"].tolist(), held["vectors"], strict=True))
        if set(map(str, paths)) <= set(known):
            return {p: (None if np.isnan(known[str(p)]).any() else known[str(p)]) for p in paths}, True
    vectors = embed_all(paths, settings)
    if cache is not None:
        width = next(len(v) for v in vectors.values() if v is not None)
        rows = [v if v is not None else np.full(width, np.nan, np.float32) for v in vectors.values()]
        np.savez(cache, paths=np.array([str(p) for p in vectors]), vectors=np.vstack(rows))
    return vectors, False


def _cell(rate: dict[str, object]) -> str:
    if rate["rate"] is None:
        return f"not measured (n={rate['n']})"
    low, high = rate["ci95"]  # type: ignore[misc]
    people = rate["ci95_people"]
    over_people = f"; people {people[0] * 100:.2f}-{people[1] * 100:.2f}" if people else ""  # type: ignore[index]
    return (
        f"{float(rate['rate']) * 100:.2f}% ({low * 100:.2f}-{high * 100:.2f}{over_people}) "  # type: ignore[arg-type]
        f"n={rate['n']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--threshold", type=float, action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-identities", type=int, default=MIN_IDENTITIES)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--vectors", type=Path, help="an .npz cache of the templates (read, or written)")
    parser.add_argument("--write-arbitrary-labels", type=Path, metavar="FILE")
    parser.add_argument("--max-photos", type=int, default=10, help="with --write-arbitrary-labels")
    args = parser.parse_args()
    if args.write_arbitrary_labels:
        write_arbitrary_labels(args.write_arbitrary_labels, args.images, args.max_photos)
        return
    if args.labels is None:
        parser.error("--labels is needed (or --write-arbitrary-labels)")
    print(describe(machine()))
    labels = read_labels(args.labels, args.images)
    with tempfile.TemporaryDirectory() as work:
        settings = Settings(data_dir=Path(work), workers=args.workers)
        start = time.perf_counter()
        vectors, cached = embedded(args.vectors, labels, settings)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        thresholds = list(dict.fromkeys([settings.match_threshold, *args.threshold]))
        report = measure(labels, vectors, thresholds, seed=args.seed, min_identities=args.min_identities)
        measuring = time.perf_counter() - start
    counts, protocol = report["labels"], report["protocol"]
    print(
        f"\n{counts['rows']} labelled photos, {counts['unlabelled_excluded']} unlabelled left out; "
        f"gallery {protocol['gallery']} people, {protocol['mated_searches']} mated and "
        f"{protocol['non_mated_searches']} non-mated searches; "
        + (
            "templates from the cache"
            if cached
            else f"embedding {seconds:.0f} s ({counts['rows'] / seconds:.1f} photos/s)"
        )
        + f", measuring {measuring:.1f} s"
    )
    print(
        "\n| group | people | photos | enrolled / held out | no face (mated / non-mated) "
        "| threshold for FPIR <= 0.01 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, g in report["groups"].items():
        fta = g["failure_to_acquire"]
        print(
            f"| {name} | {g['people']} | {g['photos']} | {g['enrolled']} / {g['held_out']} | "
            f"{fta['mated']} / {fta['non_mated']} | {g['threshold_for_target_fpir']} |"
        )
    for result in report["results"]:
        print(f"\nthreshold {result['threshold']}\n")
        print("| group | FNIR (95% CI) | FPIR (95% CI) | wrong candidates same / other group |")
        print("|---|---|---|---:|")
        for name, rates in [*result["groups"].items(), ("all measured", result["all_measured_groups"])]:
            wrong = rates["wrong_candidates"]
            print(
                f"| {name} | {_cell(rates['fnir'])} | {_cell(rates['fpir'])} | "
                f"{wrong['same_group']} / {wrong['other_group']} |"
            )
        print()
        for key in ("fnir", "fpir"):
            print(f"- {result['differential'][key]['words']}")
        print(
            "- wrong candidates by group (row: search, column: returned): "
            f"{result['wrong_candidates_by_group']}"
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "demographic_report.json").write_text(
            json.dumps({**report, "seconds": round(seconds, 1), "machine": machine()}, indent=2)
        )


if __name__ == "__main__":
    main()
