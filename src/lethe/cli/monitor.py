"""Misuse detection and the monitoring report: ``lethe monitor scan|alerts|ack|report`` (dpo or admin;
docs/oversight.md, 'Misuse detection and monitoring')."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from lethe.cli._support import JsonOpt, actor, emit, err, out, write_json
from lethe.cli._support import engine_from_settings as _engine
from lethe.privacy.monitoring import Alert

monitor_app = typer.Typer(
    no_args_is_help=True,
    help="Misuse alerts over the search log, and the aggregated monitoring report (dpo or admin).",
)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")


def _line(alert: Alert) -> str:
    state = "open" if alert.open else f"acknowledged by {alert.acknowledged_by}"
    shown = {k: v for k, v in alert.details.items() if k not in ("kind", "subject", "seqs")}
    return f"#{alert.seq} {alert.at:%Y-%m-%d %H:%M} {alert.kind} ({state}) {json.dumps(shown, default=str)}"


@monitor_app.command("scan")
def monitor_scan(as_json: JsonOpt = False) -> None:
    """Evaluate the misuse rules now; each new finding becomes an alert (audited as alert.KIND)."""
    with _engine() as engine:
        raised = engine.monitoring.scan_for_misuse(actor=actor(role="dpo"))
    payload = {"raised": len(raised), "alerts": [a.as_dict() for a in raised]}
    emit(
        as_json,
        payload,
        lambda: out.print(
            "\n".join([f"{len(raised)} new alert(s)", *(_line(a) for a in raised)]),
            markup=False,
            highlight=False,
        ),
    )


@monitor_app.command("alerts")
def monitor_alerts(
    show_all: Annotated[bool, typer.Option("--all", help="Acknowledged alerts too.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Alerts, newest first: open ones only unless --all."""
    with _engine() as engine:
        actor(role="dpo")
        alerts = engine.monitoring.alerts(open_only=not show_all, limit=limit)
    emit(
        as_json,
        {"alerts": [a.as_dict() for a in alerts]},
        lambda: out.print("\n".join(_line(a) for a in alerts) or "no alert", markup=False, highlight=False),
    )


@monitor_app.command("ack")
def monitor_ack(
    seq: Annotated[int, typer.Argument(min=1, help="The alert's seq.")], as_json: JsonOpt = False
) -> None:
    """Acknowledge an alert: seen and dealt with (audited as alert.ack); again changes nothing."""
    with _engine() as engine:
        alert = engine.monitoring.acknowledge(seq, actor=actor(role="dpo"))
    emit(as_json, alert.as_dict(), lambda: out.print(_line(alert), markup=False, highlight=False))


@monitor_app.command("report")
def monitor_report(
    since: Annotated[
        datetime | None, typer.Option("--since", help="From this date (YYYY-MM-DD, UTC); default all held.")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON report here instead of stdout.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The monitoring report (EU AI Act Art. 72): per week, searches, failure to acquire, matches and
    review/verification decisions by score band, alerts; score drift across model or threshold
    changes. Aggregated: no probe hash, face, request or account name. Audited."""
    start = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    with _engine() as engine:
        report = engine.monitoring_report(actor=actor(role="dpo"), since=start)
    if out_file is None:
        typer.echo(json.dumps(report, indent=None if as_json else 2))
        return
    write_json(out_file, report)
    payload = {
        "report": str(out_file),
        "weeks": len(weeks) if isinstance(weeks := report["weeks"], list) else 0,
        "drift_flagged": report["drift_flagged"],
    }
    emit(as_json, payload, lambda: err.print(f"monitoring report: {payload['weeks']} week(s) -> {out_file}"))
