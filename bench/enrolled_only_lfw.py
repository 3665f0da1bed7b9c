"""Consent-gated ingest on LFW (issue 17): guests found, bystanders stored, wrong photos shown, and
ingest speed of ``enrolled_only`` against ``all_faces``, in one run.

Usage: nice .venv/bin/python bench/enrolled_only_lfw.py [--data ../shared/data] [--guests 200]
[--bystanders 5000] [--per-guest-cap 20] [--scan-guests 20] [--scan-bystanders 300] [--workers 2]
[--seed 0] [--repeats 1] [--quick] [--out FILE.json]

Plan (``--seed``): ``--guests`` people drawn among those with >= 5 photos; each guest's photos in a
seeded order, the first that enrols is their selfie (held out of the gallery), the next
``--per-guest-cap`` are their gallery photos (so that George W. Bush's 530 do not dominate);
``--bystanders`` photos drawn among the photos of everyone else. The gallery is copied to a
temporary folder (the ingest refuses symbolic links that leave the folder), ``<Person>/<file>``.

* **Run A** (enrol, then ingest): an ``enrolled_only`` source in a fresh data folder; every guest is
  enrolled from their selfie (``consents.add``, the scan of the still empty source is trivial), then
  the gallery is ingested (timed).
* **Run B** (``all_faces``): the same gallery into a fresh data folder (timed). Its faces also give
  the photos in which the detector found a face (the denominator of "found") and a threshold sweep:
  each guest's selfie template against every face, the ingest's rule (at the configured threshold it
  must reproduce run A: ``sweep_agrees_with_run_a``).
* ``--repeats N``: N-1 more timed pairs, ``all_faces`` first. Each ingest also records the CPU time
  of this process and of its reaped workers, steadier than photos/s on a shared machine.
* **Run C** (ingest, then enrol: the scan path): the first ``--scan-guests`` guests' gallery photos
  plus ``--scan-bystanders`` of the bystanders go into a fresh ``enrolled_only`` source with nobody
  enrolled (every face discarded, the photos' rows kept), then each guest enrols and the enrolment
  scans every stored photo (timed one by one). A smaller gallery because each scan reads, detects and
  embeds every photo of the source again, in one process.

Measured per run from the catalog: per guest, found = their gallery photos in ``consents.photos(id)``
over those in which the detector found a face (and over all their gallery photos); macro and micro
averages; bystander faces stored (faces whose photo is a bystander's, listed); wrong photos shown
(photos in a guest's list that are someone else's, listed with the matched face, whether it is the
photo's central face -- within 0.15 image diagonals of the centre, LFW's labelled person -- and its
cosine to the guest's template). A wrong photo matched only through a background face may show the
guest for real; the listing lets a reader check. Photos that ``erasure_lfw.LABEL_FIXES`` knows to be
mislabelled are left out of the plan. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from erasure_lfw import LABEL_FIXES, MAX_CENTRE_DIST
from machine import describe, machine
from sqlalchemy import func, select

from lethe.catalog.consent_tables import ConsentFaceRow
from lethe.catalog.tables import FaceRow, ImageRow
from lethe.config import Settings
from lethe.engine import Lethe
from lethe.errors import InputError
from lethe.imaging import decode_image
from lethe.ingest.inputs import IMAGE_SUFFIXES
from lethe.privacy import SourceSpec
from lethe.privacy.consent import enrolled, enrolment_template

MIN_PHOTOS = 5
SOURCE = "event"


@dataclass
class Guest:
    name: str
    order: list[str]  # their photos (relative paths), seeded order: selfie candidates, then gallery
    selfie: str = ""
    tries: int = 0
    gallery: list[str] = field(default_factory=list)


@dataclass
class Plan:
    guests: list[Guest]
    bystanders: list[str]
    cap: int


def people_of(lfw: Path) -> dict[str, list[str]]:
    """Person -> their photos as ``Person/file`` (sorted), mislabelled photos left out."""
    people: dict[str, list[str]] = {}
    for folder in sorted(p for p in lfw.iterdir() if p.is_dir()):
        photos = [
            f"{folder.name}/{p.name}"
            for p in sorted(folder.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES and f"{folder.name}/{p.name}" not in LABEL_FIXES
        ]
        if photos:
            people[folder.name] = photos
    return people


def make_plan(people: dict[str, list[str]], guests: int, bystanders: int, cap: int, seed: int) -> Plan:
    rng = random.Random(seed)
    eligible = sorted(p for p, photos in people.items() if len(photos) >= MIN_PHOTOS)
    chosen = sorted(rng.sample(eligible, min(guests, len(eligible))))
    plan = [Guest(name, rng.sample(people[name], len(people[name]))) for name in chosen]
    taken = set(chosen)
    pool = sorted(photo for person, photos in people.items() if person not in taken for photo in photos)
    return Plan(plan, sorted(rng.sample(pool, min(bystanders, len(pool)))), cap)


def spec(mode: str) -> SourceSpec:
    return SourceSpec.validated(
        name=SOURCE,
        lawful_basis="consent",
        art9_condition="explicit_consent",
        purpose="find my photos at the event (benchmark on LFW)",
        jurisdiction="FR",
        retention_days=30,
        mode=mode,
    )


def copy_gallery(lfw: Path, photos: list[str], target: Path) -> Path:
    for rel in photos:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lfw / rel, target / rel)
    return target


def enrol(engine: Lethe, lfw: Path, guest: Guest, cap: int | None) -> tuple[int, float]:
    """Enrol a guest from the first of their photos that enrols; their gallery is the next ``cap``
    (``None``: already chosen). Returns the consent id and the seconds ``consents.add`` took."""
    for tries, candidate in enumerate(guest.order if cap is not None else [guest.selfie], 1):
        t0 = time.perf_counter()
        try:
            view = engine.consents.add(
                SOURCE, (lfw / candidate).read_bytes(), actor="bench", contact=None, scan=True
            )
        except InputError:  # no face, or two of similar size
            continue
        seconds = time.perf_counter() - t0
        if cap is not None:
            guest.selfie, guest.tries = candidate, tries
            guest.gallery = [p for p in guest.order if p != candidate][:cap]
        return view.id, seconds
    raise SystemExit(f"no photo of {guest.name} enrols")


def cpu_seconds() -> float:
    """CPU time of this process and of its ended children (the ingest's worker processes, reaped
    when the ingest ends): less sensitive than wall time to other jobs on a shared machine."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def ingest(engine: Lethe, target: Path, label: str) -> dict[str, Any]:
    engine.prepare_models()  # models loaded before the clock starts, in every run alike
    total = sum(1 for p in target.rglob("*") if p.is_file())
    step = max(1, total // 10)

    def progress(done: int, _total: int) -> None:
        if done % step == 0:
            print(f"  {label}: {done}/{total} photos, {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    load = os.getloadavg()[0]
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    report = engine.ingest(SOURCE, target, progress=progress, actor="bench")
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    return {
        "photos": total,
        "seconds": report.seconds,
        "wall_seconds": wall,
        "photos_per_s": total / report.seconds,
        "cpu_seconds": cpu,
        "cpu_ms_per_photo": 1000 * cpu / total,
        "loadavg_start": load,
        "loadavg_end": os.getloadavg()[0],
        "report": report.as_dict(),
    }


def central(box: tuple[int, int, int, int], width: int, height: int) -> bool:
    left, top, right, bottom = box
    dx, dy = (left + right) / 2 - width / 2, (top + bottom) / 2 - height / 2
    return float(np.hypot(dx, dy)) <= MAX_CENTRE_DIST * float(np.hypot(width, height))


def stored_faces(engine: Lethe, root: Path) -> list[dict[str, Any]]:
    """Every stored face: id, photo (``Person/file``), central or not, the consents it matched."""
    with engine.catalog.session() as session:
        rows = session.execute(
            select(
                FaceRow.id,
                ImageRow.uri,
                ImageRow.width,
                ImageRow.height,
                FaceRow.box_left,
                FaceRow.box_top,
                FaceRow.box_right,
                FaceRow.box_bottom,
            ).join(ImageRow, ImageRow.id == FaceRow.image_id)
        ).all()
        links: dict[int, list[int]] = defaultdict(list)
        for consent_id, face_id in session.execute(select(ConsentFaceRow.consent_id, ConsentFaceRow.face_id)):
            links[int(face_id)].append(int(consent_id))
    return [
        {
            "face": int(face_id),
            "photo": Path(uri).relative_to(root).as_posix(),
            "central": central((left, top, right, bottom), width, height),
            "consents": sorted(links.get(int(face_id), [])),
        }
        for face_id, uri, width, height, left, top, right, bottom in rows
    ]


def photo_rows(engine: Lethe) -> int:
    with engine.catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(ImageRow)) or 0)


