"""Crash soak: SIGKILL Lethe at >= 50 random points each of an ingest, an index rebuild and an
erasure on real LFW photos; after each kill reopen, check every invariant, run the operation again
and check again (``tests/crash_harness.py`` says what is checked and how the points are drawn).

    nice .venv/bin/python bench/crash_soak.py --data ../shared/data --points 60 --out build/crash-soak.json

Set-up (in a temporary folder): a gallery of ``--gallery`` LFW photos (people in name order, plus
``--erase-photos`` photos of Colin Powell) ingested with IVF chosen above ``--exact-max`` faces, so
rebuilds train and fill an IVF index. The operations, each run on a fresh copy of the gallery:

* ingest: ``--ingest`` further LFW photos, ``--workers`` worker processes, a commit every
  ``--commit-every`` photos;
* rebuild: ``Lethe.rebuild_index``;
* erase: ``Lethe.remove_faces`` of every face in the Colin Powell photos.

Half of each operation's points are persistence events (a random one of all the operation's
events, killed just before it), half random times over its duration, alternating; every third
trial is killed again while it restarts. So ``--points 6`` or more gives every operation both kinds
of kill, each also with a second kill: these are the points ``tests/test_crash.py`` leaves to this
soak (it keeps one per operation). Prints a summary with the kills of each kind per operation
(and says when an operation lacks one) and writes every trial to ``--out``; exit status 1 when any
invariant broke. ``LETHE_TEST_CATALOG=postgresql``
and ``LETHE_TEST_INDEX=milvus`` put the catalog on a throwaway PostgreSQL server and the index in
milvus-lite, as they do for the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machine import describe, machine  # noqa: E402

from lethe.config import Settings  # noqa: E402
from lethe.engine import Lethe  # noqa: E402

import crash_harness as harness  # noqa: E402
import pg_server  # noqa: E402
from conftest import backend_settings, consent_source, copy_gallery  # noqa: E402

ERASE_PERSON = "Colin_Powell"
KINDS = ("event", "timed")


def build(
    args: argparse.Namespace, root: Path, settings: harness.SettingsFor
) -> tuple[Path, Path, list[int]]:
    lfw = args.data / "lfw"
    people = sorted(p for p in lfw.iterdir() if p.is_dir() and p.name != ERASE_PERSON)
    photos = [photo for person in people for photo in sorted(person.glob("*.jpg"))]
    gallery_photos = photos[: args.gallery]
    ingest_photos = photos[args.gallery : args.gallery + args.ingest]
    erase_photos = sorted((lfw / ERASE_PERSON).glob("*.jpg"))[: args.erase_photos]
    collection, incoming = root / "collection", root / "incoming"
    for folder, chosen in ((collection, gallery_photos + erase_photos), (incoming, ingest_photos)):
        for photo in chosen:
            target = folder / photo.parent.name / photo.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photo, target)
    base = root / "gallery" / "data"
    with Lethe(Settings(data_dir=base, **settings(base))) as lethe:  # type: ignore[arg-type]
        lethe.add_source(consent_source())
        report = lethe.ingest("events", collection)
        print(
            f"gallery: {report.images} photos, {report.faces} faces, {len(report.errors)} refused", flush=True
        )
        infos = lethe.catalog.faces(lethe.catalog.face_ids().tolist())
    doomed = sorted(f for f, info in infos.items() if f"/{ERASE_PERSON}/" in info.image_uri)
    return base, incoming, doomed


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    def settings(data: Path) -> dict[str, object]:
        extra = {"workers": args.workers, "index_exact_max_faces": args.exact_max}
        return extra | backend_settings(data)  # LETHE_TEST_CATALOG / LETHE_TEST_INDEX, as in the tests

    base, incoming, doomed = build(args, root, settings)
    operations = {
        "ingest": harness.Operation("ingest", target=incoming, commit_every=args.commit_every),
        "rebuild": harness.Operation("rebuild"),
        "erase": harness.Operation("erase", faces=doomed),
    }
    rng = random.Random(args.seed)
    results: dict[str, Any] = {}
    for name in args.operations:
        setup = harness.prepare(
            operations[name], base, Path(tempfile.mkdtemp(dir=root)), settings, copy_gallery
        )
        print(
            f"{name}: {len(setup.events)} persistence events, {setup.seconds:.3f} s uninterrupted",
            flush=True,
        )
        trials = []
        started = time.perf_counter()
        for number in range(args.points):
            workdir = Path(tempfile.mkdtemp(dir=root))
            # Every third trial is killed a second time while it restarts (recovery included).
            second = rng.randint(1, len(setup.events)) if number % 3 == 2 else None
            if number % 2 == 0:
                at = rng.randint(1, len(setup.events))
                trial = harness.trial(setup, workdir, kill_at=at, second_kill_at=second)
                point: dict[str, object] = {"kind": "event", "at": at, "of": len(setup.events)}
            else:
                delay = rng.uniform(0, setup.seconds)
                trial = harness.trial(setup, workdir, delay=delay, second_kill_at=second)
                point = {"kind": "timed", "delay_s": round(delay, 4), "of_s": round(setup.seconds, 4)}
            if trial.second is not None:
                point["second_kill"] = {
                    "at": second,
                    "killed": trial.second.killed,
                    "event": trial.second.event,
                    "where": trial.second.where,
                }
            shutil.rmtree(workdir, ignore_errors=True)
            record = {
                **point,
                "killed": trial.outcome.killed,
                "event": trial.outcome.event,
                "where": trial.outcome.where,
                "after_kill": trial.after_kill,
                "after_rerun": trial.after_rerun,
            }
            trials.append(record)
            status = "ok" if not (trial.after_kill or trial.after_rerun) else "BROKEN"
            again = f" + again at {trial.second.event} [{trial.second.where}]" if trial.second else ""
            print(
                f"  {name} {number + 1}/{args.points} {point['kind']} killed={trial.outcome.killed} "
                f"{trial.outcome.event or ''} [{trial.outcome.where}]{again} {status} "
                f"{trial.after_kill + trial.after_rerun}",
                flush=True,
            )
        results[name] = summarise(trials, setup, time.perf_counter() - started)
    return results


def summarise(trials: list[dict[str, Any]], setup: harness.Setup, seconds: float) -> dict[str, Any]:
    killed = [t for t in trials if t["killed"]]
    return {
        "points": len(trials),
        "kinds": {kind: sum(t["kind"] == kind for t in trials) for kind in KINDS},
        "second_kill_kinds": {
            kind: sum(t["kind"] == kind and "second_kill" in t for t in trials) for kind in KINDS
        },
        "killed": len(killed),
        "finished_before_the_kill": len(trials) - len(killed),
        "second_kills": sum(bool(t.get("second_kill", {}).get("killed")) for t in trials),
        "broken_after_kill": sum(bool(t["after_kill"]) for t in trials),
        "broken_after_rerun": sum(bool(t["after_rerun"]) for t in trials),
        "persistence_events": len(setup.events),
        "event_kinds": dict(Counter(setup.events)),
        "killed_before_event": dict(Counter(t["event"] for t in killed if t["kind"] == "event")),
        "killed_in": dict(Counter(t["where"].split(" < ")[0] for t in killed)),
        "uninterrupted_s": round(setup.seconds, 4),
        "seconds": round(seconds, 1),
        "trials": trials,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("LETHE_TEST_DATA", "../shared/data"))
    )
    parser.add_argument("--points", type=int, default=70, help="kill points per operation")
    parser.add_argument(
        "--operations", nargs="+", default=list(harness.OPERATIONS), choices=harness.OPERATIONS
    )
    parser.add_argument("--gallery", type=int, default=400)
    parser.add_argument("--erase-photos", type=int, default=30)
    parser.add_argument("--ingest", type=int, default=120)
    parser.add_argument("--commit-every", type=int, default=16)
    parser.add_argument("--exact-max", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (args.data / "lfw").is_dir():
        print(f"skipped: LFW not found under {args.data} (set --data or LETHE_TEST_DATA)")
        return 0
    print(describe(machine()), flush=True)
    started = time.time()
    try:
        with tempfile.TemporaryDirectory(prefix="lethe-crash-") as tmp:
            results = run(args, Path(tmp))
    finally:
        pg_server.stop()
    header = (
        f"{'operation':<10} {'points':>6} {'event':>6} {'timed':>6} {'killed':>6} {'again':>6} "
        f"{'broken':>6}  killed in"
    )
    print(f"\n{header}", flush=True)
    for name, result in results.items():
        broken = result["broken_after_kill"] + result["broken_after_rerun"]
        kinds = result["kinds"]
        print(
            f"{name:<10} {result['points']:>6} {kinds['event']:>6} {kinds['timed']:>6} "
            f"{result['killed']:>6} {result['second_kills']:>6} {broken:>6}  {result['killed_in']}"
        )
    for name, result in results.items():
        lacking = [f"no {kind} kill" for kind in KINDS if not result["kinds"][kind]]
        article = {"event": "an", "timed": "a"}
        lacking += [
            f"no second kill after {article[kind]} {kind} kill"
            for kind in KINDS
            if not result["second_kill_kinds"][kind]
        ]
        if lacking:
            print(f"note: {name} had {', '.join(lacking)} (--points 6 or more covers them)")

    report = {
        "machine": machine(),
        "load_average_end": os.getloadavg(),
        "minutes": round((time.time() - started) / 60, 1),
        "args": {k: str(v) for k, v in vars(args).items()},
        "backends": {k: os.environ.get(k, "") for k in ("LETHE_TEST_CATALOG", "LETHE_TEST_INDEX")},
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 1 if any(r["broken_after_kill"] or r["broken_after_rerun"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
