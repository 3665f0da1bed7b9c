"""Log retention: ``lethe audit checkpoint|prune|public-key`` (see docs/oversight.md, 'Log retention')."""

from __future__ import annotations

import typer

from lethe.cli._support import JsonOpt, actor, emit, out
from lethe.cli._support import engine_from_settings as _engine


def register(audit_app: typer.Typer) -> None:
    audit_app.command("checkpoint")(audit_checkpoint)
    audit_app.command("prune")(audit_prune)
    audit_app.command("public-key")(audit_public_key)


def audit_checkpoint(as_json: JsonOpt = False) -> None:
    """Append a signed checkpoint entry of the chain's head (Ed25519; audited as audit.checkpoint)."""
    with _engine() as engine:
        result = engine.audit_retention.checkpoint(actor=actor())
    emit(
        as_json,
        result,
        lambda: out.print(
            f"checkpoint {result['checkpoint']} at entry {result['checkpoint_seq']}"
            + ("" if result["checkpoint_created"] else " (the head is already a checkpoint)")
        ),
    )


def audit_prune(as_json: JsonOpt = False) -> None:
    """Delete audit entries older than LETHE_LOG_RETENTION_DAYS, up to a signed checkpoint (admin;
    audited as audit.pruned); what remains still verifies."""
    with _engine() as engine:
        result = engine.audit_retention.prune(actor=actor(role="admin"))
    emit(
        as_json,
        result,
        lambda: out.print(
            f"pruned {result['pruned']} entries older than {result['retention_days']} days"
            + (f" (before entry {result['pruned_before']})" if result["pruned"] else "")
        ),
    )


def audit_public_key(as_json: JsonOpt = False) -> None:
    """The public key that checks the audit log's signed checkpoints, and its SHA-256 fingerprint."""
    with _engine() as engine:
        result = engine.audit_retention.public_key()
    emit(as_json, result, lambda: out.print(f"Ed25519 {result['public_key']}\nsha256 {result['key_sha256']}"))
