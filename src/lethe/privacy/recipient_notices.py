"""Notices to recipients (GDPR Arts. 19 and 17(2)): when an erasure, a restriction or an objection
removes or hides faces that were disclosed (:mod:`lethe.privacy.disclosures`), each recipient they
were disclosed to gets one notice saying what to erase or stop using, quoting the request's
reference (or the erasure job's) and the date; no biometric data, no name, no photo.

When they are generated:

- an **erasure**, whatever drives it (a request's run, a consent withdrawal, a retention purge, an
  order, a deleted source): :func:`on_erasure`, in the very transaction that deletes the faces'
  rows (:mod:`lethe.privacy.gate.erasure`), so an erasure is never without its notices;
- a **restriction** (Art. 18) or an **objection** (Art. 21) recorded by a request's run:
  :func:`on_restriction`, right after the suppression is stored.

Art. 17(2): where a data subject's erasure (a request, a withdrawn consent) reaches photos the
controller may have made public (photos with a web address, ``source_url``, or whose source's
guest page shows its photos to guests), one more notice, with no recipient, says so in words: the
sites (host names only, never a photo's address) and what the controller must tell the other
controllers who process them. Lethe cannot know who copied a published photo; that list is the
data-protection officer's work.

A notice's state: ``pending``, then ``sent`` (through the mail channel, :mod:`lethe.privacy.mail`,
when the recipient has an e-mail address: :meth:`RecipientNotices.send`; otherwise marked sent by
hand with who and when: :meth:`RecipientNotices.mark_sent`), or ``not_required`` with its reason
(Art. 19: impossible, or a disproportionate effort). Every generation and change is audited
(``recipient_notice.generated``, ``.sent``, ``.failed``, ``.not_required``), never the address.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from lethe.catalog.disclosure_tables import RecipientNoticeFaceRow, RecipientNoticeRow, RecipientRow
from lethe.catalog.privacy_tables import ErasureJobRow, RequestRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.errors import ConflictError, DeliveryError, InputError, NotFoundError
from lethe.privacy import audit
from lethe.privacy.disclosures import KINDS, Disclosure, Disclosures, for_faces
from lethe.privacy.mail import MailChannel, channel_from
from lethe.privacy.recipient_notice_texts import CAUSES, REASON_WORDS, body_17_2, body_19

if TYPE_CHECKING:
    from lethe.store import Store

__all__ = [
    "CAUSES",
    "REASON_WORDS",
    "STATES",
    "NoticeView",
    "RecipientNotices",
    "on_erasure",
    "on_restriction",
]

log = logging.getLogger(__name__)

STATES = ("pending", "sent", "not_required")
#: Erasures a data subject asked for: only they call for the Art. 17(2) notice.
SUBJECT_ERASURES = frozenset({"erasure request", "consent_withdrawn"})
MIN_NOTE = 10
STALE_SENDING = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class NoticeView:
    id: int
    article: str
    recipient_id: int | None
    recipient: str | None
    recipient_kind: str | None
    has_contact: bool
    cause: str
    erasure_job_id: int | None
    request_id: int | None
    reference: str
    created_at: datetime
    face_ids: tuple[int, ...]
    subject: str
    body: str
    sha256: str
    state: str
    state_at: datetime | None
    state_by: str | None
    channel: str | None
    note: str | None
    attempts: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "article": self.article,
            "recipient_id": self.recipient_id,
            "recipient": self.recipient,
            "recipient_kind": self.recipient_kind,
            "has_contact": self.has_contact,
            "cause": self.cause,
            "erasure_job_id": self.erasure_job_id,
            "request_id": self.request_id,
            "reference": self.reference,
            "created_at": self.created_at.isoformat(),
            "face_ids": list(self.face_ids),
            "subject": self.subject,
            "body": self.body,
            "sha256": self.sha256,
            "state": self.state,
            "state_at": self.state_at.isoformat() if self.state_at else None,
            "state_by": self.state_by,
            "channel": self.channel,
            "note": self.note,
            "attempts": self.attempts,
            "error": self.error,
        }


# -- generation ------------------------------------------------------------------------------------


def _add(
    session: Session,
    *,
    article: str,
    recipient_id: int | None,
    cause: str,
    job_id: int | None,
    request_id: int | None,
    reference: str,
    at: datetime,
    faces: Sequence[int],
    subject: str,
    body: str,
) -> int:
    row = RecipientNoticeRow(
        article=article,
        recipient_id=recipient_id,
        cause=cause,
        erasure_job_id=job_id,
        request_id=request_id,
        reference=reference,
        created_at=at,
        faces=len(faces),
        subject=subject[:200],
        body=body,
        sha256=hashlib.sha256(body.encode()).hexdigest(),
        state="pending",
        attempts=0,
    )
    session.add(row)
    session.flush()
    session.add_all(RecipientNoticeFaceRow(notice_id=row.id, face_id=f) for f in sorted(set(faces)))
    return row.id


def _covered(
    session: Session, *, recipient_id: int | None, cause: str, job_id: int | None, request_id: int | None
) -> set[int]:
    """Faces an earlier notice of the same job (or request and cause) to this recipient covers."""
    query = select(RecipientNoticeFaceRow.face_id).join(
        RecipientNoticeRow, RecipientNoticeRow.id == RecipientNoticeFaceRow.notice_id
    )
    if recipient_id is None:
        query = query.where(RecipientNoticeRow.recipient_id.is_(None))
    else:
        query = query.where(RecipientNoticeRow.recipient_id == recipient_id)
    if job_id is not None:
        query = query.where(RecipientNoticeRow.erasure_job_id == job_id)
    else:
        query = query.where(RecipientNoticeRow.request_id == request_id, RecipientNoticeRow.cause == cause)
    return set(session.scalars(query))


def _generate(
    store: Store,
    session: Session,
    *,
    face_ids: Iterable[int],
    cause: str,
    why: str,
    job_id: int | None,
    request_id: int | None,
    actor: str,
    at: datetime,
) -> list[int]:
    ids = sorted({int(f) for f in face_ids})
    reference = _reference(session, request_id, job_id)
    by_recipient: dict[int, list[Disclosure]] = {}
    for disclosure in for_faces(session, ids):
        by_recipient.setdefault(disclosure.recipient_id, []).append(disclosure)
    made: list[int] = []
    wanted = set(ids)
    for recipient_id, disclosures in sorted(by_recipient.items()):
        done = _covered(session, recipient_id=recipient_id, cause=cause, job_id=job_id, request_id=request_id)
        faces = sorted({f for d in disclosures for f in d.face_ids if f in wanted} - done)
        if not faces:
            continue
        carried = [d for d in disclosures if set(d.face_ids) & set(faces)]
        subject, body = body_19(
            store.settings, recipient=carried[0].recipient, cause=cause, why=why, reference=reference, at=at,
            disclosures=carried, faces=faces,
        )  # fmt: skip
        made.append(
            _add(
                session,
                article="19",
                recipient_id=recipient_id,
                cause=cause,
                job_id=job_id,
                request_id=request_id,
                reference=reference,
                at=at,
                faces=faces,
                subject=subject,
                body=body,
            )  # fmt: skip
        )
    if made:
        audit.append(
            session,
            actor=actor,
            action="recipient_notice.generated",
            details={
                "notice_ids": made,
                "recipients": len(made),
                "cause": cause,
                "article": "19",
                "request_id": request_id,
                "job_id": job_id,
            },  # fmt: skip
            at=at,
        )
    return made


def _reference(session: Session, request_id: int | None, job_id: int | None) -> str:
    if request_id is not None:
        ref = session.scalar(select(RequestRow.ref).where(RequestRow.id == request_id))
        if ref:
            return str(ref)
    return f"erasure job {job_id}" if job_id is not None else "no reference"


def on_erasure(
    store: Store, session: Session, *, job_id: int, face_ids: Sequence[int], actor: str, at: datetime
) -> list[int]:
    """The notices an erasure job owes, inside the transaction that deletes ``face_ids``' rows (call
    it before they are deleted: the Art. 17(2) check reads their photos); the notices' ids."""
    job = session.get(ErasureJobRow, job_id)
    if job is None or not face_ids:
        return []
    why = REASON_WORDS.get(job.reason, job.reason)
    made = _generate(
        store, session, face_ids=face_ids, cause="erasure", why=why, job_id=job_id,
        request_id=job.request_id, actor=actor, at=at,
    )  # fmt: skip
    if job.reason in SUBJECT_ERASURES:
        public = _published(
            store, session, job_id=job_id, request_id=job.request_id, face_ids=face_ids, at=at
        )
        if public is not None:
            made.append(public)
            audit.append(
                session,
                actor=actor,
                action="recipient_notice.generated",
                details={
                    "notice_ids": [public],
                    "recipients": 0,
                    "cause": "erasure",
                    "article": "17(2)",
                    "request_id": job.request_id,
                    "job_id": job_id,
                },  # fmt: skip
                at=at,
            )
    if made:
        log.info("erasure job %d: %d notice(s) to recipients", job_id, len(made))
    return made


