"""Consents of ``enrolled_only`` sources: ``lethe consent add|list|withdraw|text``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lethe.cli._support import JsonOpt, actor, emit, err, fail, out
from lethe.cli._support import engine_from_settings as _engine
from lethe.privacy.consent import ATTESTATIONS, CHANNELS

consent_app = typer.Typer(
    no_args_is_help=True,
    help="Consents of people enrolled in an enrolled_only source (the consent ledger).",
)


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")


@consent_app.command("add")
def consent_add(
    source: Annotated[str, typer.Argument(help="An enrolled_only source.")],
    photo: Annotated[Path, typer.Option(help="A photo of the consenting person (one face).")],
    contact: Annotated[str, typer.Option(help="The person's address (stored sealed).")],
    channel: Annotated[str, typer.Option(help=f"How consent was given: {', '.join(CHANNELS)}.")] = "desk",
    age: Annotated[
        str,
        typer.Option(
            help="of_age: the person attests the age of digital consent of the source's country; "
            "parental: a parent or guardian consents for a child."
        ),
    ] = "of_age",
    as_json: JsonOpt = False,
) -> None:
    """Enrol a consenting person with the consent text in force, then find them in the photos the
    source already holds. The photo itself is never stored."""
    if age not in ATTESTATIONS:
        fail(f"--age must be one of: {', '.join(ATTESTATIONS)}", 2)
    try:
        data = photo.read_bytes()
    except OSError as exc:
        fail(f"cannot read {photo}: {exc.strerror or exc}", 2)
    with _engine() as engine:
        view = engine.consents.add(
            source, data, actor=actor(), contact=contact, channel=channel, age_attestation=age
        )
    emit(
        as_json,
        {"consent": view.id, "source": view.source} | view.as_dict(),
        lambda: out.print(
            f"consent {view.id} recorded in {view.source} (text v{view.text_version}); "
            f"found in {view.faces} face(s) so far"
        ),
    )


@consent_app.command("list")
def consent_list(
    source: Annotated[str | None, typer.Option(help="Only this source's consents.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many (oldest first).")] = None,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """The consent ledger: who consented (by id), to which text, when, how, and withdrawals."""
    with _engine() as engine:
        views = engine.consents.listing(source, limit=limit, offset=offset)

    def human() -> None:
        table = Table("id", "source", "text", "channel", "age", "given", "faces", "withdrawn")
        for v in views:
            table.add_row(
                str(v.id),
                v.source,
                f"v{v.text_version}",
                v.channel,
                v.age_attestation,
                f"{v.given_at:%Y-%m-%d %H:%M}",
                str(v.faces),
                f"{v.withdrawn_at:%Y-%m-%d %H:%M}" if v.withdrawn_at else "",
            )
        out.print(table)

    emit(as_json, {"consents": [v.as_dict() for v in views]}, human)


@consent_app.command("withdraw")
def consent_withdraw(
    consent_id: Annotated[int, typer.Argument(help="The consent's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Withdraw a consent: the person's faces in that source are erased (with a receipt), their
    template and contact address deleted; the ledger keeps the record of consent and withdrawal."""
    with _engine() as engine:
        result = engine.consents.withdraw(consent_id, actor=actor())
    emit(
        as_json,
        result,
        lambda: out.print(f"consent {consent_id} withdrawn; {result['erased_faces']} face(s) erased"),
    )


@consent_app.command("text")
def consent_text(
    source: Annotated[str, typer.Argument(help="An enrolled_only source.")],
    file: Annotated[
        Path | None,
        typer.Option(help="A new version of the text (UTF-8); without it, print the text in force."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the consent text in force, or record a new version of it (earlier consents keep theirs)."""
    with _engine() as engine:
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                fail(f"cannot read {file}: {exc}", 2)
            engine.consents.set_text(source, text, actor=actor())
        version, text, digest = engine.consents.text(source)

    def human() -> None:
        err.print(f"[bold]{source}[/] consent text v{version} (sha256 {digest[:12]}...)")
        out.print(text)

    emit(as_json, {"source": source, "version": version, "sha256": digest, "text": text}, human)


@consent_app.command("scan")
def consent_scan(as_json: JsonOpt = False) -> None:
    """Finish every enrolment scan an interruption left pending (each resumes where it stopped)."""
    with _engine() as engine:
        linked = engine.consents.resume_scans(actor=actor())
    emit(as_json, {"faces_linked": linked}, lambda: out.print(f"{linked} face(s) linked"))
