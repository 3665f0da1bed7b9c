"""Human oversight's global stop: ``lethe oversight stop|resume|status`` (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from lethe.cli._support import JsonOpt, actor, emit, out
from lethe.cli._support import engine_from_settings as _engine

oversight_app = typer.Typer(
    no_args_is_help=True, help="Stop every identification at once, and resume it (admin; audited)."
)

ReasonOpt = Annotated[str | None, typer.Option(help="Why (kept in the audit log, off the hash chain).")]


def register(app: typer.Typer) -> None:
    app.add_typer(oversight_app, name="oversight")


@oversight_app.command("stop")
def oversight_stop(reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Halt every search by a probe photo, in every process of this installation, at once; rights
    requests, ingest and erasure go on."""
    with _engine() as engine:
        state = engine.oversight.stop(actor=actor(role="admin"), reason=reason)
    emit(as_json, state.as_dict(), lambda: out.print("identification stopped: no search runs until resumed"))


@oversight_app.command("resume")
def oversight_resume(reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """End the stop: searches run again."""
    with _engine() as engine:
        state = engine.oversight.resume(actor=actor(role="admin"), reason=reason)
    emit(as_json, state.as_dict(), lambda: out.print("identification resumed"))


@oversight_app.command("status")
def oversight_status(as_json: JsonOpt = False) -> None:
    """Whether identification is stopped, since when and by whom."""
    with _engine() as engine:
        state = engine.oversight.state()
    emit(
        as_json,
        state.as_dict(),
        lambda: out.print(
            f"stopped since {state.since:%Y-%m-%d %H:%M} by {state.by}" if state.stopped else "running"
        ),
    )
