"""Two-person verification of identifications (issue 18, EU AI Act Art. 14(5)).

A search result is a *candidate identification*: the face ``face_id`` returned by the search whose
audit entry is ``search_seq``. No action may be taken on it — opening the matched photo, exporting
it, marking the person identified — until it is **verified**: confirmed by ``N`` distinct verifiers
(users holding the ``verifier`` competence, :mod:`lethe.privacy.competence`), each deciding alone.
The search itself and its listing are not gated (../shared/CONTRACT.md).

- **Verdicts.** A verifier confirms or rejects a candidate, with an optional note (the erasable text
  of the audit entry, never in the chain). One verdict per verifier and candidate: a second is
  refused (``ConflictError``), whatever it says. The operator who searched may be one of the ``N``.
  Each verdict is audited ``verification.verdict`` with ``search_seq``, ``face_id`` and the verdict,
  so a use's export (:mod:`lethe.privacy.use_export`) lists the search's verifiers.
- **State.** ``rejected`` as soon as any verifier rejects; ``verified`` once ``N`` distinct verifiers
  confirmed and nobody rejected; otherwise ``pending``. Once ``N`` verdicts are in, the candidate is
  decided and takes no more.
- **Independence.** Until a user has given their own verdict, reading a candidate tells them only
  "k of N verdicts given": never the others' verdicts, nor a state that would betray them (a first
  reject shows as ``pending`` to everyone else until ``N`` verdicts are in), nor, with
  ``LETHE_VERIFY_SCORE_AFTER_JUDGEMENT`` (on by default), the similarity score, a cue against
  automation bias (Art. 14(4)(b)).
- **The gate.** :meth:`CandidateVerification.require_verified` is the one check every action on a match calls
  (the engine's matched photo, :meth:`CandidateVerification.mark_identified`): a candidate that is not
  verified raises :class:`~lethe.errors.PrivacyError` saying how far it got.
- **N.** 2 unless an administrator lowered it to 1 for a deployment the law exempts, with the legal
  reference (:meth:`CandidateVerification.set_required`, audited ``verification.policy``, the reference kept
  in the policy's history and shown in the evidence pack); setting it back to 2 likewise. A change
  applies to every candidate not yet acted on.

The clock is a parameter so that tests move time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lethe.catalog.repository import now_utc
from lethe.catalog.verification_tables import CandidateVerdictRow, VerificationPolicyRow
from lethe.errors import ConflictError, InputError, NotFoundError, PrivacyError
from lethe.imaging import decode_image
from lethe.privacy import audit
from lethe.privacy.competence import Competences, identity
from lethe.privacy.gate import search_log

if TYPE_CHECKING:
    from lethe.pipeline import FacePipeline
    from lethe.store import Store

#: Distinct verifiers an action needs unless an exemption is recorded (Art. 14(5)).
DEFAULT_REQUIRED = 2
VERDICTS = ("confirm", "reject")
#: The longest verdict note, and the shortest legal reference of an exemption.
MAX_NOTE = 1000
MIN_REFERENCE = 5


@dataclass(frozen=True, slots=True)
class Policy:
    required: int
    legal_reference: str | None
    set_at: datetime | None
    set_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "legal_reference": self.legal_reference,
            "set_at": self.set_at.isoformat() if self.set_at else None,
            "set_by": self.set_by,
        }


@dataclass(frozen=True, slots=True)
class _Search:
    actor: str
    score: float | None


class CandidateVerification:
    """Candidates, verdicts and the policy of one store (see the module)."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.store = store
        self.clock = clock
        self.competences = Competences(store, clock=lambda: self.clock())

    # -- the policy ------------------------------------------------------------------------------

    def policy(self) -> Policy:
        with self.store.catalog.session() as session:
            return _policy(session)

    def policy_history(self) -> list[dict[str, Any]]:
        """Every setting of ``N``, oldest first (the evidence pack)."""
        with self.store.catalog.session() as session:
            rows = session.scalars(select(VerificationPolicyRow).order_by(VerificationPolicyRow.id))
            return [
                Policy(r.required, r.legal_reference, r.set_at, r.set_by).as_dict() | {"seq": r.audit_seq}
                for r in rows
            ]

    def set_required(self, required: int, *, legal_reference: str | None, actor: str) -> Policy:
        """Set ``N`` (administrators): 1 only with the legal reference that exempts the deployment,
        2 (the rule) with or without one; audited ``verification.policy``."""
        reference = (legal_reference or "").strip() or None
        if required not in (1, DEFAULT_REQUIRED):
            raise InputError(f"an action needs 1 (a legal exemption) or {DEFAULT_REQUIRED} verifiers")
        if required == 1 and (reference is None or len(reference) < MIN_REFERENCE):
            raise InputError(
                "lowering verification to one person needs the legal reference that exempts this "
                "deployment (EU AI Act Art. 14(5), second subparagraph)"
            )
        if reference is not None and len(reference) > 500:
            raise InputError("a legal reference is at most 500 characters")
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            previous = _policy(session).required
            entry = audit.append(
                session,
                actor=actor,
                action="verification.policy",
                details={"required": required, "previous": previous},
                at=now,
                texts={"reference": reference} if reference else None,
            )
            session.add(
                VerificationPolicyRow(
                    required=required,
                    legal_reference=reference,
                    set_at=now,
                    set_by=actor,
                    audit_seq=entry.seq,
                )
            )
        return Policy(required, reference, now, actor)

    # -- candidates ------------------------------------------------------------------------------

    def candidate(self, search_seq: int, face_id: int, *, actor: str) -> dict[str, Any]:
        """What ``actor`` may read of the candidate (see "Independence" in the module)."""
        with self.store.catalog.session() as session:
            return self._view(session, search_seq, face_id, actor)

    def verdict(
        self, search_seq: int, face_id: int, *, verdict: str, actor: str, note: str | None = None
    ) -> dict[str, Any]:
        """``actor``'s verdict (``confirm`` or ``reject``) on the candidate; they must hold the
        ``verifier`` competence and not have given one already. Returns their view after it."""
        if verdict not in VERDICTS:
            raise InputError(f"a verdict is {' or '.join(VERDICTS)}, not {verdict!r}")
        note = _note(note)
        now = self.clock()
        try:
            with self.store.catalog.session() as session, session.begin():
                who = self.competences.check(session, actor, "verifier")
                self._search(session, search_seq, face_id)
                rows = _verdicts(session, search_seq, face_id)
                if any(r.verifier == who.key for r in rows):
                    raise ConflictError("you already gave your verdict on this candidate: one each")
                required = _policy(session).required
                if len(rows) >= required:
                    raise ConflictError(f"this candidate is decided ({_state(rows, required)})")
                entry = audit.append(
                    session,
                    actor=actor,
                    action="verification.verdict",
                    details={
                        "search_seq": search_seq,
                        "face_id": face_id,
                        "verdict": verdict,
                        "required": required,
                        "given": len(rows) + 1,
                    },
                    at=now,
                    faces=[face_id],
                    texts={"note": note} if note else None,
                )
                session.add(
                    CandidateVerdictRow(
                        search_seq=search_seq,
                        face_id=face_id,
                        verifier=who.key,
                        verdict=verdict,
                        at=now,
                        audit_seq=entry.seq,
                    )
                )
        except IntegrityError as exc:  # the same verifier, twice at once
            raise ConflictError("you already gave your verdict on this candidate: one each") from exc
        return self.candidate(search_seq, face_id, actor=actor)

    def state(self, search_seq: int, face_id: int) -> str:
        """``pending``, ``verified`` or ``rejected`` (the whole truth: not for a verifier's eyes)."""
        with self.store.catalog.session() as session:
            self._search(session, search_seq, face_id)
            return _state(_verdicts(session, search_seq, face_id), _policy(session).required)

    def require_verified(self, search_seq: int, face_id: int, actor: str) -> None:
        """The check before any action on a match: :class:`PrivacyError` unless the candidate is
        verified (:class:`NotFoundError` when the search never returned that face)."""
        with self.store.catalog.session() as session:
            self._search(session, search_seq, face_id)
            rows = _verdicts(session, search_seq, face_id)
            required = _policy(session).required
        state = _state(rows, required)
        if state == "rejected":
            raise PrivacyError(
                f"candidate {face_id} of search {search_seq} was rejected by a verifier: no action on it"
            )
        if state != "verified":
            confirms = sum(r.verdict == "confirm" for r in rows)
            raise PrivacyError(
                f"candidate {face_id} of search {search_seq} is not verified ({confirms} of {required} "
                f"confirmations): {required} distinct verifiers must confirm it first (EU AI Act Art. 14(5))"
            )

    def mark_identified(
        self, search_seq: int, face_id: int, *, actor: str, note: str | None = None
    ) -> dict[str, Any]:
        """Record that the person of a verified candidate is identified (``verification.identified``)."""
        self.require_verified(search_seq, face_id, actor)
        note = _note(note)
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            entry = audit.append(
                session,
                actor=actor,
                action="verification.identified",
                details={"search_seq": search_seq, "face_id": face_id},
                at=now,
                faces=[face_id],
                texts={"note": note} if note else None,
            )
        return {"search_seq": search_seq, "face_id": face_id, "identified": True, "seq": entry.seq}

    def holds(self, actor: str) -> bool:
        """Whether ``actor`` holds the ``verifier`` competence now (trained, not lapsed)."""
        with self.store.catalog.session() as session:
            try:
                self.competences.check(session, actor, "verifier")
            except PrivacyError:
                return False
            return True

    def probe_face(
        self, search_seq: int, face_id: int, *, actor: str, pipeline: Callable[[], FacePipeline]
    ) -> bytes:
        """The face of the search's probe that was searched for, as a JPEG crop cut like the
        gallery's, for a verifier of the candidate to compare with it: only to a holder of the
        ``verifier`` competence, only while the search log keeps the probe (a matched search, within
        the log retention: :class:`NotFoundError` otherwise); audited ``probe.view``."""
        with self.store.catalog.session() as session:
            self.competences.check(session, actor, "verifier")
            entry = audit.entries_at(session, [search_seq])
        self.candidate(search_seq, face_id, actor=actor)  # NotFoundError: no such candidate
        kept = search_log.probe(self.store, search_seq)
        if kept is None:
            raise NotFoundError(f"the probe of search {search_seq} is no longer kept (log retention)")
        settings = self.store.settings
        image = decode_image(kept, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
        faces = pipeline().faces(image.pixels)
        used = int(entry[0].details.get("probe_face") or 0)  # searches logged before it: the first
        if not 0 <= used < len(faces):
            raise NotFoundError(f"the probe of search {search_seq} no longer yields its face")
        with self.store.catalog.session() as session, session.begin():
            audit.append(
                session,
                actor=actor,
                action="probe.view",
                details={"search_seq": search_seq, "face_id": face_id, "probe_face": used},
                at=self.clock(),
            )
        return faces[used].crop_jpeg

    # -- internals -------------------------------------------------------------------------------

    def _search(self, session: Session, search_seq: int, face_id: int) -> _Search:
        """The search ``search_seq`` that returned ``face_id``, or :class:`NotFoundError`."""
        found = audit.entries_at(session, [search_seq])
        if not found or found[0].action != "search":
            raise NotFoundError(f"no search {search_seq} in the audit log")
        details = found[0].details
        face_ids = [int(f) for f in details.get("face_ids", [])]
        if face_id not in face_ids:
            raise NotFoundError(f"search {search_seq} did not return face {face_id}")
        scores = details.get("scores")
        index = face_ids.index(face_id)
        score = float(scores[index]) if isinstance(scores, list) and index < len(scores) else None
        return _Search(found[0].actor, score)

    def _view(self, session: Session, search_seq: int, face_id: int, actor: str) -> dict[str, Any]:
        search = self._search(session, search_seq, face_id)
        rows = _verdicts(session, search_seq, face_id)
        required = _policy(session).required
        who = identity(session, actor)
        mine = next((r for r in rows if who is not None and r.verifier == who.key), None)
        decided = len(rows) >= required
        open_book = mine is not None or decided
        score_hidden = mine is None and bool(self.store.settings.verify_score_after_judgement)
        state = _state(rows, required)
        return {
            "search_seq": search_seq,
            "face_id": face_id,
            "searched_by": search.actor,
            "required": required,
            "given": len(rows),
            "progress": f"{len(rows)} of {required} verdicts given",
            "state": state if open_book else "pending",
            "your_verdict": None if mine is None else mine.verdict,
            "verdicts": [
                {"verifier": r.verifier, "verdict": r.verdict, "at": r.at.isoformat(), "seq": r.audit_seq}
                for r in rows
            ]
            if open_book
            else None,
            "score": None if score_hidden else search.score,
            "score_hidden": score_hidden,
            "actionable": state == "verified",
        }


def evidence(store: Store) -> dict[str, Any]:
    """The evidence pack's ``verification.json``: the number of verifiers in force with the legal
    reference of any exemption, every change of it, the verifiers' competences with their training
    dates (held or lapsed), and the settings that shape verification."""
    verification = CandidateVerification(store)
    settings = store.settings
    return {
        "policy": verification.policy().as_dict(),
        "history": verification.policy_history(),
        "competences": verification.competences.listing(),
        "verifier_training_days": settings.verifier_training_days,
        "score_after_judgement": settings.verify_score_after_judgement,
        "erasure_second_signoff": settings.erasure_second_signoff,
    }


def _note(note: str | None) -> str | None:
    """A note stripped (None when empty), at most :data:`MAX_NOTE` characters."""
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"a note is at most {MAX_NOTE} characters")
    return note


def _policy(session: Session) -> Policy:
    row = session.scalar(select(VerificationPolicyRow).order_by(VerificationPolicyRow.id.desc()).limit(1))
    if row is None:
        return Policy(DEFAULT_REQUIRED, None, None, None)
    return Policy(row.required, row.legal_reference, row.set_at, row.set_by)


def _verdicts(session: Session, search_seq: int, face_id: int) -> list[CandidateVerdictRow]:
    return list(
        session.scalars(
            select(CandidateVerdictRow)
            .where(CandidateVerdictRow.search_seq == search_seq, CandidateVerdictRow.face_id == face_id)
            .order_by(CandidateVerdictRow.id)
        )
    )


def _state(rows: list[CandidateVerdictRow], required: int) -> str:
    if any(r.verdict == "reject" for r in rows):
        return "rejected"
    return "verified" if sum(r.verdict == "confirm" for r in rows) >= required else "pending"