def measure(
    engine: Lethe, root: Path, consent_of: dict[str, int], guests: list[Guest], bystanders: set[str]
) -> dict[str, Any]:
    """Raw figures of one enrolled_only run (``found`` is completed once run B says where faces are)."""
    source_id = engine.catalog.source(SOURCE).id
    keys = enrolled(engine.store, source_id)
    template = dict(zip((int(c) for c in keys.consent_ids), keys.templates, strict=True))
    faces = stored_faces(engine, root)
    vectors = engine.catalog.face_templates([f["face"] for f in faces])
    name_of = {consent_id: name for name, consent_id in consent_of.items()}

    def score(face_id: int, consent_id: int) -> float:
        return round(float(np.asarray(vectors[face_id], np.float32) @ template[consent_id]), 4)

    by_photo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in faces:
        by_photo[f["photo"]].append(f)
    per_guest: dict[str, dict[str, Any]] = {}
    wrong: list[dict[str, Any]] = []
    for guest in guests:
        if guest.name not in consent_of:
            continue
        cid = consent_of[guest.name]
        shown = {Path(p.uri).relative_to(root).as_posix() for p in engine.consents.photos(cid)}
        mine = set(guest.gallery)
        per_guest[guest.name] = {"consent": cid, "shown": sorted(shown & mine), "gallery": len(mine)}
        for photo in sorted(shown - mine):
            matched = [f for f in by_photo[photo] if cid in f["consents"]]
            wrong.append(
                {
                    "guest": guest.name,
                    "photo": photo,
                    "bystander_photo": photo in bystanders,
                    "matched_central_face": any(f["central"] for f in matched),
                    "scores": [score(f["face"], cid) for f in matched],
                }
            )
    in_bystander_photos = [
        {
            "photo": f["photo"],
            "central": f["central"],
            "matched": [name_of.get(c, str(c)) for c in f["consents"]],
            "scores": [score(f["face"], c) for c in f["consents"]],
        }
        for f in faces
        if f["photo"] in bystanders
    ]
    return {
        "faces_stored": len(faces),
        "faces_stored_not_central": sum(not f["central"] for f in faces),
        "photo_rows": photo_rows(engine),
        "bystander_faces_stored": len(in_bystander_photos),
        "bystander_faces": in_bystander_photos,
        "wrong_photos_shown": len(wrong),
        "wrong_photos_central_face": sum(w["matched_central_face"] for w in wrong),
        "wrong_photos_background_face_only": sum(not w["matched_central_face"] for w in wrong),
        "wrong": wrong,
        "per_guest": per_guest,
    }


