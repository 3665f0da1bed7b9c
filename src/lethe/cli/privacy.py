"""Commands for data-subject requests, objections, regulator's orders and retention."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lethe.cli._support import JsonOpt, actor, emit, err, fail, out
from lethe.cli._support import engine_from_settings as _engine
from lethe.privacy.requests import KINDS, METHODS
from lethe.storage import atomic_write, private_dir
from lethe.views import face_crops

if TYPE_CHECKING:
    from lethe.engine import Lethe

request_app = typer.Typer(
    no_args_is_help=True, help="Data-subject requests: access, erasure, objection, restriction."
)
objection_app = typer.Typer(no_args_is_help=True, help="Objections that keep a person out for good.")
order_app = typer.Typer(no_args_is_help=True, help="Regulator's orders (jurisdiction stop).")
retention_app = typer.Typer(no_args_is_help=True, help="Purge faces kept past their source's retention.")
report_app = typer.Typer(no_args_is_help=True, help="Evidence for a regulator.")


def register(app: typer.Typer) -> None:
    app.add_typer(request_app, name="request")
    app.add_typer(objection_app, name="objection")
    app.add_typer(order_app, name="order")
    app.add_typer(retention_app, name="retention")
    app.add_typer(report_app, name="report")


def _read(paths: list[Path]) -> list[bytes]:
    photos = []
    for path in paths:
        try:
            photos.append(path.read_bytes())
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    return photos


@request_app.command("open")
def request_open(
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(KINDS)}.")],
    photo: Annotated[list[Path], typer.Option(help="A photo of the requester (repeat for more).")],
    contact: Annotated[str, typer.Option(help="Where the answer goes (e-mail or postal address).")],
    channel: Annotated[str, typer.Option(help="How the request arrived.")] = "cli",
    language: Annotated[
        str | None, typer.Option(help="The requester's language: en or fr (default LETHE_DEFAULT_LANGUAGE).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a request; the answer is due in one month. The requester is written an acknowledgement
    and what proof of identity is needed (see `lethe request messages`)."""
    photos = _read(photo)
    with _engine() as engine:
        view = engine.requests.open(
            kind=kind, photos=photos, contact=contact, channel=channel, actor=actor(), language=language
        )
    emit(
        as_json,
        {
            "id": view.id,
            "ref": view.ref,
            "kind": view.kind,
            "state": view.state,
            "due_at": view.due_at.isoformat(),
        },
        lambda: out.print(f"request {view.id} ({view.kind}) received; due {view.due_at:%Y-%m-%d}"),
    )


