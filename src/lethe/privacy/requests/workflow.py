"""The request state machine (GDPR Art. 12): states, the transitions allowed, due dates, and the
moves that record an event and an audit entry.

States: (``unconfirmed`` →) ``received`` → ``verified`` → ``in_review`` → ``answered`` |
``rejected``. A portal request is ``unconfirmed`` until its requester returns the one-time code sent
to the contact address; it is not in the DPO's queue until then, and it ``expired`` when the code
does not come back in time. A request becomes ``verified`` only through identity verifications
that satisfy :func:`verification_complete`; nothing runs before that. The answer is due one
calendar month after receipt; an extension to three months needs a recorded reason (Art. 12(3)).
Closing (answered, rejected or expired) deletes the requester's photos and templates through the
gate.
"""

from __future__ import annotations

import json
from calendar import monthrange
from datetime import datetime

from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestEventRow, RequestRow
from lethe.catalog.repository import now_utc
from lethe.errors import NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.gate import Gate

KINDS = ("access", "erasure", "objection", "restriction")
#: What each kind of request does (the API describes its ``kind`` with these).
KIND_MEANINGS = {
    "access": "a copy of every photo of the person held, where each came from and who searched for it "
    "(Art. 15)",
    "erasure": "every face of the person erased, photos, crops and index vectors, for good (Art. 17)",
    "objection": "the person's face never shown in a search again and kept out of every later ingest "
    "(Art. 21)",
    "restriction": "the person's photos kept but hidden from every search while a dispute is settled; "
    "nothing is erased and ingest goes on; lifted by withdrawing it (Art. 18)",
}
#: The four kinds and what each does, in one line (the API's description of ``kind``).
KIND_HELP = "One of: " + "; ".join(f"`{kind}`: {meaning}" for kind, meaning in KIND_MEANINGS.items()) + "."
#: The DPO's queue: requests that wait for someone to act. ``unconfirmed`` is not in it.
OPEN_STATES = ("received", "verified", "in_review")
TRANSITIONS = {
    "unconfirmed": {"received", "expired"},
    "received": {"verified", "rejected"},
    "verified": {"in_review", "answered", "rejected"},
    "in_review": {"in_review", "answered", "rejected"},
}
MAX_CONTACT = 320
MAX_NOTE = 2000
#: How a verifier checked the requester's identity.
METHODS = {
    "id_document": "an identity document compared with the photos (in person or a copy)",
    "signed_letter": "a signed letter from the requester",
    "account_holder": "the requester is a known account holder of the service the photos come from",
    "in_person": "the requester was seen in person and compared with the photos",
}


#: What a requester is told of their request on the portal's status page, by state: a stage and
#: plain words, never anything about the gallery or what was found.
PORTAL_STAGES = {
    "unconfirmed": (
        "waiting_for_confirmation",
        "Your request waits for your confirmation: enter the code we sent to your address on the "
        "portal page.",
    ),
    "received": (
        "identity_check",
        "Your request is with the data-protection officer, who checks that you are the person in the photos.",
    ),
    "verified": ("in_progress", "Your identity is checked and your request is in progress."),
    "in_review": ("in_progress", "Your identity is checked and your request is in progress."),
    "answered": ("answered", "Your request was answered at your address on {answered}."),
    "rejected": (
        "refused",
        "Your request was refused; the data-protection officer tells you why at your address.",
    ),
    "expired": (
        "expired",
        "Your request expired: its contact address was not confirmed in time. You may send a new one.",
    ),
}


def portal_status(row: RequestRow) -> dict[str, object]:
    """The request as its requester sees it on the status page: its reference, stage, due date,
    the day it was answered (or ``None``) and the stage in plain words. The same keys whatever the
    request."""
    stage, words = PORTAL_STAGES[row.state]
    answered = row.answered_at.date().isoformat() if row.state == "answered" and row.answered_at else None
    return {
        "reference": row.ref,
        "stage": stage,
        "due_at": row.due_at.isoformat(),
        "answered_on": answered,
        "message": words.format(answered=answered),
    }