def found(run: dict[str, Any], detected: set[str], guests: list[Guest]) -> None:
    """Shares of each guest's photos found: over the photos with a detected face, and over all."""
    shares, shares_all, hit, hit_all, denominator, everything = [], [], 0, 0, 0, 0
    below: list[dict[str, Any]] = []
    for guest in guests:
        row = run["per_guest"].get(guest.name)
        if row is None:
            continue
        with_face = [p for p in guest.gallery if p in detected]
        got = set(row["shown"])
        n, n_all = len(got & set(with_face)), len(got)
        row |= {"detected": len(with_face), "found": n, "missed": sorted(set(with_face) - got)}
        row["share"] = n / len(with_face) if with_face else 1.0
        row["share_all"] = n_all / len(guest.gallery)
        shares.append(row["share"])
        shares_all.append(row["share_all"])
        hit, hit_all = hit + n, hit_all + n_all
        denominator, everything = denominator + len(with_face), everything + len(guest.gallery)
        if row["share"] < 0.95:
            below.append({"guest": guest.name, "found": n, "detected": len(with_face)})
    run["found"] = {
        "guests": len(shares),
        "gallery_photos": everything,
        "photos_with_face": denominator,
        "macro": float(np.mean(shares)),
        "micro": hit / max(1, denominator),
        "min": float(np.min(shares)),
        "macro_all_photos": float(np.mean(shares_all)),
        "micro_all_photos": hit_all / max(1, everything),
        "guests_below_95": below,
    }