def _published(
    store: Store,
    session: Session,
    *,
    job_id: int,
    request_id: int | None,
    face_ids: Sequence[int],
    at: datetime,
) -> int | None:
    """The Art. 17(2) notice of an erasure whose photos may have been made public, or None."""
    if _covered(session, recipient_id=None, cause="erasure", job_id=job_id, request_id=request_id):
        return None
    ids = sorted({int(f) for f in face_ids})
    query = (
        select(
            FaceRow.id,
            ImageRow.id,
            ImageRow.source_url,
            SourceRow.id,
            SourceRow.guest_browse,
            SourceRow.guest_downloads,
        )
        .join(ImageRow, ImageRow.id == FaceRow.image_id)
        .join(SourceRow, SourceRow.id == ImageRow.source_id)
    )
    rows = [
        row
        for start in range(0, len(ids), 500)  # a large erasure (a deleted source): in chunks
        for row in session.execute(query.where(FaceRow.id.in_(ids[start : start + 500])))
    ]
    hosts = sorted({(urlsplit(url).hostname or "") for _, _, url, _, _, _ in rows if url} - {""})
    photos = len({image for _, image, url, _, _, _ in rows if url})
    guests = {source for _, _, _, source, browse, downloads in rows if browse or downloads}
    faces = sorted({f for f, _, url, source, _, _ in rows if url or source in guests})
    if not faces:
        return None
    reference = _reference(session, request_id, job_id)
    subject, body = body_17_2(
        store.settings, reference=reference, at=at, hosts=hosts, photos=photos, guest_sources=len(guests)
    )
    return _add(
        session, article="17(2)", recipient_id=None, cause="erasure", job_id=job_id, request_id=request_id,
        reference=reference, at=at, faces=faces, subject=subject, body=body,
    )  # fmt: skip


