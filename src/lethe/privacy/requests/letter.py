"""The answer to send to a requester, drafted from the request's real outcome (GDPR Art. 12(1):
concise, plain language): what was done, how many photos, how to complain. The DPO copies it into
the letter or e-mail; Lethe sends nothing itself. The draft names no photo and no other person."""

from __future__ import annotations

from typing import Any

from lethe.privacy.notice import COMPLAINT_GENERIC
from lethe.privacy.requests.records import RequestView
from lethe.privacy.signatures import receipt_jobs


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _photos(outcome: dict[str, Any]) -> int:
    acted = outcome.get("acted_on") or []
    return len(acted) if acted else int(outcome.get("erased_images", 0))


#: How the requester checks the signed copy (lethe.privacy.signatures; docs/privacy.md).
SIGNED_COPY = (
    "We signed the copy electronically: the file how-to-check-the-signature.txt in it says how to "
    "check, with the public signing key published on our request portal, that nothing in it was "
    "changed since we made it."
)


def _receipts(outcome: dict[str, Any]) -> str:
    """The erasure's signed receipts, by job number: the requester may ask for theirs."""
    jobs = receipt_jobs(outcome)
    return (
        f" We keep a signed receipt of the erasure (erasure job {', '.join(jobs)}): ask us for it, and "
        "you can check it with the public signing key published on our request portal."
        if jobs
        else ""
    )


def _done(kind: str, outcome: dict[str, Any]) -> str:
    photos = _photos(outcome)
    faces = int(outcome.get("erased_faces", outcome.get("faces", 0)) or 0)
    if kind == "erasure":
        if not faces:
            return "We searched our photo collection for you and found no photo of you to erase."
        return (
            f"We searched our photo collection for you and erased {_n(photos, 'photo')} of you "
            f"({_n(faces, 'face')} in all): the photos, the face crops and the search index entries "
            "are deleted for good. A copy of an erased photo sent to us again is kept out."
            + _receipts(outcome)
        )
    if kind == "access":
        if not faces:
            return "We searched our photo collection for you and hold no photo of you."
        return (
            f"We searched our photo collection for you and found {_n(photos, 'photo')} of you "
            f"({_n(faces, 'face')} in all). A copy of them is enclosed, with where each photo came "
            "from and who searched for it. " + SIGNED_COPY
        )
    what = (
        "is no longer shown in any search and is kept out of every photo we add later"
        if kind == "objection"
        else "stays stored but is hidden from every search until the dispute is settled"
    )
    found = f" We found {_n(photos, 'photo')} of you ({_n(faces, 'face')} in all)." if faces else ""
    return f"We recorded your {kind}: your face {what}.{found}"


#: What each kind of request asks the recipients of the person's data to do (GDPR Art. 19).
_RECIPIENTS_ASKED = {"erasure": "erase it", "restriction": "stop using it", "objection": "stop processing it"}


def recipients_told(kind: str, outcome: dict[str, Any]) -> str:
    """GDPR Art. 19: the recipients the person's data had been disclosed to, named, whom we tell of
    the erasure, restriction or objection (:mod:`lethe.privacy.recipient_notices`); "" for none."""
    named = [r for r in outcome.get("recipients_notified") or [] if isinstance(r, dict) and r.get("name")]
    if kind not in _RECIPIENTS_ASKED or not named:
        return ""
    listed = "; ".join(f"{r['name']} ({r.get('kind_words', r.get('kind', ''))})" for r in named)
    return (
        f" We had disclosed data about you to {_n(len(named), 'recipient')}: {listed}. We are telling "
        f"each of them to {_RECIPIENTS_ASKED[kind]} too (GDPR Art. 19)."
    )


def draft(view: RequestView, *, dpo_contact: str | None = None) -> str | None:
    """The answer for a closed request (answered or rejected); ``None`` while it is open."""
    outcome = view.outcome or {}
    received = view.received_at.date().isoformat()
    if view.state == "answered":
        body = _done(view.kind, outcome) + recipients_told(view.kind, outcome)
        body += " The photos you sent us to find you are deleted."
    elif view.state == "rejected":
        body = (
            f"We cannot carry out your request. The reason: {outcome.get('rejected', 'not stated')}. "
            "The photos you sent us are deleted."
        )
    else:
        return None
    contact = f" Our data-protection officer: {dpo_contact}." if dpo_contact else ""
    return (
        f"Your {view.kind} request, reference {view.ref}, received on {received}\n\n"
        f"{body}\n\n"
        f"If you have a question about this answer, reply quoting your reference.{contact} "
        f"{COMPLAINT_GENERIC}\n"
    )
