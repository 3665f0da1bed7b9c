"""Uses (cases) that group searches: ``lethe use open|close|list|show``, and one use's whole record
for a regulator: ``lethe audit export --use ID`` (docs/oversight.md, "Uses and the search log")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lethe.cli._support import JsonOpt, actor, emit, err, fail, out
from lethe.cli._support import engine_from_settings as _engine
from lethe.cli.core import audit_app
from lethe.privacy.use_export import export_use
from lethe.privacy.uses import Use
from lethe.storage import atomic_write

use_app = typer.Typer(
    no_args_is_help=True,
    help="Uses (cases): every search belongs to one; open one per case, close it when done.",
)

UseId = Annotated[int, typer.Argument(help="The use's id.", min=1)]


def register(app: typer.Typer) -> None:
    app.add_typer(use_app, name="use")
    audit_app.command("export")(audit_export)


def _line(use: Use) -> str:
    state = "open" if use.open else f"{use.close_reason} {use.closed_at:%Y-%m-%d %H:%M}"
    reference = f" [{use.reference}]" if use.reference else ""
    return (
        f"{use.id:>5}  {use.opened_at:%Y-%m-%d %H:%M}  {use.searches:>3} search(es)  {state:<24} "
        f"{use.actor}  {use.purpose or '(purpose erased)'}{reference}"
    )


@use_app.command("open")
def use_open(
    purpose: Annotated[str, typer.Option(help="Why (at least 3 characters; audited, erasable).")],
    reference: Annotated[
        str | None, typer.Option(help="A case reference (audited, erasable), e.g. a file number.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a use; your searches go into it until you close it (or it times out)."""
    with _engine() as engine:
        use = engine.uses.open(actor=actor(), purpose=purpose, reference=reference)
    emit(as_json, use.as_dict(), lambda: out.print(f"use {use.id} opened", highlight=False))


@use_app.command("close")
def use_close(use_id: UseId, as_json: JsonOpt = False) -> None:
    """Close a use of yours: a search can no longer name it."""
    with _engine() as engine:
        use = engine.uses.close(use_id, actor=actor())
    emit(as_json, use.as_dict(), lambda: out.print(f"use {use.id} closed", highlight=False))


@use_app.command("list")
def use_list(
    all_actors: Annotated[
        bool, typer.Option("--all", help="Every actor's uses (dpo or admin), not only yours.")
    ] = False,
    open_only: Annotated[bool, typer.Option("--open", help="Only open uses.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Your uses, newest first (timed-out ones are closed on the way)."""
    with _engine() as engine:
        who = actor(role="dpo") if all_actors else actor()
        uses = engine.uses.list(actor=None if all_actors else who, open_only=open_only, limit=limit)

    def human() -> None:
        for u in uses:
            out.print(_line(u), markup=False, highlight=False, soft_wrap=True)

    emit(as_json, {"uses": [u.as_dict() for u in uses]}, human)


@use_app.command("show")
def use_show(use_id: UseId, as_json: JsonOpt = False) -> None:
    """One use of yours (any use for a dpo or admin)."""
    with _engine() as engine:
        who = actor()
        use = engine.uses.get(use_id)
        if use.actor != who:
            actor(role="dpo")
    emit(as_json, use.as_dict(), lambda: out.print(_line(use), markup=False, highlight=False))


def audit_export(
    use: Annotated[int, typer.Option("--use", help="The use whose record to export.", min=1)],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON here (mode 0600) instead of stdout.")
    ] = None,
    with_probes: Annotated[
        bool,
        typer.Option(
            "--with-probes",
            help="Include the kept probe photos, decrypted (base64), for a regulator; audited.",
        ),
    ] = False,
    recipient: Annotated[
        int | None,
        typer.Option(
            help="The recipient it is handed to (`lethe recipient list`): recorded as a disclosure "
            "of the faces its searches returned.",
            min=1,
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="With --recipient: the legal basis or reason, in words.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One use's whole record for a regulator (dpo or admin): the use, its searches with their
    reference database and probe hashes, the probes kept, the verifiers. With --recipient the
    hand-over is recorded in the disclosure ledger."""
    with _engine() as engine:
        who = actor(role="dpo")
        if recipient is not None:
            record = engine.disclosures.export_use_to(
                engine.uses, engine.gate, use, recipient_id=recipient, reason=reason or "", actor=who,
                with_probes=with_probes,
            )  # fmt: skip
        else:
            record = export_use(engine.uses, engine.gate, use, actor=who, with_probes=with_probes)
    if out_file is None:
        if not as_json:
            err.print(f"use {use}: {len(record['searches'])} search(es)")
        typer.echo(json.dumps(record, indent=None if as_json else 2))
        return
    try:
        atomic_write(out_file, json.dumps(record, indent=2).encode(), durable=False)
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}", 2)
    payload = {"export": str(out_file), "use": use, "searches": len(record["searches"])}
    emit(as_json, payload, lambda: err.print(f"use {use}: {payload['searches']} search(es) -> {out_file}"))
