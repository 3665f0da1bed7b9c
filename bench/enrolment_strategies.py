"""Could a guest's photos be found better than by their one selfie? Offline strategies on the plan
of ``enrolled_only_lfw.py``, each checked on more than one seeded plan (issue 17).

Usage: nice .venv/bin/python bench/enrolment_strategies.py [--data ../shared/data] [--seeds 0 1]
[--flip] [--workers 2] [--out FILE.json]

For each seed: the plan of ``enrolled_only_lfw.py`` (200 guests, 5,000 bystanders, at most 20
gallery photos per guest, the first photo that enrols is the selfie), the gallery ingested into an
``all_faces`` source in a fresh data folder (default settings; ``--flip``: ``embed_flip`` on, every
face's template averaged with its mirror image's), and each selfie's enrolment template
(``enrolment_template``, the mirrored average). Then, in memory, rules that decide which faces a
guest gets:

* ``plain T``: a face goes to a guest when its cosine to the selfie template is >= T (the ingest's
  rule at ``match_threshold`` T).
* ``expand Ts T``: template expansion. The faces at >= Ts from the selfie are taken as the guest's
  own; their templates and the selfie's are averaged into a second template; a face goes to the guest
  when either template reaches T (one round, order-free).

Reported per rule: found (micro share of the guests' gallery photos in which a face was found), real
wrong photos (another person's photo in a guest's list, matched through the photo's central face,
LFW's labelled person, unless ``SAME_PERSON`` says LFW files the guest under that name too; matches
through a background face were found by eye to be mostly the guest in the background, see
docs/benchmarks.md) and bystander photos whose central face was stored.
A rule chosen on one seed is only worth anything if it holds on the others.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from enrolled_only_lfw import SOURCE, copy_gallery, make_plan, people_of, spec, stored_faces
from machine import describe, machine

from lethe.config import Settings
from lethe.engine import Lethe
from lethe.errors import InputError
from lethe.imaging import decode_image
from lethe.privacy.consent import enrolment_template

PLAIN = (0.5, 0.525, 0.55)
#: LFW files one person under two names (checked by eye): a guest shown the other name's photo is
#: shown their own photo, not a wrong one.
SAME_PERSON = {
    "Sung_Hong_Choi": "Choi_Sung-hong",
    "Mireya_Elisa_Moscoso_Rodriguez": "Mireya_Moscoso",
}
EXPAND_SEEDS = (0.6, 0.625, 0.65)
EXPAND_THRESHOLDS = (0.525, 0.54, 0.55, 0.56)


def embed_plan(lfw: Path, seed: int, flip: bool, workers: int, tmp: Path) -> dict[str, Any]:
    """The plan's faces (photo, central, template) and the guests' selfie templates."""
    plan = make_plan(people_of(lfw), 200, 5000, 20, seed)
    with Lethe(Settings(data_dir=tmp / "data", workers=workers, embed_flip=flip)) as engine:
        selfies = []
        for guest in plan.guests:
            for candidate in guest.order:
                pixels = decode_image((lfw / candidate).read_bytes(), max_pixels=50_000_000).pixels
                try:
                    selfies.append(enrolment_template(engine.pipeline, pixels))
                except InputError:
                    continue
                guest.selfie = candidate
                guest.gallery = [p for p in guest.order if p != candidate][: plan.cap]
                break
        photos = sorted({p for g in plan.guests for p in g.gallery} | set(plan.bystanders))
        root = copy_gallery(lfw, photos, tmp / "gallery")
        engine.add_source(spec("all_faces"))
        engine.ingest(SOURCE, root, actor="bench")
        faces = stored_faces(engine, root)
        vectors = engine.catalog.face_templates([f["face"] for f in faces])
    return {
        "faces": np.vstack([vectors[f["face"]] for f in faces]).astype(np.float32),
        "photo": [f["photo"] for f in faces],
        "central": np.array([f["central"] for f in faces]),
        "selfies": np.vstack(selfies).astype(np.float32),
        "galleries": [set(g.gallery) for g in plan.guests],
        "names": [g.name for g in plan.guests],
        "bystanders": set(plan.bystanders),
    }


def evaluate(data: dict[str, Any], hit: np.ndarray) -> dict[str, Any]:
    photo, central = data["photo"], data["central"]
    detected = set(photo)
    got = total = wrong = 0
    for j, (gallery, name) in enumerate(zip(data["galleries"], data["names"], strict=True)):
        rows = np.flatnonzero(hit[:, j])
        shown = {photo[i] for i in rows}
        through_central = {
            photo[i] for i in rows if central[i] and SAME_PERSON.get(photo[i].split("/")[0]) != name
        }
        got += len(shown & gallery & detected)
        total += len(gallery & detected)
        wrong += len((shown - gallery) & through_central)
    names = data["names"]
    bystanders = sum(
        1
        for i in np.flatnonzero(hit.any(axis=1))
        if central[i]
        and photo[i] in data["bystanders"]
        and any(SAME_PERSON.get(photo[i].split("/")[0]) != names[j] for j in np.flatnonzero(hit[i]))
    )
    return {"found": round(got / total, 4), "wrong_photos": wrong, "bystander_faces": bystanders}


def expanded_scores(data: dict[str, Any], seed_threshold: float) -> np.ndarray:
    faces, selfies = data["faces"], data["selfies"]
    base = faces @ selfies.T
    scores = base.copy()
    for j in range(len(selfies)):
        own = np.flatnonzero(base[:, j] >= seed_threshold)
        if len(own):
            centre = faces[own].sum(axis=0) + selfies[j]
            scores[:, j] = np.maximum(base[:, j], faces @ (centre / np.linalg.norm(centre)))
    return scores


def rules(data: dict[str, Any]) -> list[dict[str, Any]]:
    base = data["faces"] @ data["selfies"].T
    out = [{"rule": f"plain {t}", **evaluate(data, base >= t)} for t in PLAIN]
    for seed_threshold in EXPAND_SEEDS:
        scores = expanded_scores(data, seed_threshold)
        for t in EXPAND_THRESHOLDS:
            out.append({"rule": f"expand {seed_threshold} {t}", **evaluate(data, scores >= t)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--flip", action="store_true", help="embed_flip on for the gallery's faces")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    lfw = args.data / "lfw"
    if not lfw.is_dir():
        print(f"skipped: no LFW at {lfw} (give --data)", file=sys.stderr)
        return 0
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="lethe-strategies-") as tmp:
            data = embed_plan(lfw, seed, args.flip, args.workers, Path(tmp))
        for row in rules(data):
            table.setdefault(row.pop("rule"), {})[seed] = row
    print(f"machine: {describe(machine())}; flip={args.flip}")
    print("| rule | " + " | ".join(f"seed {s}: found / wrong / bystanders" for s in args.seeds) + " |")
    for rule, per_seed in table.items():
        cells = [
            f"{r['found']:.1%} / {r['wrong_photos']} / {r['bystander_faces']}" for r in per_seed.values()
        ]
        print(f"| {rule} | " + " | ".join(cells) + " |")
    if args.out:
        args.out.write_text(json.dumps({"flip": args.flip, "seeds": args.seeds, "rules": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