def on_restriction(
    store: Store, *, request_id: int, face_ids: Sequence[int], cause: str, actor: str
) -> list[int]:
    """The notices a request's restriction or objection owes (faces already noticed for the same
    request are not noticed again); the notices' ids."""
    if cause not in ("restriction", "objection"):
        raise InputError(f"a restriction notice's cause is restriction or objection, not {cause!r}")
    if not face_ids:
        return []
    why = "the data subject asked for it"
    with store.catalog.session() as session, session.begin():
        return _generate(
            store, session, face_ids=face_ids, cause=cause, why=why, job_id=None, request_id=request_id,
            actor=actor, at=now_utc(),
        )  # fmt: skip


# -- reading and handling --------------------------------------------------------------------------


def _views(session: Session, rows: Sequence[RecipientNoticeRow]) -> list[NoticeView]:
    ids = [r.id for r in rows]
    faces: dict[int, list[int]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        for nid, fid in session.execute(
            select(RecipientNoticeFaceRow.notice_id, RecipientNoticeFaceRow.face_id)
            .where(RecipientNoticeFaceRow.notice_id.in_(ids[start : start + 500]))
            .order_by(RecipientNoticeFaceRow.face_id)
        ):
            faces[nid].append(fid)
    wanted = sorted({r.recipient_id for r in rows if r.recipient_id is not None})
    recipients = {r.id: r for r in session.scalars(select(RecipientRow).where(RecipientRow.id.in_(wanted)))}
    out = []
    for r in rows:
        who = recipients.get(r.recipient_id) if r.recipient_id is not None else None
        out.append(
            NoticeView(
                r.id,
                r.article,
                r.recipient_id,
                who.name if who else None,
                who.kind if who else None,
                bool(who and who.contact is not None),
                r.cause,
                r.erasure_job_id,
                r.request_id,
                r.reference,
                r.created_at,
                tuple(faces[r.id]),
                r.subject,
                r.body,
                r.sha256,
                r.state,
                r.state_at,
                r.state_by,
                r.channel,
                r.note,
                r.attempts,
                r.error,
            )  # fmt: skip
        )
    return out


class RecipientNotices:
    """The notices over an open store: listed, sent through the mail channel, marked by hand."""

    def __init__(self, store: Store, channel: MailChannel | None = None) -> None:
        self.store = store
        self.catalog = store.catalog
        self.channel = channel if channel is not None else channel_from(store.settings)

    def list_notices(
        self,
        *,
        state: str | None = None,
        request_id: int | None = None,
        recipient_id: int | None = None,
        limit: int = 1_000_000,
    ) -> list[NoticeView]:
        """Notices, oldest first (in one state, of one request, to one recipient)."""
        if state is not None and state not in STATES:
            raise InputError(f"a notice's state is one of {', '.join(STATES)}")
        with self.catalog.session() as session:
            query = select(RecipientNoticeRow)
            if state is not None:
                query = query.where(RecipientNoticeRow.state == state)
            if request_id is not None:
                query = query.where(RecipientNoticeRow.request_id == request_id)
            if recipient_id is not None:
                query = query.where(RecipientNoticeRow.recipient_id == recipient_id)
            rows = session.scalars(query.order_by(RecipientNoticeRow.id).limit(limit)).all()
            return _views(session, rows)

    def get(self, notice_id: int) -> NoticeView:
        with self.catalog.session() as session:
            row = session.get(RecipientNoticeRow, notice_id)
            if row is None:
                raise NotFoundError(f"no recipient notice {notice_id}")
            return _views(session, [row])[0]

    def recipients_of_request(self, request_id: int) -> list[dict[str, str]]:
        """The recipients a request's notices go to (name and kind in words), for the answer letter."""
        seen: dict[str, dict[str, str]] = {}
        for notice in self.list_notices(request_id=request_id):
            if notice.recipient is not None and notice.recipient_kind is not None:
                seen.setdefault(notice.recipient, {"name": notice.recipient, "kind": notice.recipient_kind,
                                                    "kind_words": KINDS[notice.recipient_kind]})  # fmt: skip
        return list(seen.values())

    def send(self, notice_id: int, *, actor: str) -> NoticeView:
        """Send an Art. 19 notice to its recipient's e-mail address through the mail channel. No
        channel, no address, or a notice no longer pending: refused (send it by hand and
        :meth:`mark_sent`). A failed send is recorded (``recipient_notice.failed``, the error's class
        only) and raised as :class:`DeliveryError`; the notice stays pending."""
        notice = self.get(notice_id)
        if notice.recipient_id is None:
            raise ConflictError("an Art. 17(2) notice has no recipient to e-mail: mark it sent once done")
        if self.channel is None:
            raise ConflictError(
                "no mail channel is configured (LETHE_MAIL_CHANNEL): send it by hand, then mark it sent"
            )
        to = Disclosures(self.store).contact(notice.recipient_id)
        if to is None:
            raise ConflictError(
                f"recipient {notice.recipient_id} has no e-mail address: send it by hand, then mark it sent"
            )
        started = now_utc()
        with self.catalog.session() as session, session.begin():
            claimed = session.execute(
                update(RecipientNoticeRow)
                .where(
                    RecipientNoticeRow.id == notice_id,
                    or_(
                        RecipientNoticeRow.state == "pending",
                        (RecipientNoticeRow.state == "sending")
                        & (RecipientNoticeRow.state_at < started - STALE_SENDING),
                    ),
                )
                .values(state="sending", state_at=started, attempts=RecipientNoticeRow.attempts + 1)
            ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            raise ConflictError(f"recipient notice {notice_id} is {notice.state}, not pending")
        error: str | None = None
        try:
            self.channel.send(to=to, subject=notice.subject, body=notice.body, language="en")
        except DeliveryError as exc:
            error = str(exc)[:200]
        del to
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            row = session.get(RecipientNoticeRow, notice_id)
            if row is None:
                raise NotFoundError(f"no recipient notice {notice_id}")
            details: dict[str, Any] = {"notice_id": notice_id, "recipient_id": row.recipient_id,
                                       "channel": self.channel.name, "attempt": row.attempts}  # fmt: skip
            if error:
                row.state, row.state_at, row.error = "pending", None, error
                details["error"] = error
            else:
                row.state, row.state_at, row.state_by = "sent", at, actor
                row.channel, row.error = self.channel.name, None
            audit.append(
                session,
                actor=actor,
                action="recipient_notice.failed" if error else "recipient_notice.sent",
                details=details,
                at=at,
            )
        if error:
            log.warning("recipient notice %d not sent: %s", notice_id, error)
            raise DeliveryError(f"recipient notice {notice_id} was not sent ({error}); it stays pending")
        return self.get(notice_id)

    def mark_sent(self, notice_id: int, *, actor: str, note: str | None = None) -> NoticeView:
        """Record that the notice was sent by hand (post, a phone call followed by a letter, the
        recipient's portal): who and when, and how in ``note``."""
        note = (note or "").strip()[:2000] or None
        return self._settle(notice_id, state="sent", actor=actor, channel="hand", note=note)

    def not_required(self, notice_id: int, *, actor: str, reason: str) -> NoticeView:
        """Record that the notice is not required, and why (Art. 19: impossible or a
        disproportionate effort; Art. 17(2): the controller did not make the photos public)."""
        reason = (reason or "").strip()
        if len(reason) < MIN_NOTE:
            raise InputError(f"say why the notice is not required (at least {MIN_NOTE} characters)")
        return self._settle(notice_id, state="not_required", actor=actor, channel=None, note=reason[:2000])

    def _settle(
        self, notice_id: int, *, state: str, actor: str, channel: str | None, note: str | None
    ) -> NoticeView:
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            row = session.get(RecipientNoticeRow, notice_id)
            if row is None:
                raise NotFoundError(f"no recipient notice {notice_id}")
            if row.state not in ("pending", "sending"):
                raise ConflictError(f"recipient notice {notice_id} is already {row.state}")
            row.state, row.state_at, row.state_by, row.channel, row.note = state, at, actor, channel, note
            audit.append(
                session,
                actor=actor,
                action=f"recipient_notice.{state}",
                details={
                    "notice_id": notice_id,
                    "recipient_id": row.recipient_id,
                    "article": row.article,
                    "channel": channel,
                },  # fmt: skip
                at=at,
                texts={"note": note} if note else None,
            )
        return self.get(notice_id)
