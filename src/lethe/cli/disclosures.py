"""The disclosure ledger and the notices to recipients (GDPR Arts. 15(1)(c), 17(2), 19):
``lethe recipient add|list|bind-token|unbind-token``, ``lethe disclosure record|list`` and
``lethe recipient-notice list|show|send|sent|not-required``.

``recipient-notice``, not ``notice``: a notice in Lethe is a source's public transparency notice
(``/notice/{name}``, ``GET /api/notices``); these are the notices owed to recipients."""

from __future__ import annotations

from typing import Annotated

import typer

from lethe.cli._support import JsonOpt, actor, emit, out
from lethe.cli._support import engine_from_settings as _engine
from lethe.privacy.disclosures import KINDS, Disclosure
from lethe.privacy.recipient_notices import STATES, NoticeView

recipient_app = typer.Typer(
    no_args_is_help=True,
    help="Recipients personal data is disclosed to (organisations or roles, never a data subject).",
)
disclosure_app = typer.Typer(no_args_is_help=True, help="The disclosure ledger: what was handed to whom.")
notice_app = typer.Typer(
    no_args_is_help=True,
    help="Notices owed to recipients after an erasure, restriction or objection (GDPR Arts. 19, 17(2)).",
)

RecipientOpt = Annotated[
    int, typer.Option("--recipient", help="The recipient's id (`lethe recipient list`).", min=1)
]
NoticeId = Annotated[int, typer.Argument(help="The notice's id (`lethe recipient-notice list`).", min=1)]


def register(app: typer.Typer) -> None:
    app.add_typer(recipient_app, name="recipient")
    app.add_typer(disclosure_app, name="disclosure")
    app.add_typer(notice_app, name="recipient-notice")


# -- recipients ------------------------------------------------------------------------------------


