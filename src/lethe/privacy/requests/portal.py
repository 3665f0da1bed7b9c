"""The requester's side of a portal request: the one-time code sent to the contact address confirms
the request (:func:`confirm_contact`), and later, with the reference on the receipt, shows where it
stands (:func:`status`); a request not confirmed in time expires (:func:`expire_unconfirmed`).

Every answer to a wrong code is the same for an unknown reference, a wrong code, an expired request
or a locked one: the portal is no oracle for which references exist. Wrong codes are counted per
request, on confirmation and on the status page alike: after :data:`MAX_CONFIRM_ATTEMPTS` an
unconfirmed request expires, and a confirmed one's status is no longer shown (its requester writes
to the data-protection officer, ``LETHE_DPO_CONTACT``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestRow
from lethe.catalog.repository import now_utc
from lethe.errors import InputError
from lethe.privacy.requests import workflow

if TYPE_CHECKING:
    from lethe.privacy.requests import SubjectRequests

#: Wrong codes after which a portal request expires (unconfirmed) or its status is no longer shown.
MAX_CONFIRM_ATTEMPTS = 5
NOT_CONFIRMED = "the reference or the code is not right, or the request expired"
NO_STATUS = (
    "the reference or the code is not right (after five wrong codes a reference is no longer "
    "answered here: write to the data-protection officer)"
)


def new_code() -> tuple[str, str]:
    """A one-time code for a requester's contact address, and the hash the catalog keeps of it."""
    code = secrets.token_urlsafe(9)
    return code, code_hash(code)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def confirm_contact(requests: SubjectRequests, reference: str, code: str) -> int:
    """The request's id once the code is right (see :meth:`SubjectRequests.confirm_contact`)."""
    confirmed = expired = False
    with requests.catalog.session() as session, session.begin():
        row = _by_reference(session, reference)
        if row is None or row.confirm_hash is None:
            raise InputError(NOT_CONFIRMED)
        request_id = row.id
        right = hmac.compare_digest(code_hash(code.strip()), row.confirm_hash)
        if row.state != "unconfirmed":
            if right and row.confirmed_at is not None:
                return request_id
            raise InputError(NOT_CONFIRMED)
        late = _late(requests, row)
        if right and not late:
            row.confirmed_at = now_utc()
            workflow.move(session, row, "received", "portal", "contact address confirmed")
            confirmed = True
        else:  # counted in this transaction, refused after it commits
            row.confirm_attempts += 1
            if late or row.confirm_attempts >= MAX_CONFIRM_ATTEMPTS:
                expire(session, row)
                expired = True
    if confirmed or expired:
        requests.gate.drop_confirmation(request_id)
    if not confirmed:
        raise InputError(NOT_CONFIRMED)
    return request_id


def status(requests: SubjectRequests, reference: str, code: str) -> dict[str, object]:
    """Where the request stands (:func:`workflow.portal_status`), or the one :class:`InputError`."""
    answer: dict[str, object] | None = None
    expired = None
    with requests.catalog.session() as session, session.begin():
        row = _by_reference(session, reference)
        if row is not None and row.confirm_hash is not None and row.confirm_attempts < MAX_CONFIRM_ATTEMPTS:
            if hmac.compare_digest(code_hash(code.strip()), row.confirm_hash):
                if row.state == "unconfirmed" and _late(requests, row):
                    expire(session, row)  # as confirming now would: it expired
                    expired = row.id
                answer = workflow.portal_status(row)
            else:  # counted in this transaction, refused after it commits
                row.confirm_attempts += 1
                if row.state == "unconfirmed" and row.confirm_attempts >= MAX_CONFIRM_ATTEMPTS:
                    expire(session, row)
                    expired = row.id
    if expired is not None:
        requests.gate.drop_confirmation(expired)
    if answer is None:
        raise InputError(NO_STATUS)
    return answer


def expire_unconfirmed(requests: SubjectRequests, *, now: datetime | None = None) -> int:
    """Close portal requests whose contact address was not confirmed in time; how many."""
    limit = (now or now_utc()) - timedelta(seconds=requests.settings.contact_confirmation_ttl_s)
    with requests.catalog.session() as session, session.begin():
        rows = session.scalars(
            select(RequestRow).where(RequestRow.state == "unconfirmed", RequestRow.received_at < limit)
        ).all()
        ids = [row.id for row in rows]
        for row in rows:
            expire(session, row)
    for request_id in ids:
        requests.gate.drop_confirmation(request_id)
    return len(ids)


def expire(session: Session, row: RequestRow) -> None:
    workflow.move(session, row, "expired", "system", "contact address not confirmed")
    workflow.close(session, row, {"expired": "contact address not confirmed"})


def _by_reference(session: Session, reference: str) -> RequestRow | None:
    return session.scalars(select(RequestRow).where(RequestRow.ref == reference.strip())).first()


def _late(requests: SubjectRequests, row: RequestRow) -> bool:
    return now_utc() > row.received_at + timedelta(seconds=requests.settings.contact_confirmation_ttl_s)
