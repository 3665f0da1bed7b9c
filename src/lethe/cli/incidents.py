"""The breach and serious-incident register: ``lethe incident open|list|show|update|notify|close|draft``
(docs/privacy.md, "Breaches and serious incidents"; docs/operations.md, "The first 72 hours")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from lethe.cli._support import JsonOpt, actor, emit, fail, out, write_json
from lethe.cli._support import engine_from_settings as _engine
from lethe.engine import Lethe
from lethe.privacy import incident_drafts
from lethe.privacy.incident_clocks import AI_CATEGORIES, GROUNDS, RECIPIENTS, Incident

incident_app = typer.Typer(
    no_args_is_help=True,
    help="Breaches (GDPR Arts. 33-34) and serious incidents (AI Act Art. 73): the register, its clocks "
    "and the notification drafts (dpo or admin).",
)

IncidentId = Annotated[int, typer.Argument(help="The incident's number.", min=1)]
TIME_HELP = "ISO 8601, e.g. 2026-12-07T09:30Z; UTC unless it names an offset."


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option}: not an ISO 8601 time: {value!r} ({TIME_HELP})", 2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _line(incident: Incident, now: datetime) -> str:
    clocks = incident.clocks(now)
    state = "OVERDUE" if any(c.overdue for c in clocks) else ("open" if incident.open else "closed")
    kinds = " + ".join(k.replace("_", " ") for k in incident.kinds)
    first = next((c for c in clocks if not c.settled), None)
    return f"{incident.id:>5}  {state:<8} {kinds}  aware {incident.aware_at:%Y-%m-%d %H:%M} UTC" + (
        f"  — {first.words}" if first else ""
    )


def _record(as_json: bool, step: Callable[[Lethe, datetime], Incident]) -> None:
    """Run one step at the service's time and print the incident as it stands after it."""
    with _engine() as engine:
        now = engine.incidents.clock()
        incident = step(engine, now)
    emit(as_json, incident.as_dict(now), lambda: _show(incident, now))


def _show(incident: Incident, now: datetime) -> None:
    out.print(_line(incident, now), markup=False, highlight=False, soft_wrap=True)
    for clock in incident.clocks(now):
        mark = "OVERDUE: " if clock.overdue else ""
        out.print(f"  {mark}{clock.words}", markup=False, highlight=False, soft_wrap=True)


