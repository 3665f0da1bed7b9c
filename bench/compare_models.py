"""dlib's ResNet against SFace on the same LFW faces, in one run: View 2, 1:N and erasure, with flip
averaging, score fusion and the two-model check for erasure.

Usage: nice .venv/bin/python bench/compare_models.py [--data ../shared/data]
[--cache bench/.cache/lfw_faces.npz] [--workers 2] [--distractors 0 100000 1000000] [--people N]
[--skip-erasure] [--plot docs/plots/models_roc_det.png] [--out FILE.json]

Faces: one YuNet detection pass over every LFW photo, each face embedded by every model
(bench/lfw_embeddings.py ``--variants sface sface-flip onnx``; ``onnx`` is dlib's ResNet on ONNX
Runtime, the same templates as dlib's own runtime), so the models see exactly the same faces and
landmarks. dlib's own shipped pipeline (HOG detector) is measured by identify_lfw.py and
erasure_lfw.py with ``LETHE_EMBEDDER=onnx LETHE_DETECTOR=hog``.

Variants: ``sface``, ``sface-flip`` (each template averaged with its mirror image's), ``dlib``,
``fusion`` (score = mean of SFace's and dlib's cosines: the two unit templates concatenated and
scaled by 1/sqrt(2), so one inner product gives that mean) and, for erasure only, ``two-model``
(find_person under each model; a face is erased automatically only when both put it in their
automatic band, and is a review candidate otherwise; SFace's review band finds the candidates, dlib's
search stops at its automatic threshold: it only vetoes).

Per variant: LFW View 2 accuracy (10 folds) and TAR at FAR 1e-3 on the central faces; 1:N as
identify_lfw.py (rank-1, FNIR at FPIR 0.01 / 0.003 at each gallery size); erasure as erasure_lfw.py
(people with >= 10 photos, oracle reviewer) over a sweep of automatic thresholds at one review
threshold: the lowest automatic threshold from which no higher one erases anyone wrongfully, its
automatic share, its share after review and the review candidates shown per person. The groups
where dlib failed: the people in dlib's wrongful erasures just below its zero-wrongful threshold
(both the requester and the person wrongly erased); each variant's automatic share and wrongful
count are also given for those people alone.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from erasure_lfw import Model, aggregate, labels, person_run, recommend  # noqa: E402
from identify_lfw import identify  # noqa: E402
from lfw_embeddings import DEFAULT_CACHE, LfwFaces, load_variants  # noqa: E402
from machine import describe, machine  # noqa: E402

from lethe.calibration import DEFAULT_THRESHOLDS  # noqa: E402
from lethe.evaluation import EvalResult, evaluate, plot_roc_det, read_pairs, tar_at_far  # noqa: E402
from lethe.index.faiss_index import FaissIndex  # noqa: E402

SFACE, DLIB = DEFAULT_THRESHOLDS["sface"], DEFAULT_THRESHOLDS["dlib"]
#: Automatic thresholds swept per variant, and the review threshold each sweep uses.
SWEEPS: dict[str, tuple[list[float], float]] = {
    "sface": ([round(0.55 + 0.025 * i, 3) for i in range(7)], SFACE.erasure_review_threshold),
    "sface-flip": ([round(0.55 + 0.025 * i, 3) for i in range(7)], SFACE.erasure_review_threshold),
    "dlib": ([round(0.95 + 0.005 * i, 3) for i in range(9)], DLIB.erasure_review_threshold),
    "fusion": ([round(0.74 + 0.02 * i, 3) for i in range(7)], 0.625),
}
#: The two-model check: SFace's automatic threshold swept, dlib's fixed at each of these. SFace
#: finds the candidates (its review band); dlib only vetoes automatic ones, so its search stops at
#: its own automatic threshold.
TWO_MODEL_DLIB_AUTO = (0.95, 0.96)
#: SFace's automatic thresholds of the two-model sweep (below its own zero-wrongful point, where a
#: veto could help; lower ones expand the search for minutes per threshold).
TWO_MODEL_SFACE_AUTO = (0.55, 0.575, 0.6, 0.625)


def fused(a: LfwFaces, b: LfwFaces) -> LfwFaces:
    if not (np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)):
        raise SystemExit("the variants' caches hold different faces; recompute them together")
    templates = np.hstack([a.templates, b.templates]) / np.float32(np.sqrt(2))
    return replace(a, key=f"fusion:{a.key}:{b.key}", templates=templates.astype(np.float32))


def view2(faces: LfwFaces, data: Path) -> EvalResult:
    lfw = (data / "lfw").resolve()
    central = {int(i): f for f, i in enumerate(faces.image) if faces.is_central[f]}
    vectors = {
        lfw / str(path): (faces.templates[central[row]] if row in central else None)
        for row, path in enumerate(faces.paths)
    }
    pairs = read_pairs(data)
    return evaluate(pairs, {p: vectors.get(p.resolve()) for pair in pairs for p in (pair.a, pair.b)})


def erasure(
    f: LfwFaces, people: list[str], truth: tuple, models: list[list[Model]], names: list[float]
) -> list[dict[str, Any]]:
    out = []
    for auto, ms in zip(names, models, strict=True):
        t0 = time.perf_counter()
        rows = [person_run(f, ms, truth, p) for p in people]
        out.append(aggregate(rows, auto, ms[0].review) | {"seconds": time.perf_counter() - t0, "rows": rows})
        print(f"    auto {auto}: {out[-1]['seconds']:.1f} s", file=sys.stderr)
    return out


def group_view(rows: list[dict], group: set[str]) -> dict[str, Any]:
    mine = [r for r in rows if r["person"] in group]
    if not mine:
        return {"people": 0}
    photos = sum(r["photos"] for r in mine)
    return {
        "people": len(mine),
        "photos": photos,
        "auto_share": sum(r["auto_found"] for r in mine) / photos,
        "final_share": sum(r["final_found"] for r in mine) / photos,
        "wrongful": sum(len(r["wrongful"]) for r in mine),
    }


def summary(point: dict[str, Any] | None, group: set[str]) -> dict[str, Any] | None:
    if point is None:
        return None
    keep = ("auto", "review", "auto_share", "final_share", "wrongful", "wrongful_final", "shown_mean")
    return {k: point[k] for k in (*keep, "shown_p95")} | {
        "dlib_failure_group": group_view(point["rows"], group)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--distractors", type=int, nargs="*", default=[0, 100_000, 1_000_000])
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (smoke runs)")
    parser.add_argument("--people", type=int, default=None, help="only the first N erasure people")
    parser.add_argument("--skip-erasure", action="store_true")
    parser.add_argument("--skip-identification", action="store_true", help="only View 2 and erasure")
    parser.add_argument("--sweeps", nargs="*", default=None, help="erasure: only these single-model sweeps")
    parser.add_argument("--no-two-model", dest="two_model", action="store_false", help="erasure: skip it")
    parser.add_argument("--plot", type=Path, default=Path("docs/plots/models_roc_det.png"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": describe(machine()),
    }
    cached = load_variants(args.data, args.cache, ("sface", "sface-flip", "onnx"), args.workers, args.limit)
    variants = {"sface": cached["sface"], "sface-flip": cached["sface-flip"], "dlib": cached["onnx"]}
    variants["fusion"] = fused(variants["sface"], variants["dlib"])
    defaults = {
        "sface": SFACE.match_threshold,
        "sface-flip": SFACE.match_threshold,
        "dlib": DLIB.match_threshold,
        "fusion": 0.7,
    }
    report["faces"] = variants["sface"].faces
    evals: dict[str, EvalResult] = {}
    report["variants"] = {}
    for name, faces in variants.items():
        print(f"{name}: View 2, 1:N", file=sys.stderr)
        ev = evals[name] = view2(faces, args.data)
        tar, _ = tar_at_far(ev.scores, ev.labels, 1e-3)
        distractors = [] if args.skip_identification else args.distractors
        found = identify(faces, distractors, [defaults[name]], defaults[name])
        report["variants"][name] = {
            "view2_accuracy": ev.accuracy,
            "view2_std": ev.std,
            "tar_at_far_1e-3": tar,
            "view2_failures": ev.detection_failures,
            "identification": [
                {k: r[k] for k in ("gallery", "rank1", "fnir_at_fpir_0.01", "fnir_at_fpir_0.003")}
                for r in found["results"]
            ],
        }
    plot_roc_det({n: evals[n] for n in evals}, args.plot)
    report["plot"] = str(args.plot)
    if not args.skip_erasure:
        report["erasure"] = erasure_report(variants, args)
    print(markdown(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


def erasure_report(variants: dict[str, LfwFaces], args: argparse.Namespace) -> dict[str, Any]:
    f = variants["sface"]
    truth = labels(f)
    names, counts = np.unique(truth[0], return_counts=True)
    people = [str(p) for p in names[counts >= 10]][: args.people]
    out: dict[str, Any] = {"people": len(people)}
    with tempfile.TemporaryDirectory(prefix="lethe-compare-") as tmp:
        indexes = {}
        for name, faces in variants.items():
            indexes[name] = FaissIndex(Path(tmp) / name, faces.templates.shape[1], kind="flat")
            indexes[name].add(np.arange(faces.faces, dtype=np.int64), faces.templates)
        sweeps: dict[str, list[dict[str, Any]]] = {}
        for name, (autos, review) in SWEEPS.items():
            if args.sweeps is not None and name not in args.sweeps:
                continue
            print(f"{name}: erasure sweep", file=sys.stderr)
            ms = [[Model(indexes[name], variants[name].templates, a, review)] for a in autos]
            sweeps[name] = erasure(f, people, truth, ms, autos)
        for dlib_auto in TWO_MODEL_DLIB_AUTO if args.two_model else ():
            name = f"two-model (dlib auto {dlib_auto})"
            print(f"{name}: erasure sweep", file=sys.stderr)
            autos, review = list(TWO_MODEL_SFACE_AUTO), SWEEPS["sface"][1]
            dlib = Model(
                indexes["dlib"], variants["dlib"].templates, dlib_auto, DLIB.erasure_review_threshold
            )
            ms = [[Model(indexes["sface"], variants["sface"].templates, a, review), dlib] for a in autos]
            sweeps[name] = erasure(f, people, truth, ms, autos)
    # dlib's failures: its wrongful erasures at the automatic threshold just below its zero-wrongful one
    best_dlib = recommend(sweeps.get("dlib", []), SWEEPS["dlib"][1])
    below = [s for s in sweeps.get("dlib", []) if best_dlib is None or s["auto"] < best_dlib["auto"]]
    failing = max(below, key=lambda s: s["auto"]) if below else None
    group = {n for pair in (failing or {}).get("wrongful_pairs", []) for n in pair.split(" <- ")}
    out["dlib_failure_group"] = {"people": sorted(group), "from_auto": failing and failing["auto"]}
    out["variants"] = {}
    for name, sweep in sweeps.items():
        review = sweep[0]["review"]
        shipped = None
        if name in ("sface", "dlib"):
            t = SFACE if name == "sface" else DLIB
            shipped = next((s for s in sweep if abs(s["auto"] - t.erasure_auto_threshold) < 1e-9), None)
        out["variants"][name] = {
            "zero_wrongful": summary(recommend(sweep, review), group),
            "shipped_defaults": summary(shipped, group),
            "sweep": [{k: v for k, v in s.items() if k != "rows"} for s in sweep],
        }
    return out


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"## dlib vs SFace on the same LFW faces ({r['date']})",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}",
        "",
    ]
    sizes = [row["gallery"] for row in next(iter(r["variants"].values()))["identification"]]  # may be []
    head = (
        "| variant | View 2 | TAR @ FAR 1e-3 | "
        + " | ".join(f"rank-1 / FNIR@0.01 / FNIR@0.003 at {g:,}" for g in sizes)
        + " |"
    )
    lines += [head, "|---|---:|---:|" + "---:|" * len(sizes)]
    for name, v in r["variants"].items():
        cells = [
            f"{x['rank1']:.2%} / {x['fnir_at_fpir_0.01']:.2%} / {x['fnir_at_fpir_0.003']:.2%}"
            for x in v["identification"]
        ]
        lines.append(
            f"| {name} | {v['view2_accuracy']:.2%} ± {v['view2_std']:.2%} | {v['tar_at_far_1e-3']:.2%} | "
            + " | ".join(cells)
            + " |"
        )
    if "erasure" in r:
        e = r["erasure"]
        lines += [
            "",
            f"Erasure by one photo, {e['people']} people with >= 10 photos; dlib's failure group: "
            f"{len(e['dlib_failure_group']['people'])} people",
            "",
        ]
        lines += [
            "| variant | point | auto / review | automatic | after review | wrongful (auto / final) "
            "| shown mean / p95 | failure group: automatic, wrongful |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, v in e["variants"].items():
            for label in ("zero_wrongful", "shipped_defaults"):
                p = v[label]
                if p is None:
                    continue
                g = p["dlib_failure_group"]
                lines.append(
                    f"| {name} | {label.replace('_', ' ')} | {p['auto']} / {p['review']} "
                    f"| {pct(p['auto_share'])} | {pct(p['final_share'])} "
                    f"| {p['wrongful']} / {p['wrongful_final']} "
                    f"| {p['shown_mean']:.1f} / {p['shown_p95']:.0f} "
                    f"| {pct(g.get('auto_share'))}, {g.get('wrongful', 0)} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