def run_a(lfw: Path, tmp: Path, plan: Plan, workers: int) -> tuple[dict[str, Any], Path]:
    """Enrol every guest into the empty source, then ingest the gallery."""
    bystanders = set(plan.bystanders)
    with Lethe(Settings(data_dir=tmp / "data-a", workers=workers)) as engine:
        engine.add_source(spec("enrolled_only"))
        engine.prepare_models()
        consent_of: dict[str, int] = {}
        t0 = time.perf_counter()
        for guest in plan.guests:
            consent_of[guest.name], _ = enrol(engine, lfw, guest, plan.cap)
        enrol_s = time.perf_counter() - t0
        gallery = [p for g in plan.guests for p in g.gallery] + plan.bystanders
        root = copy_gallery(lfw, gallery, tmp / "gallery")
        print(f"run A: {len(consent_of)} guests enrolled in {enrol_s:.0f} s; ingesting", file=sys.stderr)
        timing = ingest(engine, root, "A enrolled_only")
        out = {"enrol_seconds": enrol_s, "ingest": timing} | measure(
            engine, root, consent_of, plan.guests, bystanders
        )
        out["settings"] = {
            "embedder": engine.settings.embedder,
            "detector": engine.settings.detector,
            "match_threshold": engine.settings.match_threshold,
            "workers": workers,
        }
    return out, root


def timing_pair(lfw: Path, root: Path, tmp: Path, plan: Plan, workers: int, k: int) -> dict[str, Any]:
    """One more timed ingest of the gallery in each mode, ``all_faces`` first this time (runs A and
    B go ``enrolled_only`` first), each into a fresh data folder."""
    out: dict[str, Any] = {}
    for mode in ("all_faces", "enrolled_only"):
        data = tmp / f"data-{mode}-{k}"
        with Lethe(Settings(data_dir=data, workers=workers)) as engine:
            engine.add_source(spec(mode))
            if mode == "enrolled_only":
                engine.prepare_models()
                for guest in plan.guests:
                    enrol(engine, lfw, guest, None)
            out[mode] = ingest(engine, root, f"repeat {k} {mode}")
        shutil.rmtree(data)
    out["ratio"] = out["enrolled_only"]["photos_per_s"] / out["all_faces"]["photos_per_s"]
    out["cpu_ratio"] = out["all_faces"]["cpu_ms_per_photo"] / out["enrolled_only"]["cpu_ms_per_photo"]
    return out


def run_b(lfw: Path, root: Path, tmp: Path, plan: Plan, workers: int) -> tuple[dict[str, Any], set[str]]:
    """The same gallery, every face stored; which photos have a face, and a central face; the
    threshold sweep from its faces."""
    with Lethe(Settings(data_dir=tmp / "data-b", workers=workers)) as engine:
        engine.add_source(spec("all_faces"))
        print("run B: all_faces ingest", file=sys.stderr)
        timing = ingest(engine, root, "B all_faces")
        faces = stored_faces(engine, root)
        vectors = engine.catalog.face_templates([f["face"] for f in faces])
        settings = engine.settings
        selfies = []
        for guest in plan.guests:
            image = decode_image((lfw / guest.selfie).read_bytes(), max_pixels=settings.max_image_pixels)
            selfies.append(enrolment_template(engine.pipeline, image.pixels))  # as consents.add makes it
    detected = {f["photo"] for f in faces}
    scores = np.vstack([np.asarray(vectors[f["face"]], np.float32) for f in faces]) @ np.vstack(selfies).T
    grid = sorted({round(0.4 + 0.025 * i, 3) for i in range(9)} | {settings.match_threshold})
    return {
        "ingest": timing,
        "faces_stored": len(faces),
        "photos_with_face": len(detected),
        "photos_with_central_face": len({f["photo"] for f in faces if f["central"]}),
        "sweep": [sweep_at(t, scores, faces, plan, detected) for t in grid],
    }, detected


def sweep_at(
    threshold: float, scores: np.ndarray, faces: list[dict[str, Any]], plan: Plan, detected: set[str]
) -> dict[str, Any]:
    """What enrolled_only would show at ``threshold``, from every face of run B and each guest's
    selfie template (the ingest's rule: a photo is a guest's when one of its faces matches)."""
    bystanders = set(plan.bystanders)
    hit = scores >= threshold
    shares, got, denominator, wrong, wrong_central = [], 0, 0, 0, 0
    for j, guest in enumerate(plan.guests):
        rows = np.flatnonzero(hit[:, j])
        shown = {faces[i]["photo"] for i in rows}
        central_shown = {faces[i]["photo"] for i in rows if faces[i]["central"]}
        with_face = set(guest.gallery) & detected
        n = len(shown & with_face)
        shares.append(n / len(with_face) if with_face else 1.0)
        got, denominator = got + n, denominator + len(with_face)
        others = shown - set(guest.gallery)
        wrong, wrong_central = wrong + len(others), wrong_central + len(others & central_shown)
    stored = hit.any(axis=1)
    return {
        "threshold": threshold,
        "found_macro": float(np.mean(shares)),
        "found_micro": got / max(1, denominator),
        "found_min": float(np.min(shares)),
        "wrong_photos_shown": wrong,
        "wrong_photos_central_face": wrong_central,
        "bystander_faces_stored": sum(
            bool(s) for s, f in zip(stored, faces, strict=True) if f["photo"] in bystanders
        ),
    }


