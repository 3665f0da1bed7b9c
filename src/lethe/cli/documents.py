"""Signed documents: ``lethe technical-file``, ``lethe signature verify|public-key`` and
``lethe erasure receipt`` (docs/privacy.md, "Signed documents and how to check them").

``lethe signature verify`` works without a data folder when the public key is given: anyone who
received a signed file (a data subject with their receipt, a regulator with the technical file)
checks it with the published key alone. It exits 0 for a valid signature (or a receipt made before
signing, reported as such), 6 for any that does not verify, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lethe.cli._support import JsonOpt, actor, emit, exit_code, fail, out, write_json
from lethe.cli._support import engine_from_settings as _engine
from lethe.cli.core import erasure_app
from lethe.config import Settings
from lethe.errors import LetheError
from lethe.keyring import MASTER_FILE
from lethe.privacy import signatures, technical_file

signature_app = typer.Typer(
    no_args_is_help=True,
    help="Check the signature of a document Lethe signed (technical file, erasure receipt, access copy).",
)

#: The exit code of a signature that does not verify (as for a broken audit chain).
INVALID_EXIT = 6


def register(app: typer.Typer) -> None:
    app.command("technical-file")(technical_file_command)
    app.add_typer(signature_app, name="signature")
    erasure_app.command("receipt")(erasure_receipt)


def technical_file_command(
    out_dir: Annotated[
        Path, typer.Option("--out", help="The folder to write the documents into (created private).")
    ] = Path("technical-file"),
    as_json: JsonOpt = False,
) -> None:
    """Write the technical documentation (AI Act Annex IV), the instructions for use (Art. 13) and the
    EU-database registration fields (Annex VIII), as JSON and HTML, each file signed (dpo or admin;
    audited as report.technical_file)."""
    with _engine() as engine:
        result = technical_file.write(engine.store, out_dir, actor=actor(role="dpo"))
    emit(
        as_json,
        result,
        lambda: out.print(
            f"technical file written to {result['out']} ({len(result['files'])} files), signed with the "
            f"key {result['key_sha256']}",
            soft_wrap=True,
        ),
    )


def _installation_key() -> bytes:
    """The document key of the data folder in the settings; never a new one made for the occasion."""
    try:
        settings = Settings.load()
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    # The key comes from the master key: without one there is no installation to ask (a PostgreSQL
    # catalog elsewhere does not make one; opening it here would make a new key for the occasion).
    master = settings.master_key_file or settings.data_dir / "keys" / MASTER_FILE
    if not master.is_file() or (
        settings.catalog_url is None and not (settings.data_dir / "catalog.sqlite3").is_file()
    ):
        fail(
            f"no public key given and no Lethe data folder at {settings.data_dir}: pass --public-key "
            "(the key published at /api/signing-key)",
            2,
        )
    with _engine() as engine:
        return engine.keyring.document_public_key()


@signature_app.command("verify")
def signature_verify(
    file: Annotated[Path, typer.Argument(help="The signed file: a document, export.json, a receipt's JSON.")],
    signature: Annotated[
        Path | None, typer.Option("--signature", help="Its signature record (default: FILE.sig.json).")
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="The published key: 64 hex digits, or a file (hex, PEM, or the JSON of GET "
            "/api/signing-key). Default: this installation's key.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a signed file with the public key alone; exit 6 when a signature does not verify."""
    try:
        key = signatures.parse_public_key(public_key) if public_key is not None else _installation_key()
        checks = signatures.verify_file(file, key, signature=signature)
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    ok = all(c.ok for c in checks)
    payload = {"file": str(file), "ok": ok, "checks": [c.as_dict() for c in checks]}

    def human() -> None:
        for check in checks:
            where = f"{check.label}: " if check.label else ""
            flag = "INVALID " if check.status == "invalid" else ""
            out.print(f"{flag}{where}{check.reason}", markup=False, highlight=False, soft_wrap=True)

    emit(as_json, payload, human)
    if not ok:
        raise typer.Exit(INVALID_EXIT)


@signature_app.command("public-key")
def signature_public_key(
    pem: Annotated[bool, typer.Option("--pem", help="Print the key as PEM (what OpenSSL reads).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The public key that checks this installation's signed documents, and its SHA-256 fingerprint."""
    with _engine() as engine:
        info = signatures.public_key_info(engine.keyring)
    if pem and not as_json:
        out.print(info["pem"], end="", markup=False, highlight=False, soft_wrap=True)
        return
    emit(as_json, info, lambda: out.print(f"Ed25519 {info['public_key']}\nsha256 {info['key_sha256']}"))


@erasure_app.command("receipt")
def erasure_receipt(
    job: Annotated[int, typer.Argument(help="The erasure job.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the signed receipt to this JSON file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """An erasure's receipt with its signature, to hand to the person it was made for (who checks it
    with `lethe signature verify RECEIPT.json --public-key KEY`)."""
    with _engine() as engine:
        receipt = engine.gate.receipt(job)
        if receipt is None:
            fail(f"no finished erasure job {job}", 3)
    payload = receipt.as_dict()
    if out_file is not None:
        write_json(out_file, payload)
    signed = "signed" if receipt.signature else signatures.UNSIGNED
    emit(
        as_json,
        payload,
        lambda: out.print(
            f"receipt of erasure job {job} ({signed})"
            + (f" written to {out_file}" if out_file else f":\n{json.dumps(payload, indent=2)}"),
            markup=False,
            highlight=False,
        ),
    )