def verification_complete(kind: str, verifications: list[tuple[str, str]]) -> bool:
    """Whether ``verifications`` ((method, verifier) each, all attested) are enough for ``kind``.

    An erasure, objection or restriction needs one verifier. An access request hands out every
    photo of a person, where each was published and who searched for them, so a mistaken identity
    discloses a third party's data: it needs a documented comparison with an identity document, or
    two different verifiers."""
    if not verifications:
        return False
    if kind != "access":
        return True
    return any(m == "id_document" for m, _ in verifications) or len({v for _, v in verifications}) >= 2


def add_months(when: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months later (clamped to the month's last day)."""
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, monthrange(year, month)[1]))


def row_of(session: Session, request_id: int) -> RequestRow:
    row = session.get(RequestRow, request_id)
    if row is None:
        raise NotFoundError(f"no request {request_id}")
    return row


def require_open(row: RequestRow, doing: str) -> None:
    if row.state not in OPEN_STATES:
        raise PrivacyError(f"request {row.id} is {row.state}; {doing}")


def require_verified(row: RequestRow) -> None:
    """Nothing is searched, erased, exported or suppressed for a requester whose identity was not
    verified (:func:`verification_complete`)."""
    if row.state == "unconfirmed":
        raise PrivacyError(
            f"request {row.id} is unconfirmed: its requester has not yet returned the code sent to "
            "their contact address, so it cannot be verified or run"
        )
    require_open(row, "it cannot be run again")
    if row.state == "received":
        raise PrivacyError(
            f"request {row.id} is not verified: record the identity verification first (request verify)"
        )


def require_decided(pending: int) -> None:
    """A request is answered only once every candidate in the review band is decided."""
    if pending:
        raise PrivacyError(f"{pending} candidate(s) still wait for a decision")


def answer_blocked(state: str, *, pending: int, searching: bool, ingest_running: bool) -> str | None:
    """Why a request in ``state`` cannot be answered now (the missing step, in words), or ``None``
    when it can: it was run (``in_review``), no search of it is running, no ingest may still bring
    candidates, and every candidate is decided."""
    if state == "unconfirmed":
        return "the requester has not confirmed the contact address yet"
    if state == "received":
        return "the requester's identity is not verified: record the identity check first"
    if state == "verified":
        return "it was not run yet: run it first (it finds the person and lists the faces to review)"
    if state not in OPEN_STATES:
        return f"it is {state.replace('_', ' ')} already"
    if searching:
        return "a search for this request is still running: candidates may still arrive"
    if ingest_running:
        return "an ingest job is adding photos: candidates may still arrive; answer once it has ended"
    if pending:
        return f"{pending} candidate(s) still wait for a decision: review them first"
    return None


def answered_message(state: str, result: dict[str, object]) -> str:
    """The line that tells the DPO what the answer did, from the state the request is in after it."""
    if state != "answered":
        return f"The request is {state.replace('_', ' ')}: it was not closed."
    if "erased_faces" in result:
        done = f" {result['erased_faces']} face(s) in {result['erased_images']} photo(s) erased in all."
    elif "export" in result:
        done = f" The access export holds {result.get('faces', 0)} face(s)."
    else:
        done = f" {result.get('faces', 0)} face(s) kept out of every search."
    return "Request answered and closed." + done


def move(session: Session, row: RequestRow, to: str, actor: str, note: str | None) -> None:
    if to not in TRANSITIONS.get(row.state, set()):
        raise PrivacyError(f"request {row.id} is {row.state}; it cannot become {to}")
    event(session, row, row.state, to, actor, note)
    audit.append(
        session,
        actor=actor,
        action="request.state",
        details={"request_id": row.id, "from": row.state, "to": to},
        at=now_utc(),
    )
    row.state = to


def event(session: Session, row: RequestRow, frm: str | None, to: str, actor: str, note: str | None) -> None:
    session.add(
        RequestEventRow(request_id=row.id, at=now_utc(), actor=actor, from_state=frm, to_state=to, note=note)
    )


def close(session: Session, row: RequestRow, outcome: dict[str, object]) -> None:
    """Answered or rejected: delete the requester's photos and templates, keep their hashes."""
    at = now_utc()
    row.closed_at = at
    if row.state == "answered":
        row.answered_at = at
    row.outcome = json.dumps(outcome)
    photos = Gate.drop_probes(session, row.id)
    audit.append(
        session,
        actor="system",
        action="request.close",
        details={"request_id": row.id, "state": row.state, "photos_deleted": photos},
        at=at,
    )
