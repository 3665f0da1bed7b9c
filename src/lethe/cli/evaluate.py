"""``lethe eval``: measure accuracy on standard benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lethe.cli._support import JsonOpt, emit, err, exit_code, fail, out
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