@recipient_app.command("add")
def recipient_add(
    name: Annotated[str, typer.Argument(help="The organisation or role (never a data subject).")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(KINDS)}.")],
    country: Annotated[str, typer.Option(help="Where it is (ISO 3166-1 alpha-2, e.g. FR, US).")],
    contact: Annotated[
        str | None, typer.Option(help="An e-mail address for notices (stored sealed, never logged).")
    ] = None,
    safeguard: Annotated[
        str | None,
        typer.Option(help="Outside the EEA: the transfer's safeguard (adequacy decision, clauses...)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a recipient (dpo or admin; audited)."""
    with _engine() as engine:
        recipient = engine.disclosures.add_recipient(
            name, kind, country, actor=actor(role="dpo"), contact=contact, safeguard=safeguard
        )
    emit(as_json, recipient.as_dict(), lambda: out.print(f"recipient {recipient.id} added", highlight=False))


@recipient_app.command("list")
def recipient_list(as_json: JsonOpt = False) -> None:
    """Every recipient with how many disclosures it received (never its address)."""
    with _engine() as engine:
        recipients = engine.disclosures.recipients()

    def human() -> None:
        for r in recipients:
            where = f"{r.country}{' (outside the EEA)' if r.outside_eea else ''}"
            out.print(
                f"{r.id:>5}  {r.name}  {r.kind}  {where}  {r.disclosures} disclosure(s)"
                f"{'  e-mail' if r.has_contact else ''}",
                markup=False,
                highlight=False,
            )

    emit(as_json, {"recipients": [r.as_dict() for r in recipients]}, human)


@recipient_app.command("bind-token")
def recipient_bind_token(
    token_id: Annotated[int, typer.Argument(help="The API token's id (`lethe token list`).", min=1)],
    recipient: RecipientOpt,
    reason: Annotated[str, typer.Option(help="The legal basis or reason of its disclosures, in words.")],
    as_json: JsonOpt = False,
) -> None:
    """Bind an API token to a recipient: every search answered to it is then a disclosure."""
    with _engine() as engine:
        bound = engine.disclosures.bind_token(token_id, recipient, reason=reason, actor=actor(role="dpo"))
    emit(
        as_json, bound, lambda: out.print(f"token {token_id} bound to recipient {recipient}", highlight=False)
    )


@recipient_app.command("unbind-token")
def recipient_unbind_token(
    token_id: Annotated[int, typer.Argument(help="The API token's id.", min=1)], as_json: JsonOpt = False
) -> None:
    """Searches answered to the token are no longer disclosures (the ledger keeps earlier ones)."""
    with _engine() as engine:
        engine.disclosures.unbind_token(token_id, actor=actor(role="dpo"))
    emit(as_json, {"token_id": token_id, "bound": False}, lambda: out.print(f"token {token_id} unbound"))


# -- the ledger ------------------------------------------------------------------------------------


def _disclosure_line(d: Disclosure) -> str:
    faces = ", ".join(str(f) for f in d.face_ids[:12]) + (" ..." if len(d.face_ids) > 12 else "")
    return (
        f"{d.id:>5}  {d.at:%Y-%m-%d %H:%M}  to {d.recipient} ({d.kind})  {d.channel}"
        f"{'  ' + d.reference if d.reference else ''}  faces {faces}  by {d.actor}: {d.reason}"
    )


@disclosure_app.command("record")
def disclosure_record(
    recipient: RecipientOpt,
    face: Annotated[list[int], typer.Option("--face", help="A face disclosed (repeat the option).", min=1)],
    reason: Annotated[
        str, typer.Option(help="The legal basis or reason, in words (at least 10 characters).")
    ],
    reference: Annotated[
        str | None, typer.Option(help="Your reference for it (a letter, a case file).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record what left by other means (a print, an e-mail): the faces it carried, to whom, why."""
    with _engine() as engine:
        disclosure = engine.disclosures.record(
            recipient, face, reason=reason, actor=actor(role="dpo"), channel="manual", reference=reference
        )
    emit(
        as_json,
        disclosure.as_dict(),
        lambda: out.print(f"disclosure {disclosure.id} recorded", highlight=False),
    )


@disclosure_app.command("list")
def disclosure_list(
    recipient: Annotated[int | None, typer.Option(help="Only to this recipient.", min=1)] = None,
    face: Annotated[int | None, typer.Option(help="Only those that carried this face.", min=1)] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Disclosures, newest first (channels: manual, api_token, use_export)."""
    with _engine() as engine:
        found = engine.disclosures.list_disclosures(recipient_id=recipient, face_id=face, limit=limit)

    def human() -> None:
        for d in found:
            out.print(_disclosure_line(d), markup=False, highlight=False, soft_wrap=True)

    emit(as_json, {"disclosures": [d.as_dict() for d in found]}, human)


# -- notices ---------------------------------------------------------------------------------------


def _notice_line(n: NoticeView) -> str:
    to = n.recipient if n.recipient is not None else "other controllers (Art. 17(2))"
    done = f" {n.state_at:%Y-%m-%d} by {n.state_by}" if n.state_at and n.state != "pending" else ""
    return (
        f"{n.id:>5}  Art. {n.article:<5}  {n.cause:<11}  {n.reference}  to {to}  "
        f"{len(n.face_ids)} face(s)  {n.state}{done}"
    )


def _emit_notice(as_json: bool, notice: NoticeView) -> None:
    emit(as_json, notice.as_dict(), lambda: out.print(_notice_line(notice), markup=False, highlight=False))


@notice_app.command("list")
def notice_list(
    state: Annotated[str | None, typer.Option(help=f"Only in this state: {', '.join(STATES)}.")] = None,
    request: Annotated[int | None, typer.Option(help="Only those of this request.", min=1)] = None,
    as_json: JsonOpt = False,
) -> None:
    """The notices owed to recipients, oldest first."""
    with _engine() as engine:
        found = engine.recipient_notices.list_notices(state=state, request_id=request)

    def human() -> None:
        for n in found:
            out.print(_notice_line(n), markup=False, highlight=False, soft_wrap=True)

    emit(as_json, {"notices": [n.as_dict() for n in found]}, human)


@notice_app.command("show")
def notice_show(notice_id: NoticeId, as_json: JsonOpt = False) -> None:
    """One notice with its text (to copy into a letter)."""
    with _engine() as engine:
        notice = engine.recipient_notices.get(notice_id)
    emit(as_json, notice.as_dict(), lambda: out.print(f"{notice.subject}\n\n{notice.body}", markup=False))


@notice_app.command("send")
def notice_send(notice_id: NoticeId, as_json: JsonOpt = False) -> None:
    """Send it to the recipient's e-mail address through the mail channel (LETHE_MAIL_CHANNEL)."""
    with _engine() as engine:
        notice = engine.recipient_notices.send(notice_id, actor=actor(role="dpo"))
    _emit_notice(as_json, notice)


@notice_app.command("sent")
def notice_sent(
    notice_id: NoticeId,
    note: Annotated[
        str | None, typer.Option(help="How it was sent (post, the recipient's portal...).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that it was sent by hand (who and when are recorded)."""
    with _engine() as engine:
        notice = engine.recipient_notices.mark_sent(notice_id, actor=actor(role="dpo"), note=note)
    _emit_notice(as_json, notice)


@notice_app.command("not-required")
def notice_not_required(
    notice_id: NoticeId,
    reason: Annotated[
        str,
        typer.Option(help="Why (Art. 19: impossible or a disproportionate effort; at least 10 characters)."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Record that the notice is not required, and why."""
    with _engine() as engine:
        notice = engine.recipient_notices.not_required(notice_id, actor=actor(role="dpo"), reason=reason)
    _emit_notice(as_json, notice)