@request_app.command("list")
def request_list(
    state: Annotated[str | None, typer.Option(help="Only requests in this state.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only requests not yet answered.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Requests per page.")] = 50,
    page: Annotated[int, typer.Option(min=1, help="Page number (from 1).")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Requests by due date, one page at a time; overdue ones are marked."""
    with _engine() as engine:
        views = engine.requests.list_requests(state=state, open_only=open_only, limit=limit, page=page)

    def human() -> None:
        table = Table("id", "kind", "state", "received", "due", "overdue")
        for v in views:
            overdue = "[red]OVERDUE[/]" if v.overdue else ""
            table.add_row(
                str(v.id), v.kind, v.state, f"{v.received_at:%Y-%m-%d}", f"{v.due_at:%Y-%m-%d}", overdue
            )
        out.print(table)

    payload = {"requests": [v.as_dict() for v in views], "total": views.total, "next_page": views.next_page}
    emit(as_json, payload, human)


@request_app.command("show")
def request_show(
    request_id: Annotated[int, typer.Argument(help="Request id.")], as_json: JsonOpt = False
) -> None:
    """One request: state, dates, candidates, history."""
    with _engine() as engine:
        requests = engine.requests
        view = requests.get(request_id)
        payload = view.as_dict() | {
            "events": requests.events(request_id),
            "verifications": requests.verifications(request_id),
        }
    emit(as_json, payload, lambda: out.print_json(data=payload))


@request_app.command("verify")
def request_verify(
    request_id: Annotated[int, typer.Argument()],
    method: Annotated[str, typer.Option(help=f"How the identity was checked: {', '.join(METHODS)}.")],
    note: Annotated[
        str | None, typer.Option(help="Details of the check (kept with the record, off the audit chain).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a check of the requester's identity. Running it attests that the person checked is the
    person in the request's photos. An erasure, objection or restriction needs one check; an access
    request needs an identity document (--method id_document) or a second, different verifier. A
    request recorded here was received at the desk: no contact confirmation is needed."""
    with _engine() as engine:
        view = engine.requests.verify(request_id, actor=actor(), method=method, attested=True, note=note)
    emit(as_json, view.as_dict(), lambda: out.print(f"request {view.id} is {view.state}"))


@request_app.command("extend")
def request_extend(
    request_id: Annotated[int, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why more time is needed (Art. 12(3)).")],
    as_json: JsonOpt = False,
) -> None:
    """Extend the deadline to three months after receipt, with a recorded reason."""
    with _engine() as engine:
        view = engine.requests.extend(request_id, reason=reason, actor=actor())
    emit(as_json, view.as_dict(), lambda: out.print(f"request {view.id} now due {view.due_at:%Y-%m-%d}"))


@request_app.command("message")
def request_message(
    request_id: Annotated[int, typer.Argument()],
    kind: Annotated[str, typer.Option(help="extension (Art. 12(3)) or refusal (Art. 12(4)).")],
    reason: Annotated[str, typer.Option(help="Why; the requester reads it.")],
    months: Annotated[int, typer.Option(min=1, max=2, help="With extension: one or two more months.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Write to the requester: an extension (the deadline extended, only within the first month) or
    a refusal (the request refused, with the complaint route). Sent through LETHE_MAIL_CHANNEL, or
    recorded as a draft to send by hand."""
    with _engine() as engine:
        message = engine.requests.message(request_id, kind=kind, reason=reason, actor=actor(), months=months)
    emit(
        as_json,
        message.as_dict(),
        lambda: out.print(f"request {request_id}: {message.kind} {message.state} ({message.channel})"),
    )


@request_app.command("messages")
def request_messages(request_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """The messages written to the requester, oldest first (drafts are for you to send by hand)."""
    with _engine() as engine:
        messages = engine.requests.messages(request_id)

    def human() -> None:
        table = Table("id", "kind", "language", "channel", "state", "generated", "sent", "error")
        for m in messages:
            sent = f"{m.sent_at:%Y-%m-%d %H:%M}" if m.sent_at else ""
            table.add_row(str(m.id), m.kind, m.language, m.channel, m.state,
                          f"{m.generated_at:%Y-%m-%d %H:%M}", sent, m.error or "")  # fmt: skip
        out.print(table)

    emit(as_json, {"messages": [m.as_dict() for m in messages]}, human)


@request_app.command("reject")
def request_reject(
    request_id: Annotated[int, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why the request is refused.")],
    as_json: JsonOpt = False,
) -> None:
    """Refuse a request (the requester's photos are deleted)."""
    with _engine() as engine:
        view = engine.requests.reject(request_id, reason=reason, actor=actor())
    emit(as_json, view.as_dict(), lambda: out.print(f"request {view.id} rejected"))


@request_app.command("run")
def request_run(
    request_id: Annotated[int, typer.Argument()],
    auto: Annotated[bool, typer.Option("--auto", help="Act on the automatic band only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find the person and act (erase / export / suppress); review candidates wait for a reviewer.
    An access request prints the folder of its export on this host."""
    with _engine() as engine:
        result = _export_path(
            engine, request_id, engine.requests.run(request_id, actor=actor(), auto_only=auto)
        )
    emit(as_json, result, lambda: out.print_json(data=result))


@request_app.command("signoff")
def request_signoff(request_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Sign off an erasure request's run as a second data-protection officer (needed only with
    LETHE_ERASURE_SECOND_SIGNOFF on; audited)."""
    with _engine() as engine:
        result = engine.requests.signoffs.sign(request_id, actor=actor(role="dpo"))
    emit(as_json, result, lambda: out.print(f"erasure request {request_id} signed off"))


def _export_path(engine: Lethe, request_id: int, result: dict[str, object]) -> dict[str, object]:
    """The outcome names an access export by its folder's name (the API shows no server path); the
    command line runs on the host and prints where the folder is."""
    if "export" in result:
        result = result | {"export": str(engine.requests.export_path(request_id))}
    return result


@request_app.command("candidates")
def request_candidates(
    request_id: Annotated[int, typer.Argument()],
    pending: Annotated[bool, typer.Option("--pending", help="Only those waiting for a decision.")] = False,
    crops: Annotated[
        Path | None, typer.Option(help="Write each candidate's face crop into this folder.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The faces found for a request, with their band and any decision."""
    with _engine() as engine:
        views = engine.requests.candidates(request_id, pending_only=pending)
        written: dict[int, str] = {}
        if crops is not None:
            folder = private_dir(crops)
            for face_id, jpeg in face_crops(engine, [v.face_id for v in views]).items():
                if jpeg is not None:  # None: its source key was shredded, the crop is gone for good
                    target = folder / f"{face_id}.jpg"
                    atomic_write(target, jpeg, durable=False)
                    written[face_id] = str(target)
    rows = [
        {"face_id": v.face_id, "score": round(v.score, 6), "band": v.band, "round": v.round,
         "decision": v.decision, "crop": written.get(v.face_id)}
        for v in views
    ]  # fmt: skip

    def human() -> None:
        table = Table("face", "score", "band", "decision", "crop")
        for r in rows:
            table.add_row(str(r["face_id"]), f"{r['score']:.3f}", str(r["band"]), str(r["decision"] or "-"),
                          str(r["crop"] or ""))  # fmt: skip
        out.print(table)

    emit(as_json, {"candidates": rows}, human)


@request_app.command("decide")
def request_decide(
    request_id: Annotated[int, typer.Argument()],
    face_id: Annotated[int, typer.Argument()],
    confirm: Annotated[bool, typer.Option("--confirm/--reject", help="Is this the requester?")],
    as_json: JsonOpt = False,
) -> None:
    """A reviewer confirms or rejects one candidate face, and with it every copy of its photo in
    other sources (``face_ids``: all the faces the decision applies to)."""
    with _engine() as engine:
        view = engine.requests.decide(request_id, face_id, confirm=confirm, actor=actor())
    payload = {"face_id": face_id, "decision": view.decision, "face_ids": view.face_ids}
    emit(
        as_json, payload, lambda: out.print(f"face(s) {', '.join(map(str, view.face_ids))}: {view.decision}")
    )


@request_app.command("answer")
def request_answer(request_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Act on the automatic and confirmed faces and close the request (every candidate decided)."""
    with _engine() as engine:
        result = _export_path(engine, request_id, engine.requests.answer(request_id, actor=actor()))
    emit(as_json, result, lambda: out.print_json(data=result))


@request_app.command("delete-export")
def request_delete_export(request_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Delete an access request's export once it is delivered: every file unlinked and the folder
    removed; audited. Exit 3 when the request has no export."""
    with _engine() as engine:
        result = engine.requests.delete_export(request_id, actor=actor())
    emit(
        as_json,
        result,
        lambda: out.print(f"export of request {request_id} deleted ({result['files_deleted']} files)"),
    )


@objection_app.command("list")
def objection_list(as_json: JsonOpt = False) -> None:
    """Objections, active and withdrawn (no templates are shown)."""
    with _engine() as engine:
        rows = engine.objections.list_active()
    emit(as_json, {"objections": rows}, lambda: out.print_json(data=rows))


@objection_app.command("withdraw")
def objection_withdraw(objection_id: Annotated[int, typer.Argument()], as_json: JsonOpt = False) -> None:
    """The person withdraws an objection: its templates are deleted."""
    with _engine() as engine:
        engine.objections.withdraw(objection_id, actor=actor())
    emit(as_json, {"withdrawn": objection_id}, lambda: out.print(f"objection {objection_id} withdrawn"))


@order_app.command("stop")
def order_stop(
    jurisdiction: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 code, e.g. FR.")],
    then_delete: Annotated[
        bool, typer.Option("--then-delete", help="Erase once open access requests are answered.")
    ] = False,
    reference: Annotated[str | None, typer.Option(help="The order's reference (decision number).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Restrict every source of a jurisdiction at once (no search result, no ingest). Where no source
    has that jurisdiction nothing is restricted: a warning says so (stderr, and `warning` in JSON)."""
    with _engine() as engine:
        result = engine.orders.stop(jurisdiction, then_delete=then_delete, actor=actor(), reference=reference)
    if "warning" in result:
        err.print(f"warning: {result['warning']}")
    emit(as_json, result, lambda: out.print_json(data=result))


@order_app.command("lift")
def order_lift(
    order_id: Annotated[int, typer.Argument(help="The order's id (lethe order list).")],
    reason: Annotated[str, typer.Option(help="Why the order ends (audited, kept off the chain).")],
    as_json: JsonOpt = False,
) -> None:
    """End a stop order in force: the sources it covers become active and searchable again (except
    those another order in force covers). Exit 4 once its deletion ran."""
    with _engine() as engine:
        result = engine.orders.lift(order_id, reason=reason, actor=actor())
    emit(as_json, result, lambda: out.print_json(data=result))


@order_app.command("list")
def order_list(as_json: JsonOpt = False) -> None:
    """Orders with their state and proof."""
    with _engine() as engine:
        rows = engine.orders.list_orders()
    emit(as_json, {"orders": rows}, lambda: out.print_json(data=rows))


@order_app.command("complete")
def order_complete(as_json: JsonOpt = False) -> None:
    """Carry out pending deletions whose access requests have been answered."""
    with _engine() as engine:
        rows = engine.orders.complete_pending(actor=actor())
    emit(as_json, {"orders": rows}, lambda: out.print_json(data=rows))


@retention_app.command("run")
def retention_run(as_json: JsonOpt = False) -> None:
    """Erase every face kept longer than its source's retention period."""
    with _engine() as engine:
        result = engine.retention.purge(actor=actor())
    emit(as_json, result, lambda: err.print(f"retention: {result['erased_faces']} face(s) erased"))


@report_app.command("compliance")
def report_compliance(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the pack into.")],
    as_json: JsonOpt = False,
) -> None:
    """Record of processing, requests and response times, erasure receipts, orders, audit chain."""

    with _engine() as engine:
        result = engine.compliance_pack(out_dir, actor=actor())
    emit(as_json, result, lambda: out.print(f"compliance pack written to {result['out']}"))
