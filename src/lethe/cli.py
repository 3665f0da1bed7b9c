"""The ``lethe`` command. The one place exit codes live; every command takes ``--json``.

Exit codes: 0 success; 1 an unexpected Lethe error; 2 bad input, settings or usage; 3 something named does not
exist; 4 refused by a privacy rule (no lawful basis, restricted source); 5 a model could not be loaded.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lethe.config import Settings
from lethe.engine import Lethe
from lethe.errors import (
    ConfigError,
    InputError,
    LawfulBasisError,
    LetheError,
    ModelError,
    NotFoundError,
    PrivacyError,
)
from lethe.privacy import ART6_BASES, ART9_CONDITIONS, SourceSpec

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Lethe: face search that obeys data-protection law."
)
source_app = typer.Typer(
    no_args_is_help=True, help="Register and list photo sources (each with a lawful basis)."
)
index_app = typer.Typer(no_args_is_help=True, help="Maintain the vector index.")
audit_app = typer.Typer(no_args_is_help=True, help="Read and verify the tamper-evident audit log.")
app.add_typer(source_app, name="source")
app.add_typer(index_app, name="index")
app.add_typer(audit_app, name="audit")

err = Console(stderr=True)
out = Console()

DEFAULT_PURPOSE = "command-line search (no purpose stated)"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def actor() -> str:
    """Who is acting, for the audit log: the operating-system account running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def _exit_code(exc: LetheError) -> int:
    if isinstance(exc, NotFoundError):
        return 3
    if isinstance(exc, LawfulBasisError | PrivacyError):
        return 4
    if isinstance(exc, ModelError):
        return 5
    if isinstance(exc, InputError | ConfigError):
        return 2
    return 1


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"error: {message.splitlines()[0] if message else 'failed'}\n")
    raise typer.Exit(code)


@contextmanager
def _engine(**overrides: Any) -> Iterator[Lethe]:
    try:
        settings = Settings.load(**{k: v for k, v in overrides.items() if v is not None})
        engine = Lethe(settings)
    except LetheError as exc:
        _fail(str(exc), _exit_code(exc))
    try:
        yield engine
    except LetheError as exc:
        _fail(str(exc), _exit_code(exc))
    finally:
        engine.close()


