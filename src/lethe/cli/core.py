"""Commands for sources, ingest, search, the index, the audit log and keys."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lethe.cli._support import JsonOpt, actor, emit, err, fail, out
from lethe.cli._support import engine_from_settings as _engine
from lethe.privacy import ART6_BASES, ART9_CONDITIONS, SourceSpec
from lethe.privacy.guests import guest_settings
from lethe.privacy.sources import COLLECTIONS, MODES
from lethe.storage import atomic_write

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Lethe: face search that obeys data-protection law."
)
source_app = typer.Typer(
    no_args_is_help=True, help="Register and list photo sources (each with a lawful basis)."
)
index_app = typer.Typer(no_args_is_help=True, help="Maintain the vector index.")
audit_app = typer.Typer(no_args_is_help=True, help="Read and verify the tamper-evident audit log.")
keys_app = typer.Typer(no_args_is_help=True, help="Manage the keys that encrypt templates and crops.")
erasure_app = typer.Typer(
    no_args_is_help=True, help="Erasures that stay erased: the admin's audited override."
)
app.add_typer(source_app, name="source")
app.add_typer(index_app, name="index")
app.add_typer(audit_app, name="audit")
app.add_typer(erasure_app, name="erasure")
app.add_typer(keys_app, name="keys")


@source_app.command("add")
def source_add(
    name: Annotated[str, typer.Argument(help="Source name, unique.")],
    basis: Annotated[str, typer.Option(help=f"GDPR Art. 6(1) basis: {', '.join(ART6_BASES)}.")],
    art9: Annotated[str, typer.Option(help=f"GDPR Art. 9(2) condition: {', '.join(ART9_CONDITIONS)}.")],
    purpose: Annotated[str, typer.Option(help="Why these photos are processed.")],
    jurisdiction: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 country code, e.g. FR.")],
    retention_days: Annotated[int, typer.Option("--retention-days", help="How long faces may be kept.")],
    mode: Annotated[
        str | None,
        typer.Option(
            help=f"{' or '.join(MODES)}: enrolled_only stores only the faces of people who consented "
            "(`lethe consent add`); default enrolled_only for the consent basis, all_faces otherwise."
        ),
    ] = None,
    legal_reference: Annotated[
        str | None,
        typer.Option(
            help="The law that a legal-obligation or public-task basis, or a law-based Art. 9(2) "
            "condition, rests on."
        ),
    ] = None,
    lia_reference: Annotated[
        str | None,
        typer.Option(help="Where the legitimate-interests assessment (Art. 6(1)(f)) is recorded."),
    ] = None,
    collection: Annotated[
        str,
        typer.Option(help=f"How the photos were collected (an attestation): {', '.join(COLLECTIONS)}."),
    ] = "operator_controlled",
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
            mode=mode,
            legal_reference=legal_reference,
            lia_reference=lia_reference,
            collection=collection,
        )
        source = engine.add_source(spec, actor=actor())
    warnings = spec.warnings()

    def human() -> None:
        err.print(
            f"source [bold]{source.name}[/] registered ({source.lawful_basis}, {source.jurisdiction}, "
            f"{source.mode})"
        )
        for warning in warnings:
            err.print(f"[yellow]warning:[/] {warning}")

    emit(
        as_json,
        {
            "source": source.name,
            "id": source.id,
            "jurisdiction": source.jurisdiction,
            "mode": source.mode,
            "warnings": warnings,
        },
        human,
    )


@source_app.command("list")
def source_list(as_json: JsonOpt = False) -> None:
    """List sources with their basis, jurisdiction, retention and counts."""
    with _engine() as engine:
        listing = engine.source_listing()
    payload = {"sources": listing}

    def human() -> None:
        table = Table(
            "source", "basis", "art. 9", "jurisdiction", "retention", "mode", "status", "images", "faces"
        )
        for row in listing:
            cells = (
                "source", "basis", "art9", "jurisdiction", "retention_days", "mode", "status", "images",
                "faces",
            )  # fmt: skip
            table.add_row(*(str(row[c]) for c in cells))
        out.print(table)

    emit(as_json, payload, human)


@source_app.command("guest")
def source_guest(
    name: Annotated[str, typer.Argument(help="An enrolled_only source.")],
    enable: Annotated[
        bool,
        typer.Option(
            "--enable/--disable",
            help="Open the guest page (/e/<event code>; a new random code each time, the old one and "
            "its private links stop working) or close it.",
        ),
    ],
    downloads: Annotated[
        bool | None,
        typer.Option(
            "--downloads/--no-downloads", help="Guests may download the photos they are in (default: as was)."
        ),
    ] = None,
    browse: Annotated[
        bool | None,
        typer.Option(
            "--browse/--no-browse",
            help="Guests may browse every photo of the event, with no face matching (default: as was).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open or close the guest page of an enrolled_only source, where guests consent with a selfie
    and see only the photos they are in."""
    with _engine() as engine:
        source = engine.guests.configure(
            name, enable=enable, downloads=downloads, browse=browse, actor=actor()
        )
    payload = guest_settings(source)

    def human() -> None:
        if payload["url_path"]:
            out.print(
                f"guest page of [bold]{source.name}[/] open at {payload['url_path']} "
                f"(downloads {'on' if source.guest_downloads else 'off'}, "
                f"browsing {'on' if source.guest_browse else 'off'})"
            )
        else:
            out.print(f"guest page of [bold]{source.name}[/] closed")

    emit(as_json, payload, human)


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="A registered source.")],
    path: Annotated[Path, typer.Argument(help="A folder (recursive) or a .csv / .jsonl manifest.")],
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes; with --engine ray, Ray actors (default: all cores; every CPU of "
            "the Ray cluster)."
        ),
    ] = None,
    engine_name: Annotated[
        Literal["local", "ray"] | None,
        typer.Option(
            "--engine",
            help="Where photos are decoded, detected and embedded: local processes (default) or a Ray "
            "cluster (needs lethe[ray]).",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: `auto`, a head node HOST:6379 or ray://HOST:10001 (default: start "
            "a local Ray instance for the run)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Detect, embed and index every face of every photo; known photos are skipped."""
    overrides = {
        "workers": workers,
        "ray_actors": workers,
        "ingest_engine": engine_name,
        "ray_address": address,
    }
    # Nothing but the JSON on stdout, whatever a library prints there (Ray's driver does).
    with _engine(**overrides) as engine, contextlib.redirect_stdout(sys.stderr):
        if address is not None and engine.settings.ingest_engine != "ray":
            fail("--address needs --engine ray", 2)
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
        erased = f"{report.erased} previously erased (blocked), " if report.erased else ""
        err.print(
            f"{report.images} new photos ({report.no_face} with no face, not stored), {report.faces} faces, "
            f"{report.skipped - report.erased} already present, {erased}"
            f"{len(report.errors) + report.errors_omitted} errors in {report.seconds:.1f} s"
        )
        if report.discarded:
            err.print(f"{report.discarded} faces of people not enrolled: compared in memory, not stored")
        for problem in report.errors[:20]:
            err.print(f"  [red]{problem['path']}[/]: {problem['reason']}")
        if len(report.errors) + report.errors_omitted > 20:
            more = len(report.errors) + report.errors_omitted - 20
            err.print(f"  ... and {more} more (use --json for the first {len(report.errors)})")

    emit(as_json, payload, human)


@app.command()
def search(
    probe: Annotated[Path, typer.Argument(help="A photo of the person to look for.")],
    purpose: Annotated[str, typer.Option(help="Why you search (required); recorded in the audit log.")],
    top: Annotated[int, typer.Option(help="At most this many matches.")] = 10,
    threshold: Annotated[
        float | None, typer.Option(help="Cosine similarity for a match (default: the calibrated value).")
    ] = None,
    face: Annotated[int | None, typer.Option(help="Which probe face to use (0 = largest).")] = None,
    use: Annotated[
        int | None,
        typer.Option(
            "--use",
            help="The use (case) this search belongs to (`lethe use open`); default: your current "
            "use, or a new one opened with this purpose.",
        ),
    ] = None,
    crops: Annotated[
        Path | None,
        typer.Option(
            "--crops",
            help="Write each match's face crop, decrypted, as DIR/<rank>-<face_id>.jpg (mode 0600).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the photos of the person in PROBE, best first; below the threshold: no match."""
    try:
        data = probe.read_bytes()
    except OSError as exc:
        fail(f"cannot read {probe}: {exc.strerror or exc}", 2)
    with _engine() as engine:
        result = engine.search(
            data, purpose=purpose, actor=actor(), top_k=top, threshold=threshold, face=face, use=use
        )
        payload = result.as_dict()
        if crops is not None:
            written: list[str] = []
            for rank, match in enumerate(result.matches, start=1):
                target = crops / f"{rank}-{match.face_id}.jpg"
                try:
                    atomic_write(target, engine.crop_jpeg(match.face_id), durable=False)
                except OSError as exc:
                    fail(f"cannot write {target}: {exc.strerror or exc}", 2)
                written.append(str(target))
            payload["matches"] = [
                m.as_dict() | {"crop": path} for m, path in zip(result.matches, written, strict=True)
            ]

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
        implied = result.calibration.get("implied")
        if isinstance(implied, dict):
            err.print(
                f"threshold {result.threshold:.3f}: on LFW with about {implied['measured_gallery_faces']:,} "
                f"faces, {implied['fpir']:.1%} of searches for someone absent found a false match and "
                f"{implied['fnir']:.1%} of searches for someone present missed them"
            )
        if result.no_match:
            out.print(f"[bold]no match[/] (nothing at or above similarity {result.threshold:.3f})")
            return
        count = len(result.matches)
        out.print(f"{count} match(es) at or above similarity {result.threshold:.3f}, best first:")
        for rank, m in enumerate(result.matches, start=1):
            link = f"  <{m.source_url}>" if m.source_url else ""
            line = f"{rank:>3}. {m.score:.3f}  ({m.source})  {m.image}{link}"
            out.print(line, soft_wrap=True, highlight=False, markup=False)
        if crops is not None:
            err.print(f"crops written to {crops} as <rank>-<face_id>.jpg")

    emit(as_json, payload, human)


@index_app.command("rebuild")
def index_rebuild(as_json: JsonOpt = False) -> None:
    """Rebuild the vector index from the catalog (and drop crops of faces no longer catalogued)."""
    with _engine() as engine:
        stats = engine.rebuild_index(actor=actor())
    emit(as_json, stats, lambda: err.print(f"index rebuilt: {stats}"))


@index_app.command("reembed")
def index_reembed(as_json: JsonOpt = False) -> None:
    """Embed faces made by another model again with the configured embedder, from their photos."""
    with (
        _engine() as engine,
        Progress(TextColumn("reembed"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 console=err, transient=as_json) as bar,
    ):  # fmt: skip
        task = bar.add_task("reembed", total=None)
        report = engine.reembed(actor=actor(), progress=lambda d, t: bar.update(task, completed=d, total=t))
    payload = report.as_dict()

    def human() -> None:
        err.print(
            f"{report.faces} face(s) of {report.photos} photo(s) embedded again; "
            f"{len(report.unreadable) + report.unreadable_omitted} photo(s) unreadable, "
            f"{report.remaining_faces} face(s) still made by another model"
        )
        for problem in report.unreadable:
            err.print(f"  {problem['path']}: {problem['reason']}")

    emit(as_json, payload, human)


@index_app.command("stats")
def index_stats(as_json: JsonOpt = False) -> None:
    """Show the vector index structure and size."""
    with _engine() as engine:
        stats = dict(engine.index.stats())
        stats["catalog_faces"] = engine.catalog.count_faces()
        stats["catalog_images"] = engine.catalog.count_images()
    emit(as_json, stats, lambda: out.print(stats))


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

    emit(as_json, payload, human)
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

    emit(as_json, payload, human)


@audit_app.command("redact")
def audit_redact(
    seq: Annotated[int, typer.Argument(help="The entry whose free text (its stated purpose) to erase.")],
    reason: Annotated[str, typer.Option(help="Why (recorded off the chain with the redaction).")],
    as_json: JsonOpt = False,
) -> None:
    """Erase an entry's free text, e.g. a purpose that names a person; the chain still verifies."""
    with _engine() as engine:
        erased = engine.redact_audit_text(seq, actor=actor(), reason=reason)
    payload = {"seq": seq, "erased": erased}
    emit(as_json, payload, lambda: err.print(f"entry {seq}: erased {', '.join(erased) or 'nothing'}"))


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False) -> None:
    """Replace the master key and re-wrap every source key with it (the old key stops working)."""
    with _engine() as engine:
        count = engine.rotate_master_key(actor=actor())
        path = engine.keyring.master_path
    payload = {"rotated": True, "keys": count, "master_key": str(path)}
    emit(as_json, payload, lambda: err.print(f"master key rotated ({count} keys re-wrapped): {path}"))


@erasure_app.command("lift")
def erasure_lift(
    reason: Annotated[
        str, typer.Option(help="Why the erasure is overridden (at least 10 characters; audited).")
    ],
    job: Annotated[
        int | None, typer.Option(help="An erasure job: its photos and its request's templates.")
    ] = None,
    photo: Annotated[str | None, typer.Option(help="A photo's sha256: that photo's tombstones.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Let erased photos be ingested again (the only way back; audited as erasure.lift)."""
    with _engine() as engine:
        lifted = engine.lift_erasure(actor=actor(), reason=reason, job_id=job, sha256=photo)
    emit(
        as_json,
        lifted,
        lambda: err.print(
            f"lifted {lifted['tombstones']} tombstone(s) and {len(lifted['suppression_ids'])} "  # type: ignore[arg-type]
            "erasure suppression(s)"
        ),
    )