@incident_app.command("open")
def incident_open(
    description: Annotated[
        str, typer.Option(help="What happened (audited, erasable; name no data subject).")
    ],
    aware_at: Annotated[
        str, typer.Option("--aware-at", help=f"When you became aware: the clocks run from here. {TIME_HELP}")
    ],
    breach: Annotated[
        bool, typer.Option("--breach/--no-breach", help="A personal-data breach (GDPR Arts. 33-34).")
    ] = True,
    serious: Annotated[
        str | None,
        typer.Option(
            "--serious",
            help=f"A serious incident (AI Act Art. 73) of this category: {', '.join(AI_CATEGORIES)}.",
        ),
    ] = None,
    detected_at: Annotated[
        str | None,
        typer.Option("--detected-at", help=f"When it was detected (default: aware-at). {TIME_HELP}"),
    ] = None,
    occurred_at: Annotated[
        str | None, typer.Option("--occurred-at", help=f"When it began. {TIME_HELP}")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="A source it concerns (repeat).")
    ] = None,
    window_start: Annotated[
        str | None, typer.Option("--window-start", help=f"Start of the time it concerns. {TIME_HELP}")
    ] = None,
    window_end: Annotated[
        str | None,
        typer.Option("--window-end", help=f"End of the time it concerns (default now). {TIME_HELP}"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an incident; its clocks start at --aware-at."""
    with _engine() as engine:
        now = engine.incidents.clock()
        aware = _when(aware_at, "--aware-at") or fail("--aware-at is required", 2)
        incident = engine.incidents.open(
            actor=actor(role="dpo"),
            description=description,
            aware_at=aware,
            personal_data_breach=breach,
            ai_category=serious,
            detected_at=_when(detected_at, "--detected-at"),
            occurred_at=_when(occurred_at, "--occurred-at"),
            sources=source or [],
            window_start=_when(window_start, "--window-start"),
            window_end=_when(window_end, "--window-end"),
            now=now,
        )
    emit(as_json, incident.as_dict(now), lambda: _show(incident, now))


@incident_app.command("list")
def incident_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only incidents not closed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Incidents, newest awareness first, with where their clocks stand now."""
    with _engine() as engine:
        actor(role="dpo")
        now = engine.incidents.clock()
        listed = engine.incidents.list(open_only=open_only)

    def human() -> None:
        for incident in listed:
            out.print(_line(incident, now), markup=False, highlight=False, soft_wrap=True)

    payload = {
        "incidents": [i.as_dict(now) for i in listed],
        "overdue": [i.id for i in listed if i.overdue(now)],
    }
    emit(as_json, payload, human)


@incident_app.command("show")
def incident_show(incident_id: IncidentId, as_json: JsonOpt = False) -> None:
    """One incident: its clocks, sources and steps."""

    def read(engine: Lethe, _now: datetime) -> Incident:
        actor(role="dpo")
        return engine.incidents.get(incident_id)

    _record(as_json, read)


@incident_app.command("update")
def incident_update(
    incident_id: IncidentId,
    action: Annotated[str, typer.Option(help="An action taken (audited, erasable).")],
    as_json: JsonOpt = False,
) -> None:
    """Record an action taken (containment, key rotation, a source suspended ...)."""
    _record(
        as_json, lambda e, now: e.incidents.act(incident_id, actor=actor(role="dpo"), action=action, now=now)
    )


@incident_app.command("notify")
def incident_notify(
    incident_id: IncidentId,
    to: Annotated[str, typer.Option("--to", help=f"Who: {', '.join(RECIPIENTS)}.")],
    at: Annotated[
        str | None, typer.Option("--at", help=f"When it was notified (default now). {TIME_HELP}")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="The recipient's reference for it (audited, erasable).")
    ] = None,
    note: Annotated[
        str | None, typer.Option(help="A note, e.g. the reasons for a delay (audited, erasable).")
    ] = None,
    ground: Annotated[
        str | None,
        typer.Option(
            help="Do NOT notify, on this ground: "
            + "; ".join(f"{r}: {', '.join(g)}" for r, g in GROUNDS.items())
            + " (needs --reason)."
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why not, with --ground (audited, erasable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a notification made (with the sha256 of the current draft), or a decision not to make
    one (--ground and --reason)."""
    with _engine() as engine:
        who = actor(role="dpo")
        incidents = engine.incidents
        if ground is not None:
            if at is not None or reference is not None:
                fail(
                    "--ground records a decision not to notify: it takes --reason, not --at or --reference", 2
                )
            incident = incidents.decide(
                incident_id, actor=who, recipient=to, ground=ground, reason=reason or ""
            )
        else:
            if reason is not None:
                fail(
                    "--reason goes with --ground (a decision not to notify); use --note with a notification",
                    2,
                )
            incident = incident_drafts.notify(
                incidents,
                incident_id,
                actor=who,
                recipient=to,
                at=_when(at, "--at"),
                reference=reference,
                note=note,
            )
        now = incidents.clock()
    emit(as_json, incident.as_dict(now), lambda: _show(incident, now))


@incident_app.command("close")
def incident_close(
    incident_id: IncidentId,
    note: Annotated[str | None, typer.Option(help="A closing note (audited, erasable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Close an incident: refused while a notification is neither recorded nor decided against."""
    _record(
        as_json, lambda e, now: e.incidents.close(incident_id, actor=actor(role="dpo"), note=note, now=now)
    )


@incident_app.command("draft")
def incident_draft(
    incident_id: IncidentId,
    to: Annotated[
        str | None, typer.Option("--to", help="Only the draft for this recipient (default: every draft).")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the drafts as JSON here (mode 0600).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The notification drafts, prefilled from the catalog and the audit log, with their sha256 and
    the audit chain's head; [TO COMPLETE: ...] marks what a person must write."""
    with _engine() as engine:
        actor(role="dpo")
        now = engine.incidents.clock()
        made = incident_drafts.drafts(engine.store, engine.incidents.get(incident_id), now=now)
    chosen = made["drafts"]
    if to is not None:
        if to not in chosen:
            fail(f"incident {incident_id} has no draft for {to!r}: it has {', '.join(chosen) or 'none'}", 3)
        chosen = {to: chosen[to]}
    payload = made | {"drafts": chosen}
    if out_file is not None:
        write_json(out_file, payload)
        emit(as_json, {"drafts": list(chosen), "out": str(out_file)}, lambda: None)
        return
    if as_json:
        emit(True, payload, lambda: None)
        return
    for draft in chosen.values():
        text = draft["text"] + f"sha256 {draft['sha256']}; audit head {draft['evidence']['audit_head']}\n"
        typer.echo(text)