def run_c(
    lfw: Path, tmp: Path, plan: Plan, scan_guests: int, scan_bystanders: int, workers: int
) -> dict[str, Any]:
    """Ingest first with nobody enrolled, then enrol guests one by one (each scans the source)."""
    guests = plan.guests[:scan_guests]
    bystanders = plan.bystanders[:scan_bystanders]
    gallery = [p for g in guests for p in g.gallery] + bystanders
    root = copy_gallery(lfw, gallery, tmp / "gallery-c")
    with Lethe(Settings(data_dir=tmp / "data-c", workers=workers)) as engine:
        engine.add_source(spec("enrolled_only"))
        print(f"run C: {len(gallery)} photos, nobody enrolled; then {len(guests)} scans", file=sys.stderr)
        timing = ingest(engine, root, "C before enrolment")
        rows = photo_rows(engine)
        consent_of: dict[str, int] = {}
        scans: list[float] = []
        for k, guest in enumerate(guests, 1):
            consent_of[guest.name], seconds = enrol(engine, lfw, guest, None)
            scans.append(seconds)
            print(f"  scan {k}/{len(guests)}: {seconds:.1f} s", file=sys.stderr)
        out = {
            "gallery_photos": len(gallery),
            "guests": len(guests),
            "bystanders": len(bystanders),
            "ingest": timing,
            "photo_rows_before_enrolment": rows,
            "scan_seconds": scans,
            "scan_seconds_median": float(np.median(scans)),
            "scan_photos_per_s": rows / float(np.median(scans)),
        } | measure(engine, root, consent_of, guests, set(bystanders))
    return out


