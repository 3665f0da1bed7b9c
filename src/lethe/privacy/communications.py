"""Messages to data subjects about their requests (GDPR Art. 12(3)-(4)): what is written to a
requester, in the request's language, through a pluggable channel, each message recorded.

Kinds (:data:`KINDS`), and when each is generated:

- ``acknowledgement``: on receipt (a request recorded at the desk, or a portal request once its
  contact address is confirmed): the reference, the due date, what happens next.
- ``identity_check``: with it, while the identity check is pending: what proof is needed and why.
- ``extension``: when the deadline is extended (Art. 12(3)): only within the first month after
  receipt, by at most two more months, with its reason.
- ``answer``: when the request is answered, from its outcome (the answer letter,
  :mod:`lethe.privacy.requests.letter`).
- ``refusal``: when the request is refused (Art. 12(4)): the reason, the complaint route (the
  supervisory authority of the jurisdiction of the sources concerned) and the right to a judicial
  remedy.

A message names the reference, dates and counts; never a photo file, a face id or another person
(:mod:`lethe.privacy.communication_texts`). Each is recorded (``request_message``): kind, language,
when generated and sent, channel, outcome, attempts, the body and its SHA-256. The body holds no
personal data beyond the reference and, for an extension or a refusal, the reason the officer
wrote; it is kept with the request's other records for the request's lifetime. The contact address
is never recorded with it: it stays sealed on the request and is opened only to hand the message to
the channel.

With ``LETHE_MAIL_CHANNEL=none`` a message is a ``draft`` (audited ``communication.drafted``) for
the data-protection officer to send by hand. With ``smtp`` it is ``pending`` until sent
(``communication.sent``); a failure is recorded (``failed``, ``communication.failed``, the error's
class, never its text) and retried by the next call that writes a message, or
:meth:`Communications.deliver_pending` (the service's maintenance pass): a message is never lost. A
contact that is not an e-mail address (a postal address) gets a draft.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestCandidateRow, RequestMessageRow, RequestRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.errors import DeliveryError, InputError, NotFoundError, SealedDataError
from lethe.privacy import audit
from lethe.privacy.communication_texts import KINDS, LANGUAGES, Facts, check_language, render
from lethe.privacy.mail import MailChannel, channel_from, is_email
from lethe.privacy.requests import letter, records
from lethe.privacy.requests.workflow import add_months

if TYPE_CHECKING:
    from lethe.store import Store

__all__ = ["KINDS", "LANGUAGES", "Communications", "MessageView", "check_language"]

log = logging.getLogger(__name__)

#: A send that began this long ago and never ended (the process died) is tried again.
STALE_SENDING = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class MessageView:
    id: int
    request_id: int
    kind: str
    language: str
    channel: str
    state: str
    generated_at: datetime
    generated_by: str
    sent_at: datetime | None
    attempts: int
    error: str | None
    subject: str
    body: str
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "kind": self.kind,
            "language": self.language,
            "channel": self.channel,
            "state": self.state,
            "generated_at": self.generated_at.isoformat(),
            "generated_by": self.generated_by,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "attempts": self.attempts,
            "error": self.error,
            "subject": self.subject,
            "body": self.body,
            "sha256": self.sha256,
        }


def _view(row: RequestMessageRow) -> MessageView:
    return MessageView(
        row.id, row.request_id, row.kind, row.language, row.channel, row.state, row.generated_at,
        row.generated_by, row.sent_at, row.attempts, row.error, row.subject, row.body, row.sha256,
    )  # fmt: skip


class Communications:
    """Generates, records and sends the messages of requests over an open store."""

    def __init__(self, store: Store, channel: MailChannel | None = None) -> None:
        self.store = store
        self.catalog = store.catalog
        self.settings = store.settings
        self.channel = channel if channel is not None else channel_from(store.settings)

    # -- reading -------------------------------------------------------------------------------

    def messages(self, request_id: int) -> list[MessageView]:
        """The request's messages, oldest first (``NotFoundError`` for an unknown request)."""
        with self.catalog.session() as session:
            if session.get(RequestRow, request_id) is None:
                raise NotFoundError(f"no request {request_id}")
            rows = session.scalars(
                select(RequestMessageRow)
                .where(RequestMessageRow.request_id == request_id)
                .order_by(RequestMessageRow.id)
            ).all()
            return [_view(r) for r in rows]

    # -- writing -------------------------------------------------------------------------------

    def received(self, request_id: int, *, actor: str) -> list[MessageView]:
        """The messages of a request just received: the acknowledgement and, while its requester's
        identity is not checked, what proof is needed. Once per request (a second call writes none)."""
        with self.catalog.session() as session:
            row = session.get(RequestRow, request_id)
            if row is None or row.state == "unconfirmed":
                return []
            known = set(
                session.scalars(
                    select(RequestMessageRow.kind).where(RequestMessageRow.request_id == request_id)
                )
            )
            pending_check = row.state == "received"
        kinds = [k for k in ("acknowledgement", "identity_check") if k not in known]
        if not pending_check:
            kinds = [k for k in kinds if k != "identity_check"]
        return [self.write(request_id, kind, actor=actor) for kind in kinds]

    def write(
        self,
        request_id: int,
        kind: str,
        *,
        actor: str,
        reason: str | None = None,
        previous_due: datetime | None = None,
        now: datetime | None = None,
    ) -> MessageView:
        """Generate message ``kind`` of the request in its language, record it (a draft, or pending
        for the channel) with its audit entry, then send what waits (this message and any earlier
        one whose send failed). The request must exist; ``extension`` and ``refusal`` need
        ``reason``."""
        if kind not in KINDS:
            raise InputError(f"message kind must be one of {', '.join(KINDS)}")
        if kind in ("extension", "refusal") and not (reason or "").strip():
            raise InputError(f"an {kind} message needs its reason")
        at = now or now_utc()
        with self.store.writing(), self.catalog.session() as session, session.begin():
            row = session.get(RequestRow, request_id)
            if row is None:
                raise NotFoundError(f"no request {request_id}")
            language = row.language or self.settings.default_language
            subject, body = render(kind, language, self._facts(session, row, reason, previous_due))
            message = RequestMessageRow(
                request_id=row.id,
                kind=kind,
                language=language,
                channel=self.channel.name if self.channel else "none",
                state="pending" if self.channel else "draft",
                generated_at=at,
                generated_by=actor,
                attempts=0,
                error=None,
                subject=subject,
                body=body,
                sha256=hashlib.sha256(body.encode()).hexdigest(),
            )
            session.add(message)
            session.flush()
            audit.append(
                session,
                actor=actor,
                action="communication.drafted",
                details={"request_id": row.id, "message_id": message.id, "kind": kind,
                         "language": language, "channel": message.channel, "sha256": message.sha256},
                at=at,
            )  # fmt: skip
            message_id = message.id
        self.deliver_pending()
        return self._get(message_id)

    def deliver_pending(self, *, now: datetime | None = None) -> dict[str, int]:
        """Send every message waiting for the channel (new ones, failed ones, and sends that began
        over :data:`STALE_SENDING` ago and never ended), oldest first. Each outcome is recorded and
        audited; a failure stays to be retried. Counts ``sent`` and ``failed``."""
        counts = {"sent": 0, "failed": 0}
        if self.channel is None:
            return counts
        at = now or now_utc()
        with self.catalog.session() as session:
            ids = session.scalars(
                select(RequestMessageRow.id)
                .where(
                    or_(
                        RequestMessageRow.state.in_(("pending", "failed")),
                        (RequestMessageRow.state == "sending")
                        & (RequestMessageRow.last_attempt_at < at - STALE_SENDING),
                    ),
                    RequestMessageRow.channel == self.channel.name,
                )
                .order_by(RequestMessageRow.id)
            ).all()
        for message_id in ids:
            outcome = self._deliver(message_id)
            if outcome is not None:
                counts[outcome] += 1
        return counts

    # -- internals -----------------------------------------------------------------------------

    def _deliver(self, message_id: int) -> str | None:
        channel = self.channel
        if channel is None:
            return None
        started = now_utc()
        with self.store.writing(), self.catalog.session() as session, session.begin():
            claimed = session.execute(
                update(RequestMessageRow)
                .where(
                    RequestMessageRow.id == message_id,
                    or_(
                        RequestMessageRow.state.in_(("pending", "failed")),
                        (RequestMessageRow.state == "sending")
                        & (RequestMessageRow.last_attempt_at < started - STALE_SENDING),
                    ),
                )
                .values(
                    state="sending",
                    last_attempt_at=started,
                    attempts=RequestMessageRow.attempts + 1,
                )
            ).rowcount  # type: ignore[attr-defined]
            if not claimed:  # another process took it
                return None
            message = session.get(RequestMessageRow, message_id)
            request = session.get(RequestRow, message.request_id) if message else None
            if message is None or request is None:
                return None
            request_id, subject, body, language = request.id, message.subject, message.body, message.language
            to = self._contact(request)  # opened only to hand the message to the channel
        error: str | None = None
        by_hand = to is not None and not is_email(to)  # a postal address: the officer posts it
        try:
            if to is None:
                raise DeliveryError("the contact address cannot be opened")
            if by_hand:
                raise DeliveryError("the contact is not an e-mail address: send it by hand")
            channel.send(to=to, subject=subject, body=body, language=language)
        except DeliveryError as exc:
            error = str(exc)[:200]
        del to
        at = now_utc()
        with self.store.writing(), self.catalog.session() as session, session.begin():
            message = session.get(RequestMessageRow, message_id)
            if message is None:
                return None
            message.state, message.error = ("failed", error) if error else ("sent", None)
            if by_hand:
                message.state, message.channel = "draft", "none"
            if not error:
                message.sent_at = at
            details: dict[str, Any] = {"request_id": message.request_id, "message_id": message_id,
                                       "kind": message.kind, "channel": channel.name,
                                       "attempt": message.attempts}  # fmt: skip
            if error:
                details["error"] = error
            audit.append(
                session,
                actor="system",
                action="communication.failed" if error else "communication.sent",
                details=details,
                at=at,
            )
        if error:
            log.warning("message %s of request %s not sent: %s", message_id, request_id, error)
        return "failed" if error else "sent"

    def _contact(self, row: RequestRow) -> str | None:
        try:
            return records.contact(self.store, row)
        except SealedDataError:
            return None

    def _get(self, message_id: int) -> MessageView:
        with self.catalog.session() as session:
            row = session.get(RequestMessageRow, message_id)
            if row is None:
                raise NotFoundError(f"no message {message_id}")
            return _view(row)

    def _facts(
        self, session: Session, row: RequestRow, reason: str | None, previous_due: datetime | None
    ) -> Facts:
        view = records.view(session, row)
        english = letter.draft(view) if row.state in ("answered", "rejected") else None
        return Facts(
            ref=row.ref,
            request_kind=row.kind,
            state=row.state,
            received_at=row.received_at,
            due_at=row.due_at,
            first_month_ends=add_months(row.received_at, 1),
            controller=self.settings.controller_name,
            dpo_contact=self.settings.dpo_contact,
            reason=(reason or "").strip() or None,
            previous_due_at=previous_due,
            outcome=view.outcome or {},
            jurisdictions=_jurisdictions(session, row.id),
            english_answer=english,
        )


def _jurisdictions(session: Session, request_id: int) -> tuple[str, ...]:
    """The jurisdictions of the sources a request concerns (those of its candidates' faces); with
    none (nothing found, or all erased), those of every source held."""
    found = session.scalars(
        select(SourceRow.jurisdiction)
        .join(ImageRow, ImageRow.source_id == SourceRow.id)
        .join(FaceRow, FaceRow.image_id == ImageRow.id)
        .join(RequestCandidateRow, RequestCandidateRow.face_id == FaceRow.id)
        .where(RequestCandidateRow.request_id == request_id)
        .distinct()
    ).all()
    if not found:
        found = session.scalars(select(SourceRow.jurisdiction).distinct()).all()
    return tuple(sorted(found))
