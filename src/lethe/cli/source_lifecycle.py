"""``lethe source edit|suspend|resume|delete``: a source's life after ``source add``
(:mod:`lethe.privacy.sources_lifecycle` holds the rules)."""

from __future__ import annotations

from typing import Annotated

import typer

from lethe.cli._support import JsonOpt, actor, emit, err, fail
from lethe.cli._support import engine_from_settings as _engine
from lethe.privacy import ART6_BASES, ART9_CONDITIONS
from lethe.privacy.sources import COLLECTIONS

SourceArg = Annotated[str, typer.Argument(help="A registered source.")]


def register(source_app: typer.Typer) -> None:
    source_app.command("edit")(source_edit)
    source_app.command("suspend")(source_suspend)
    source_app.command("resume")(source_resume)
    source_app.command("delete")(source_delete)


def source_edit(
    name: SourceArg,
    purpose: Annotated[str | None, typer.Option(help="The new purpose.")] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days",
            help="The new retention; photos already stored follow it at the next retention sweep.",
        ),
    ] = None,
    basis: Annotated[str | None, typer.Option(help=f"GDPR Art. 6(1) basis: {', '.join(ART6_BASES)}.")] = None,
    art9: Annotated[
        str | None, typer.Option(help=f"GDPR Art. 9(2) condition: {', '.join(ART9_CONDITIONS)}.")
    ] = None,
    legal_reference: Annotated[
        str | None, typer.Option(help="The law the basis rests on ('' clears it).")
    ] = None,
    lia_reference: Annotated[
        str | None, typer.Option(help="Where the legitimate-interests assessment is recorded ('' clears it).")
    ] = None,
    collection: Annotated[
        str | None, typer.Option(help=f"How the photos were collected: {', '.join(COLLECTIONS)}.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a source's purpose, retention or declaration fields, validated as `source add` does
    them and audited with the values before and after (name, jurisdiction and mode stay)."""
    given = {
        "purpose": purpose,
        "retention_days": retention_days,
        "basis": basis,
        "art9": art9,
        "legal_reference": legal_reference,
        "lia_reference": lia_reference,
        "collection": collection,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        fail("nothing to change: name at least one option (see lethe source edit --help)", 2)
    with _engine() as engine:
        answer = engine.source_lifecycle.edit(name, changes, actor=actor())

    def human() -> None:
        changed = ", ".join(map(str, answer["changed"]))  # type: ignore[call-overload]
        err.print(f"source [bold]{name}[/]: " + (f"changed {changed}" if changed else "no change"))
        if "retention_note" in answer:
            err.print(f"note: {answer['retention_note']}")
        for warning in answer["warnings"]:  # type: ignore[attr-defined]
            err.print(f"[yellow]warning:[/] {warning}")

    emit(as_json, answer, human)


def source_suspend(name: SourceArg, as_json: JsonOpt = False) -> None:
    """Suspend a source: its faces leave search results at once and ingest into it is refused;
    rights requests still reach its faces. `lethe source resume` undoes it."""
    with _engine() as engine:
        answer = engine.source_lifecycle.suspend(name, actor=actor())
    emit(
        as_json,
        answer,
        lambda: err.print(
            f"source [bold]{name}[/] suspended: not searched, no ingest; rights requests still reach it"
        ),
    )


def source_resume(name: SourceArg, as_json: JsonOpt = False) -> None:
    """Resume a suspended source: active again, or restricted while a stop order on its country is
    in force."""
    with _engine() as engine:
        answer = engine.source_lifecycle.resume(name, actor=actor())
    emit(as_json, answer, lambda: err.print(f"source [bold]{name}[/] is {answer['status']}"))


def source_delete(
    name: SourceArg,
    confirm: Annotated[
        str | None,
        typer.Option(help="The source's name typed again (asked for when left out and stdin is a terminal)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a source for good: every face, template, crop and photo record of it erased with an
    erasure receipt, its key shredded. Needs its name typed again. Cannot be undone."""
    with _engine() as engine:
        listing = {row["source"]: row for row in engine.source_listing()}
        row = listing.get(name)
        if row is None:
            fail(f"no source named {name!r}", 3)
        if confirm is None:
            err.print(
                f"Deleting [bold]{name}[/] erases {row['faces']} face(s) in {row['images']} photo(s) for "
                "good (rows, templates, crops, vectors; its key is shredded). This cannot be undone."
            )
            confirm = typer.prompt("Type the source's name to confirm", default="", show_default=False)
        answer = engine.source_lifecycle.delete(name, confirm=confirm or "", actor=actor())
    emit(
        as_json,
        answer,
        lambda: err.print(
            f"source [bold]{name}[/] deleted: {answer['erased_faces']} face(s) in {answer['erased_photos']} "
            f"photo(s) erased (erasure job {answer['erasure_job_id']}; --json prints its receipt)"
        ),
    )
