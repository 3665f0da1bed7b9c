"""``lethe eval``: measure accuracy on standard benchmarks (``lfw``) and per group on labels the
operator supplies (``groups``, docs/privacy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lethe.cli._support import JsonOpt, actor, emit, engine_from_settings, err, exit_code, fail, out
from lethe.config import Settings
from lethe.errors import LetheError

eval_app = typer.Typer(no_args_is_help=True, help="Measure accuracy on standard benchmarks.")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("lfw")
def eval_lfw(
    data: Annotated[Path, typer.Option(help="Folder holding lfw/ and lfw_protocol/.")],
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write the ROC and DET curves to this PNG (needs matplotlib).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """LFW View 2: 10 folds of pairs.txt, threshold from 9 folds, tested on the 10th."""
    from lethe.evaluation import evaluate_lfw, plot_roc_det

    try:
        settings = Settings.load(**({"workers": workers} if workers else {}))
        with Progress(TextColumn("embed"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=as_json) as bar:  # fmt: skip
            task = bar.add_task("embed", total=None)
            result = evaluate_lfw(data, settings, lambda d, t: bar.update(task, completed=d, total=t))
        if plot is not None:
            plot_roc_det({f"Lethe ({settings.detector} + {settings.embedder})": result}, plot)
    except LetheError as exc:
        fail(str(exc), exit_code(exc))

    def human() -> None:
        accuracy = f"{result.accuracy * 100:.2f}% ± {result.std * 100:.2f}"
        out.print(
            f"LFW View 2: accuracy {accuracy} over {result.folds} folds; {result.detection_failures} of "
            f"{result.images} photos without a detected face (their pairs count as errors)"
        )
        tar, threshold = result.tar_at_far_1e3
        out.print(f"TAR at FAR 0.001: {tar * 100:.2f}% (threshold {threshold:.4f})")

    emit(as_json, result.as_dict(), human)


@eval_app.command("groups")
def eval_groups(
    labels: Annotated[
        Path, typer.Option(help="CSV with columns image, group and optionally identity (docs/privacy.md).")
    ],
    images: Annotated[Path, typer.Option(help="Folder the CSV's image paths are relative to.")],
    threshold: Annotated[
        list[float] | None,
        typer.Option(help="Also measure at this threshold (repeatable); the configured one always."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Also write the report's JSON and HTML into this folder.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split into gallery and searches.")] = 0,
    min_identities: Annotated[
        int | None, typer.Option(help="People a group needs to be measured (default 10).", min=2)
    ] = None,
    target_fpir: Annotated[
        float | None,
        typer.Option(help="Per group, the threshold that holds FPIR at or below this (default 0.01)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-group FNIR and FPIR with 95% intervals, on photos whose groups you label (dpo or admin)."""
    from lethe.privacy.demographic_report import run

    given = {"min_identities": min_identities, "target_fpir": target_fpir}
    bar = Progress(TextColumn("embed"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=as_json)  # fmt: skip
    task = bar.add_task("embed", total=None)

    def progress(done: int, total: int) -> None:
        bar.start()  # at the first photo: a refused labels file shows no bar, only its reason
        bar.update(task, completed=done, total=total)

    with engine_from_settings(workers=workers) as engine:
        who = actor(role="dpo")
        try:
            done = run(
                engine.store,
                labels,
                images,
                actor=who,
                thresholds=threshold or (),
                out=out_dir,
                seed=seed,
                progress=progress,
                **{k: v for k, v in given.items() if v is not None},  # type: ignore[arg-type]
            )
        finally:
            bar.stop()
    report = done["report"]

    def human() -> None:
        out.print(
            f"{report['labels']['rows']} labelled photos in {len(report['groups'])} groups "
            f"({report['labels']['unlabelled_excluded']} unlabelled, left out); report: {done['files'][-1]}",
            markup=False,
            highlight=False,
        )
        for result in report["results"]:
            out.print(f"threshold {result['threshold']}:", highlight=False)
            for name, rates in result["groups"].items():
                line = f"  {name}: FNIR {_words(rates['fnir'])}, FPIR {_words(rates['fpir'])}"
                out.print(line, markup=False, highlight=False)
            for key in ("fnir", "fpir"):
                out.print(f"  {result['differential'][key]['words']}", markup=False, highlight=False)

    emit(as_json, {**report, "files": done["files"]}, human)


def _words(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return f"not measured (n={rate['n']})"
    low, high = rate["ci95"]
    people = rate["ci95_people"]
    over_people = f"; people {people[0] * 100:.1f}-{people[1] * 100:.1f}" if people else ""
    return f"{rate['rate'] * 100:.1f}% [{low * 100:.1f}-{high * 100:.1f}{over_people}] n={rate['n']}"