def summary(r: dict[str, Any]) -> dict[str, Any]:
    def brief(run: dict[str, Any]) -> dict[str, Any]:
        keys = ("faces_stored", "bystander_faces_stored", "wrong_photos_shown", "wrong_photos_central_face")
        return (
            {k: run[k] for k in keys}
            | {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in run["found"].items()
                if k != "guests_below_95"
            }
            | {"guests_below_95": len(run["found"]["guests_below_95"])}
        )

    out = {
        "enrol_then_ingest": brief(r["run_a"]),
        "photos_per_s": {
            "enrolled_only": round(r["run_a"]["ingest"]["photos_per_s"], 2),
            "all_faces": round(r["run_b"]["ingest"]["photos_per_s"], 2),
            "ratio": round(r["ratio"], 3),
        },
        "cpu_ms_per_photo": {
            "enrolled_only": round(r["run_a"]["ingest"]["cpu_ms_per_photo"], 1),
            "all_faces": round(r["run_b"]["ingest"]["cpu_ms_per_photo"], 1),
            "photos_per_cpu_s_ratio": round(r["cpu_ratio"], 3),
        },
        "loadavg": [
            round(r[run]["ingest"][f"loadavg_{at}"], 2)
            for run in ("run_a", "run_b")
            for at in ("start", "end")
        ],
    }
    if r["repeats"]:
        ratios = [r["ratio"]] + [x["ratio"] for x in r["repeats"]]
        cpu = [r["cpu_ratio"]] + [x["cpu_ratio"] for x in r["repeats"]]
        out["repeats"] = {
            "ratio": [round(x, 3) for x in ratios],
            "ratio_median": round(float(np.median(ratios)), 3),
            "photos_per_cpu_s_ratio": [round(x, 3) for x in cpu],
            "photos_per_s": [
                [round(x[m]["photos_per_s"], 2) for m in ("enrolled_only", "all_faces")] for x in r["repeats"]
            ],
            "loadavg": [
                [
                    round(x[m][f"loadavg_{a}"], 2)
                    for m in ("all_faces", "enrolled_only")
                    for a in ("start", "end")
                ]
                for x in r["repeats"]
            ],
        }
    out["sweep_agrees_with_run_a"] = r["sweep_agrees_with_run_a"]
    keys = ("threshold", "found_micro", "found_min", "wrong_photos_shown", "wrong_photos_central_face")
    out["sweep"] = [{k: round(x[k], 4) for k in keys} for x in r["run_b"]["sweep"]]
    if "run_c" in r:
        c = r["run_c"]
        out["ingest_then_enrol"] = brief(c) | {
            "scan_seconds_median": round(c["scan_seconds_median"], 1),
            "scan_photos_per_s": round(c["scan_photos_per_s"], 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    default_data = Path(os.environ.get("LETHE_TEST_DATA", "../shared/data"))
    parser.add_argument("--data", type=Path, default=default_data, help="folder holding lfw/")
    sizes = {"guests": 200, "bystanders": 5000, "scan_guests": 20, "scan_bystanders": 300}
    quick = {"guests": 20, "bystanders": 300, "scan_guests": 5, "scan_bystanders": 100}
    parser.add_argument("--guests", type=int, help=f"default {sizes['guests']}")
    parser.add_argument("--bystanders", type=int, help=f"default {sizes['bystanders']}")
    parser.add_argument("--per-guest-cap", type=int, default=20, help="gallery photos per guest, at most")
    parser.add_argument(
        "--scan-guests",
        type=int,
        help=f"guests enrolled after the ingest (0: none; default {sizes['scan_guests']})",
    )
    parser.add_argument(
        "--scan-bystanders",
        type=int,
        help=f"bystander photos of that run (default {sizes['scan_bystanders']})",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed ingest pairs (after A and B, all_faces first)"
    )
    parser.add_argument("--quick", action="store_true", help=f"smaller defaults: {quick}")
    parser.add_argument("--tmp", type=Path, default=None, help="where the temporary folders go")
    parser.add_argument("--out", type=Path, default=None, help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    for key, value in (quick if args.quick else sizes).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    lfw = args.data.resolve() / "lfw"
    if not lfw.is_dir():
        parser.error(f"no LFW under {lfw} (set --data or LETHE_TEST_DATA)")
    plan = make_plan(people_of(lfw), args.guests, args.bystanders, args.per_guest_cap, args.seed)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "plan": {
            "guests": len(plan.guests),
            "bystanders": len(plan.bystanders),
            "per_guest_cap": args.per_guest_cap,
            "min_photos": MIN_PHOTOS,
            "seed": args.seed,
            "left_out_mislabelled": sorted(LABEL_FIXES),
        },
    }
    print(describe(results["machine"]), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lethe-enrolled-", dir=args.tmp) as name:
        tmp = Path(name)
        results["run_a"], root = run_a(lfw, tmp, plan, args.workers)
        results["run_b"], detected = run_b(lfw, root, tmp, plan, args.workers)
        results["repeats"] = [
            timing_pair(lfw, root, tmp, plan, args.workers, k) for k in range(1, args.repeats)
        ]
        if args.scan_guests:
            results["run_c"] = run_c(lfw, tmp, plan, args.scan_guests, args.scan_bystanders, args.workers)
    results["plan"] |= {
        "guest_gallery_photos": sum(len(g.gallery) for g in plan.guests),
        "selfie_tries": {g.name: g.tries for g in plan.guests if g.tries > 1},
        "selfies": {g.name: g.selfie for g in plan.guests},
    }
    found(results["run_a"], detected, plan.guests)
    if "run_c" in results:
        found(results["run_c"], detected, plan.guests)
    results["ratio"] = results["run_a"]["ingest"]["photos_per_s"] / results["run_b"]["ingest"]["photos_per_s"]
    results["cpu_ratio"] = (
        results["run_b"]["ingest"]["cpu_ms_per_photo"] / results["run_a"]["ingest"]["cpu_ms_per_photo"]
    )
    default = next(
        x
        for x in results["run_b"]["sweep"]
        if x["threshold"] == results["run_a"]["settings"]["match_threshold"]
    )
    results["sweep_agrees_with_run_a"] = (
        abs(default["found_micro"] - results["run_a"]["found"]["micro"]) < 1e-9
        and default["wrong_photos_shown"] == results["run_a"]["wrong_photos_shown"]
        and default["bystander_faces_stored"] == results["run_a"]["bystander_faces_stored"]
    )
    results["summary"] = summary(results)
    print(json.dumps(results["summary"], indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