def _emit(as_json: bool, payload: dict[str, Any], human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        human()


@source_app.command("add")
def source_add(
    name: Annotated[str, typer.Argument(help="Source name, unique.")],
    basis: Annotated[str, typer.Option(help=f"GDPR Art. 6(1) basis: {', '.join(ART6_BASES)}.")],
    art9: Annotated[str, typer.Option(help=f"GDPR Art. 9(2) condition: {', '.join(ART9_CONDITIONS)}.")],
    purpose: Annotated[str, typer.Option(help="Why these photos are processed.")],
    jurisdiction: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 country code, e.g. FR.")],
    retention_days: Annotated[int, typer.Option("--retention-days", help="How long faces may be kept.")],
    as_json: JsonOpt = False,
) -> None:
    """Register a source with its lawful basis; ingest refuses photos without one."""
    with _engine() as engine:
        spec = SourceSpec.validated(
            name=name,
            lawful_basis=basis,
            art9_condition=art9,
            purpose=purpose,
            jurisdiction=jurisdiction,
            retention_days=retention_days,
        )
        source = engine.add_source(spec, actor=actor())
    _emit(
        as_json,
        {"source": source.name, "id": source.id, "jurisdiction": source.jurisdiction},
        lambda: err.print(
            f"source [bold]{source.name}[/] registered ({source.lawful_basis}, {source.jurisdiction})"
        ),
    )


@source_app.command("list")
def source_list(as_json: JsonOpt = False) -> None:
    """List sources with their basis, jurisdiction, retention and counts."""
    with _engine() as engine:
        rows = engine.sources()
    payload = {
        "sources": [
            {
                "source": s.name,
                "basis": s.lawful_basis,
                "art9": s.art9_condition,
                "purpose": s.purpose,
                "jurisdiction": s.jurisdiction,
                "retention_days": s.retention_days,
                "status": s.status,
                "images": images,
                "faces": faces,
            }
            for s, images, faces in rows
        ]
    }

    def human() -> None:
        table = Table("source", "basis", "art. 9", "jurisdiction", "retention", "status", "images", "faces")
        for s, images, faces in rows:
            table.add_row(
                s.name,
                s.lawful_basis,
                s.art9_condition,
                s.jurisdiction,
                f"{s.retention_days} d",
                s.status,
                str(images),
                str(faces),
            )
        out.print(table)

    _emit(as_json, payload, human)


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="A registered source.")],
    path: Annotated[Path, typer.Argument(help="A folder (recursive) or a .csv / .jsonl manifest.")],
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Detect, embed and index every face of every photo; known photos are skipped."""
    with _engine(workers=workers) as engine:
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} images/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=as_json) as bar:
            task = bar.add_task("ingest", total=None, rate="-")

            def progress(done: int, total: int) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:.1f}" if elapsed > 0 else "-"
                bar.update(task, completed=done, total=total, rate=rate)

            report = engine.ingest(source, path, progress=progress, actor=actor())
    payload = report.as_dict()

    def human() -> None:
        err.print(
            f"{report.images} new photos, {report.faces} faces, {report.skipped} already present, "
            f"{len(report.errors)} errors in {report.seconds:.1f} s"
        )
        for problem in report.errors[:20]:
            err.print(f"  [red]{problem['path']}[/]: {problem['reason']}")
        if len(report.errors) > 20:
            err.print(f"  ... and {len(report.errors) - 20} more (use --json for all)")

    _emit(as_json, payload, human)


@app.command()
def search(
    probe: Annotated[Path, typer.Argument(help="A photo of the person to look for.")],
    top: Annotated[int, typer.Option(help="At most this many matches.")] = 10,
    threshold: Annotated[
        float | None, typer.Option(help="Cosine similarity for a match (default: the calibrated value).")
    ] = None,
    face: Annotated[int | None, typer.Option(help="Which probe face to use (0 = largest).")] = None,
    purpose: Annotated[
        str, typer.Option(help="Why you search; recorded in the audit log.")
    ] = DEFAULT_PURPOSE,
    as_json: JsonOpt = False,
) -> None:
    """Find the photos of the person in PROBE, best first; below the threshold: no match."""
    try:
        data = probe.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {probe}: {exc.strerror or exc}", 2)
    with _engine() as engine:
        result = engine.search(
            data, purpose=purpose, actor=actor(), top_k=top, threshold=threshold, face=face
        )
    payload = result.as_dict()

    def human() -> None:
        if not result.probe_faces:
            err.print("no face found in the probe photo")
            return
        if len(result.probe_faces) > 1:
            err.print(
                f"{len(result.probe_faces)} faces in the probe (largest first); "
                f"using face {result.used_face}:"
            )
            for i, box in enumerate(result.probe_faces):
                err.print(f"  {i}: box {box.as_list()}")
        if result.no_match:
            out.print(f"[bold]no match[/] (nothing at or above similarity {result.threshold:.3f})")
            return
        count = len(result.matches)
        out.print(f"{count} match(es) at or above similarity {result.threshold:.3f}, best first:")
        for rank, m in enumerate(result.matches, start=1):
            link = f"  <{m.source_url}>" if m.source_url else ""
            line = f"{rank:>3}. {m.score:.3f}  ({m.source})  {m.image}{link}"
            out.print(line, soft_wrap=True, highlight=False, markup=False)

    _emit(as_json, payload, human)


@index_app.command("rebuild")
def index_rebuild(as_json: JsonOpt = False) -> None:
    """Rebuild the vector index from the catalog (and drop crops of faces no longer catalogued)."""
    with _engine() as engine:
        stats = engine.rebuild_index(actor=actor())
    _emit(as_json, stats, lambda: err.print(f"index rebuilt: {stats}"))


@index_app.command("stats")
def index_stats(as_json: JsonOpt = False) -> None:
    """Show the vector index structure and size."""
    with _engine() as engine:
        stats = dict(engine.index.stats())
        stats["catalog_faces"] = engine.catalog.count_faces()
        stats["catalog_images"] = engine.catalog.count_images()
    _emit(as_json, stats, lambda: out.print(stats))


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Recompute the hash chain; any edited, deleted or reordered entry is reported."""
    with _engine() as engine:
        result = engine.verify_audit()
    payload = result.as_dict()

    def human() -> None:
        if result.ok:
            out.print(f"audit log intact: {result.entries} entries, head {result.head[:16]}...")
        else:
            out.print(f"[red]audit log BROKEN[/] at entry {result.first_bad_seq}: {result.problem}")

    _emit(as_json, payload, human)
    if not result.ok:
        raise typer.Exit(6)


@audit_app.command("list")
def audit_list(
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. search.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show the newest audit entries."""
    with _engine() as engine:
        rows = engine.audit_entries(action=action, limit=limit)
    payload = {
        "entries": [
            {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "details": e.details}
            for e in rows
        ]
    }

    def human() -> None:
        for e in rows:
            details = json.dumps(e.details)[:120]
            line = f"{e.seq:>6} {e.at:%Y-%m-%d %H:%M:%S} {e.actor:<20} {e.action:<14} {details}"
            out.print(line, markup=False, highlight=False, soft_wrap=True)

    _emit(as_json, payload, human)


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    app()
