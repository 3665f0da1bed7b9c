"""Data-subject requests (GDPR Arts. 12, 15, 17, 18, 21): :class:`SubjectRequests` opens, reads,
moves and runs them. The package's parts: ``records`` (views, and the sealed data opened for the workflow),
``workflow`` (states, due dates, the answer rule), ``actions`` (erase, export, keep out), ``portal``
(the requester's code: confirming the contact address, the status page), ``groups`` (the same face
of the same photo in several sources: listed and decided once). Every write
of a requester's personal data goes through the gate (:mod:`lethe.privacy.gate`).

There is no cap on how often a person may ask, nor on how far back an answer reaches. The
requester's photos are stored encrypted (master key) only while the request is open; when it is
answered or rejected the photos and their templates are deleted and only their hashes remain.

Nothing runs for a requester whose identity was not verified: :meth:`SubjectRequests.verify`
records each check (method, verifier, attestation) and moves the request to ``verified`` once the
checks are enough for its kind (:func:`workflow.verification_complete`). A portal request first
waits for its requester to return the one-time code sent to the contact address
(:meth:`SubjectRequests.confirm_contact`); requests recorded at the desk skip that step. With
that code and the reference on the receipt the requester can ask where the request stands
(:meth:`SubjectRequests.status`).

An access request's outcome names its export by the folder's name in the exports folder (never a
path of the server); :meth:`SubjectRequests.export_path` finds it on this host, and
:meth:`SubjectRequests.delete_export` deletes it once delivered.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from lethe.catalog.privacy_tables import (
    ErasureJobRow,
    RequestCandidateRow,
    RequestRow,
    RequestVerificationRow,
)
from lethe.catalog.repository import now_utc
from lethe.errors import ConflictError, InputError, NotFoundError, PrivacyError
from lethe.imaging import decode_image
from lethe.model_ids import model_name
from lethe.privacy import audit
from lethe.privacy.access import delete_export as _delete_export_folder
from lethe.privacy.access import export_folder
from lethe.privacy.communication_texts import check_language
from lethe.privacy.finder import Candidate, find_person
from lethe.privacy.gate import ErasureReceipt, Gate
from lethe.privacy.requests import context, groups, letter, portal, records, workflow
from lethe.privacy.requests.actions import ACTIONS, Run
from lethe.privacy.requests.groups import CandidateGroup
from lethe.privacy.requests.records import CandidateView, RequestView
from lethe.privacy.requests.signoff import Signoffs
from lethe.privacy.requests.workflow import (
    KIND_HELP,
    KIND_MEANINGS,
    KINDS,
    MAX_CONTACT,
    MAX_NOTE,
    METHODS,
    OPEN_STATES,
    add_months,
    verification_complete,
)

if TYPE_CHECKING:
    from lethe.pipeline import FacePipeline
    from lethe.privacy.communications import MessageView

__all__ = [
    "KINDS",
    "KIND_HELP",
    "KIND_MEANINGS",
    "METHODS",
    "OPEN_STATES",
    "CandidateGroup",
    "CandidateView",
    "RequestPage",
    "RequestView",
    "SubjectRequests",
    "add_months",
]

#: Requests per page of a list, by default and at most.
PAGE_SIZE, MAX_PAGE_SIZE = 50, 500


class RequestPage(list[RequestView]):
    """One page of requests by due date, with the total matched and the next page's number."""

    def __init__(self, views: list[RequestView], *, total: int, page: int, next_page: int | None) -> None:
        super().__init__(views)
        self.total, self.page, self.next_page = total, page, next_page


class SubjectRequests:
    """The request workflow over an open store; writes through ``gate``."""

    def __init__(self, gate: Gate, pipeline: Callable[[], FacePipeline]) -> None:
        self.gate = gate
        self.store = gate.store
        self._pipeline = pipeline  # built on first use: opening a request decodes its photos
        self.catalog = self.store.catalog
        self.settings = self.store.settings
        self.signoffs = Signoffs(self.store)
        self._lock = threading.Lock()
        self._searching: dict[int, int] = {}  # request id -> searches (preview, run, answer) in flight
        # imported here: lethe.privacy.communications reads this package's records and letter
        from lethe.privacy.communications import Communications

        #: The messages to requesters (acknowledgement, identity check, extension, answer, refusal).
        self.communications = Communications(self.store)

    # -- opening -------------------------------------------------------------------------------

    def open(
        self,
        *,
        kind: str,
        photos: Sequence[bytes],
        contact: str,
        channel: str = "cli",
        actor: str = "system",
        confirm_contact: bool = False,
        language: str | None = None,
    ) -> RequestView:
        """Record a request. With ``confirm_contact`` (the public portal) it stays ``unconfirmed``,
        out of the DPO's queue, until the one-time code sent to ``contact`` comes back
        (:meth:`confirm_contact`); a request recorded at the desk is ``received`` at once, and its
        requester is written to (acknowledgement, identity check) in ``language`` (``en``, ``fr``;
        unset: ``LETHE_DEFAULT_LANGUAGE``)."""
        if kind not in KINDS:
            raise InputError(f"request kind must be one of {', '.join(KINDS)}")
        language = check_language(language)
        contact = contact.strip()
        if not contact or len(contact) > MAX_CONTACT:
            raise InputError("a contact address (1-320 characters) is needed to answer the request")
        if not photos:
            raise InputError("at least one photo of the person is needed")
        templates: list[np.ndarray] = []
        counts: list[int] = []
        for number, photo in enumerate(photos, start=1):
            faces = self._faces(photo)
            if not faces:
                raise InputError(f"photo {number} holds no detectable face")
            templates.append(faces[0].embedding)
            counts.append(len(faces))
        received = now_utc()
        code, code_hash = portal.new_code() if confirm_contact else (None, None)
        request_id = self.gate.open_request(
            kind=kind,
            photos=photos,
            templates=templates,
            faces=counts,
            contact=contact,
            channel=channel,
            actor=actor,
            received=received,
            due=add_months(received, 1),
            confirm_code=code,
            confirm_hash=code_hash,
            confirm_until=received + timedelta(seconds=self.settings.contact_confirmation_ttl_s),
            language=language,
        )
        if not confirm_contact:
            self.communications.received(request_id, actor=actor)
        return self.get(request_id)

    def confirm_contact(self, reference: str, code: str) -> RequestView:
        """The requester returned the code sent to their contact address: the request is
        ``received`` and goes to the DPO's queue. One answer (:class:`InputError`) for an unknown
        reference, a wrong code and an expired request; after ``MAX_CONFIRM_ATTEMPTS`` wrong codes,
        or past ``contact_confirmation_ttl_s``, the request expires. Confirming twice is harmless."""
        request_id = portal.confirm_contact(self, reference, code)
        self.communications.received(request_id, actor="portal")  # once: confirming twice writes none
        return self.get(request_id)

    def status(self, reference: str, code: str) -> dict[str, object]:
        """Where a portal request stands, for whoever holds its reference and the code sent to its
        contact address (:func:`workflow.portal_status`: a stage, the due date; nothing about the
        gallery). One :class:`InputError` for an unknown reference, a wrong code and a reference
        locked by wrong codes (no oracle); wrong codes count as in :meth:`confirm_contact`
        (:mod:`lethe.privacy.requests.portal`)."""
        return portal.status(self, reference, code)

    def expire_unconfirmed(self, *, now: datetime | None = None) -> int:
        """Close portal requests whose contact address was not confirmed in time (photos, contact
        and the waiting message deleted); how many."""
        return portal.expire_unconfirmed(self, now=now)

    # -- reading -------------------------------------------------------------------------------

    def get(self, request_id: int) -> RequestView:
        with self.catalog.session() as session:
            return records.view(session, workflow.row_of(session, request_id))

    def list_requests(
        self,
        *,
        state: str | None = None,
        open_only: bool = False,
        limit: int | None = None,
        page: int = 1,
    ) -> RequestPage:
        """Requests by due date (soonest first): one page of ``limit`` (at most ``MAX_PAGE_SIZE``;
        pages numbered from 1), or every one with no ``limit`` (the compliance pack; the API, the
        pages and the CLI always ask for a page). Portal requests whose contact address is not
        confirmed are listed only when asked for by state (``unconfirmed``). A fixed number of
        queries whatever the page size (:func:`records.views`)."""
        page = max(1, int(page))
        with self.catalog.session() as session:
            where = []
            if state:
                where.append(RequestRow.state == state)
            elif open_only:
                where.append(RequestRow.state.in_(OPEN_STATES))
            else:
                where.append(RequestRow.state != "unconfirmed")
            if open_only and state:
                where.append(RequestRow.state.in_(OPEN_STATES))
            total = int(session.scalar(select(func.count(RequestRow.id)).where(*where)) or 0)
            query = select(RequestRow).where(*where).order_by(RequestRow.due_at, RequestRow.id)
            if limit is not None:
                limit = max(1, min(int(limit), MAX_PAGE_SIZE))
                query = query.offset((page - 1) * limit).limit(limit)
            views = records.views(session, session.scalars(query).all())
        more = limit is not None and page * limit < total
        return RequestPage(views, total=total, page=page, next_page=page + 1 if more else None)

    def queue_summary(self, *, now: datetime | None = None) -> dict[str, object]:
        """The DPO's queue counted in SQL: open requests, overdue ones, the next due date."""
        at = now or now_utc()
        with self.catalog.session() as session:
            opened = RequestRow.state.in_(OPEN_STATES)
            count, next_due = session.execute(
                select(func.count(RequestRow.id), func.min(RequestRow.due_at)).where(opened)
            ).one()
            overdue = session.scalar(select(func.count(RequestRow.id)).where(opened, RequestRow.due_at < at))
        return {"open": int(count or 0), "overdue": int(overdue or 0), "next_due_at": next_due}

    def verifications(self, request_id: int) -> list[dict[str, object]]:
        """The identity checks recorded for a request, oldest first."""
        with self.catalog.session() as session:
            return records.verifications(session, request_id)

    def contact(self, request_id: int) -> str:
        with self.catalog.session() as session:
            return records.contact(self.store, workflow.row_of(session, request_id))

    def candidates(self, request_id: int, *, pending_only: bool = False) -> list[CandidateView]:
        with self.catalog.session() as session:
            return records.candidates(session, request_id, pending_only=pending_only)

    def groups(self, request_id: int, *, pending_only: bool = False) -> list[CandidateGroup]:
        """The candidates as a reviewer decides them: the same face of the same photo in several
        sources once, with its members (:mod:`lethe.privacy.requests.groups`). ``NotFoundError`` for
        an unknown request."""
        with self.catalog.session() as session:
            workflow.row_of(session, request_id)
            return groups.candidate_groups(session, request_id, pending_only=pending_only)

    def acted_on(self, request_id: int) -> list[dict[str, Any]]:
        """What the request's runs acted on, per photo (id, source, number of faces), with the photo's
        name while it is still held."""
        acted = self.outcome(request_id).get("acted_on") or []
        with self.catalog.session() as session:
            return context.named(session, acted)

    def places(self, face_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Each face's photo (id and name), source page and source, for a reviewer's context."""
        with self.catalog.session() as session:
            return context.where(session, face_ids)

    def answer_draft(self, request_id: int) -> str | None:
        """The answer to send to the requester once the request is closed, from its real outcome
        (:mod:`lethe.privacy.requests.letter`); ``None`` while it is open."""
        return letter.draft(self.get(request_id), dpo_contact=self.settings.dpo_contact)

    def events(self, request_id: int) -> list[dict[str, object]]:
        with self.catalog.session() as session:
            return records.events(session, request_id)

    def probe_photos(self, request_id: int) -> list[bytes]:
        """The requester's photos (decrypted) while the request is open: for the reviewer's screen."""
        return [photo for _, photo in records.probe_photos(self.store, request_id)]

    def probe_face_crop(self, request_id: int, number: int) -> bytes:
        """The largest face of the requester's photo ``number`` (0-based), cropped and aligned like
        the gallery's crops (JPEG), while the request is open: the review screen compares like with
        like. ``NotFoundError`` for an unknown request, a photo it does not hold, or no face."""
        self.get(request_id)
        photos = self.probe_photos(request_id)
        if not 0 <= number < len(photos):
            raise NotFoundError(
                f"request {request_id} holds {len(photos)} photo(s) (closed requests hold none)"
            )
        faces = self._faces(photos[number])
        if not faces:
            raise NotFoundError(f"no face found in photo {number} of request {request_id}")
        crop: bytes = faces[0].crop_jpeg
        return crop

    # -- state changes -------------------------------------------------------------------------

    def verify(
        self, request_id: int, *, actor: str, method: str, attested: bool, note: str | None = None
    ) -> RequestView:
        """Record one check of the requester's identity: how (``method``, one of :data:`METHODS`),
        by whom, and the verifier's attestation that the person checked is the person in the
        photos (required). The request becomes ``verified`` once the checks are enough for its
        kind (:func:`workflow.verification_complete`); a second check must be someone else's. The
        note stays with the record, off the audit chain."""
        if method not in METHODS:
            raise InputError(f"verification method must be one of {', '.join(METHODS)}")
        if not attested:
            raise InputError("the verifier must attest that the person checked is the person in the photos")
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise InputError(f"a verification note holds at most {MAX_NOTE} characters")
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            row = workflow.row_of(session, request_id)
            if row.state == "unconfirmed":
                raise PrivacyError(
                    f"request {row.id}: the requester has not confirmed the contact address yet"
                )
            if row.state != "received":
                raise PrivacyError(f"request {row.id} is {row.state}; it cannot be verified again")
            earlier = [
                (r.method, r.verified_by)
                for r in session.scalars(
                    select(RequestVerificationRow).where(RequestVerificationRow.request_id == row.id)
                )
            ]
            if actor in {by for _, by in earlier}:
                raise ConflictError(
                    f"request {row.id} was already checked by {actor}: a second check must be someone else's"
                )
            session.add(
                RequestVerificationRow(
                    request_id=row.id,
                    method=method,
                    verified_by=actor,
                    verified_at=at,
                    attested=True,
                    note=note,
                )
            )
            audit.append(
                session,
                actor=actor,
                action="request.verify",
                details={"request_id": row.id, "method": method, "attested": True},
                at=at,
                texts={"note": note} if note else None,
            )
            if verification_complete(row.kind, [*earlier, (method, actor)]):
                workflow.move(session, row, "verified", actor, f"identity verified ({method})")
            else:
                workflow.event(
                    session, row, row.state, row.state, actor,
                    f"identity checked ({method}); an access request also needs an identity document "
                    "or a second, different verifier",
                )  # fmt: skip
        return self.get(request_id)

    def extend(
        self, request_id: int, *, reason: str, actor: str, months: int = 2, now: datetime | None = None
    ) -> RequestView:
        """Extend the deadline by ``months`` (1 or 2) more months, once, with a stated reason, and
        tell the requester why (Art. 12(3)): only within the first month after receipt (``now``:
        the clock, by default the present); later, or longer, is refused."""
        reason = reason.strip()
        if len(reason) < 10:
            raise InputError("an extension needs a stated reason (at least 10 characters)")
        if months not in (1, 2):
            raise InputError("a deadline may be extended by one or two more months, no more (Art. 12(3))")
        with self.catalog.session() as session, session.begin():
            row = workflow.row_of(session, request_id)
            workflow.require_open(row, "it cannot be extended")
            if row.extension_reason:
                raise ConflictError(f"request {row.id} was already extended")
            first_month = add_months(row.received_at, 1)
            if (now or now_utc()) > first_month:
                raise PrivacyError(
                    f"request {row.id}: the first month after receipt ended on {first_month.date()}; an "
                    "extension must be announced to the requester within it (Art. 12(3))"
                )
            previous_due = row.due_at
            row.extension_reason = reason
            row.due_at = add_months(row.received_at, 1 + months)
            workflow.event(
                session, row, row.state, row.state, actor, f"extended to {row.due_at.date()}: {reason}"
            )
            audit.append(
                session,
                actor=actor,
                action="request.extend",
                details={"request_id": row.id, "due_at": row.due_at.isoformat()},
                at=now_utc(),
            )
        self.communications.write(
            request_id, "extension", actor=actor, reason=reason, previous_due=previous_due
        )
        return self.get(request_id)

    def reject(self, request_id: int, *, reason: str, actor: str) -> RequestView:
        reason = reason.strip()
        if not reason:
            raise InputError("a rejection needs a stated reason (the requester is told why)")
        with self.store.writing(), self.catalog.session() as session, session.begin():
            row = workflow.row_of(session, request_id)
            workflow.move(session, row, "rejected", actor, reason)
            # What earlier runs already did (faces erased before the rejection) stays on record.
            earlier = json.loads(row.outcome) if row.outcome else {}
            export = earlier.pop("export", None)
            if export:
                earlier["export_deleted"] = True
            workflow.close(session, row, earlier | {"rejected": reason})
        self.catalog.checkpoint()
        if isinstance(export, str):  # a rejected request's export is never delivered: it goes
            _delete_export_folder(self.store, export)
        self.communications.write(request_id, "refusal", actor=actor, reason=reason)
        return self.get(request_id)

    def message(
        self,
        request_id: int,
        *,
        kind: str,
        reason: str,
        actor: str,
        months: int = 2,
        now: datetime | None = None,
    ) -> MessageView:
        """Write to the requester by hand: ``extension`` extends the deadline (:meth:`extend`) and
        ``refusal`` refuses the request (:meth:`reject`), each with its reason; both write their
        message. The other kinds are written on their own (receipt, answer)."""
        if kind == "extension":
            self.extend(request_id, reason=reason, actor=actor, months=months, now=now)
        elif kind == "refusal":
            self.reject(request_id, reason=reason, actor=actor)
        else:
            raise InputError(
                "only an extension or a refusal is written by hand; the acknowledgement, the identity "
                "check and the answer are written when the request is received and answered"
            )
        return self.communications.messages(request_id)[-1]

    def messages(self, request_id: int) -> list[MessageView]:
        """The messages written to the request's requester, oldest first."""
        return self.communications.messages(request_id)

    def decide(self, request_id: int, face_id: int, *, confirm: bool, actor: str) -> CandidateGroup:
        """A reviewer's decision on candidate ``face_id``: it applies to every member of its group
        (the same face of the same photo in other sources) and is audited once, naming them all."""
        with self.catalog.session() as session, session.begin():
            row = workflow.row_of(session, request_id)
            workflow.require_open(row, "decisions are closed")
            group = groups.group_of(session, request_id, face_id)
            if group is None:
                raise NotFoundError(f"face {face_id} is not a candidate of request {request_id}")
            decision, at = ("confirmed" if confirm else "rejected"), now_utc()
            for member in group.face_ids:
                candidate = session.get(RequestCandidateRow, (request_id, member))
                if candidate is not None:
                    candidate.decision, candidate.decided_by, candidate.decided_at = decision, actor, at
            audit.append(
                session,
                actor=actor,
                action="request.decide",
                details={"request_id": request_id, "face_id": face_id, "face_ids": group.face_ids,
                         "decision": decision},
                at=at,
            )  # fmt: skip
            return dataclasses.replace(group, decision=decision, decided_by=actor)

    # -- acting --------------------------------------------------------------------------------

    def readiness(self, request_id: int, *, ingest_running: bool = False) -> dict[str, object]:
        """Whether the request can be answered now: ``ready``, the ``reason`` when it cannot (the
        missing step, in words), ``may_arrive`` (candidates may still arrive: a search of this
        request is running, or an ingest job is adding photos, which the caller tells with
        ``ingest_running``) and ``pending`` (candidates waiting for a decision)."""
        with self.catalog.session() as session:
            row = workflow.row_of(session, request_id)
            state = row.state
        pending = len(self.groups(request_id, pending_only=True)) if state == "in_review" else 0
        searching = self._searching.get(request_id, 0) > 0
        reason = workflow.answer_blocked(
            state, pending=pending, searching=searching, ingest_running=ingest_running
        )
        may_arrive = state in OPEN_STATES and (searching or ingest_running)
        return {"ready": reason is None, "reason": reason, "may_arrive": may_arrive, "pending": pending}

    def answer(self, request_id: int, *, actor: str, ingest_running: bool = False) -> dict[str, object]:
        """Act on the automatic and confirmed faces and close the request. Refused, with nothing
        changed, unless the request was run and every candidate is decided (a :class:`PrivacyError`
        naming the missing step, :meth:`readiness`); when the answer's own search finds new
        candidates (through the confirmed faces) they are kept for review and the answer is refused
        too, before anything is acted on."""
        blocked = self.readiness(request_id, ingest_running=ingest_running)["reason"]
        if blocked is not None:
            raise PrivacyError(f"request {request_id} cannot be answered yet: {blocked}")
        result = self.run(request_id, actor=actor, auto_only=False, must_close=True)
        state = str(result["state"])
        return result | {"message": workflow.answered_message(state, result)}

    def preview(self, request_id: int, *, actor: str, auto_only: bool = True) -> dict[str, Any]:
        """What :meth:`run` would act on now, changing nothing: the faces (the automatic band, and
        with ``auto_only`` false the confirmed ones too) grouped by photo, each photo with its name
        and source and each face with its score, and how many candidates would wait for review. A
        search of the gallery for the requester: verified requests only, audited
        (``request.preview``, with the faces shown)."""
        with self.catalog.session() as session:
            row = workflow.row_of(session, request_id)
            workflow.require_verified(row)
            kind = row.kind
        with self._search_of(request_id):
            found = self._search(request_id, self._probe_templates(request_id))
        targets, pending = self._targets(request_id, found, auto_only=auto_only)
        with self.catalog.session() as session, session.begin():
            photos = context.by_photo(session, {f: found[f].score for f in targets})
            audit.append(
                session,
                actor=actor,
                action="request.preview",
                details={"request_id": request_id, "faces": len(targets), "photos": len(photos)},
                faces=sorted(targets),
                at=now_utc(),
            )
        return {
            "request_id": request_id,
            "kind": kind,
            "faces": sum(len(p["faces"]) for p in photos),
            "photos": len(photos),
            "by_photo": photos,
            "review_candidates": len(pending),
        }

    def run(
        self, request_id: int, *, actor: str, auto_only: bool = False, must_close: bool = False
    ) -> dict[str, object]:
        """Find the person and act: erase, export or suppress. With ``auto_only`` only the automatic
        band is acted on; otherwise reviewer-confirmed faces too. Closes the request when nothing is
        left for a reviewer; with ``must_close`` (the answer) a search that leaves candidates for a
        reviewer acts on nothing and raises :class:`PrivacyError` (the candidates are kept)."""
        with self.catalog.session() as session:
            row = workflow.row_of(session, request_id)
            workflow.require_verified(row)
            kind = row.kind
        if kind == "erasure":
            self.signoffs.check(request_id, actor=actor)  # off by default (LETHE_ERASURE_SECOND_SIGNOFF)
        with self._search_of(request_id):
            probes = self._probe_templates(request_id)
            found = self._find(request_id, probes)
        targets, pending = self._targets(request_id, found, auto_only=auto_only)
        if must_close and pending:
            raise PrivacyError(
                f"request {request_id} cannot be answered yet: its search found {len(pending)} new "
                "candidate(s) through the confirmed faces; decide them in the review queue, then answer"
            )
        earlier = self.outcome(request_id).get("acted_on", []) if kind == "erasure" else []
        with self.catalog.session() as session:
            photos = context.by_photo(session, {f: found[f].score for f in targets})
        result = ACTIONS[kind](self, Run(request_id, kind, actor, targets, pending, probes))
        result["acted_on"] = context.acted_on(photos, earlier)
        pending = result.pop("pending", pending)
        with self.store.writing(), self.catalog.session() as session, session.begin():
            row = workflow.row_of(session, request_id)
            row.outcome = json.dumps(result)
            audit.append(
                session,
                actor=actor,
                action=f"request.run.{kind}",
                details={"request_id": request_id, "acted_on": len(targets), "pending": len(pending)},
                at=now_utc(),
            )
            if kind == "access":
                # Finding a person for an access request is a face search by whoever runs it: it is
                # audited as one, so the faces it returned show it in their own access exports.
                audit.append(
                    session,
                    actor=actor,
                    action="search",
                    details={
                        "request_id": request_id,
                        "threshold": self.settings.erasure_review_threshold,
                        "face_ids": sorted(found),
                        "model_sha256": self.store.model_sha256,
                        "model": model_name(self.store.model_sha256),
                        "gallery_faces": len(self.store.index),
                        "sources_searched": sorted(s.name for s in self.catalog.sources()),
                    },
                    faces=sorted(found),
                    at=now_utc(),
                    texts={"purpose": f"access request {request_id}"},
                )
            if pending:
                workflow.move(
                    session, row, "in_review", actor, f"{len(pending)} candidate(s) wait for a reviewer"
                )
            else:
                workflow.move(session, row, "answered", actor, f"{kind} carried out")
                workflow.close(session, row, result)
        self.catalog.checkpoint()
        if not pending:
            self.communications.write(request_id, "answer", actor=actor)
        return {k: v for k, v in result.items() if k != "receipts"} | {"state": self.get(request_id).state}

    # -- the access export ---------------------------------------------------------------------

    def export_path(self, request_id: int) -> Path:
        """The folder of the request's access export on this host (the command line prints it; the
        outcome names it only by its folder's name). ``NotFoundError`` when there is none."""
        folder = export_folder(self.store, self.outcome(request_id).get("export"))
        if folder is None:
            raise NotFoundError(f"request {request_id} has no access export (run it first)")
        if not folder.is_dir():
            raise NotFoundError(f"the export of request {request_id} is no longer on the server")
        return folder

    def delete_export(self, request_id: int, *, actor: str) -> dict[str, object]:
        """Delete the request's access export once it is delivered (or is not to be): every file
        unlinked and the folder removed, then the outcome marked ``export_deleted`` and the deletion
        audited (``request.export.delete``). ``NotFoundError`` when the request has no export (not
        run, or deleted already). An export the erasure of its person already deleted is recorded
        as deleted (no file left)."""
        with self.store.writing():
            name = self.outcome(request_id).get("export")
            if export_folder(self.store, name) is None:
                raise NotFoundError(f"request {request_id} has no access export (not run, or deleted)")
            files = _delete_export_folder(self.store, name) or 0
            at = now_utc()
            with self.catalog.session() as session, session.begin():
                row = workflow.row_of(session, request_id)
                outcome = json.loads(row.outcome) if row.outcome else {}
                outcome.pop("export", None)
                row.outcome = json.dumps(outcome | {"export_deleted": True})
                workflow.event(session, row, row.state, row.state, actor, "access export deleted")
                audit.append(
                    session,
                    actor=actor,
                    action="request.export.delete",
                    details={"request_id": request_id, "files_deleted": files},
                    at=at,
                )
        self.catalog.checkpoint()
        return {"request_id": request_id, "export_deleted": True, "files_deleted": files}

    # -- for the actions -----------------------------------------------------------------------

    def remaining(self, probes: np.ndarray) -> int:
        """Faces still at or above the automatic threshold for the requester's photos."""
        if len(self.store.index) == 0:
            return 0
        k = min(len(self.store.index), 256)
        hits = self.store.index.search(probes, k)
        limit = self.settings.erasure_auto_threshold
        return len({f for row in hits for f, s in row if s >= limit})

    def templates(self, face_ids: Sequence[int]) -> np.ndarray:
        found = self.catalog.face_templates(face_ids)
        return np.vstack([found[f] for f in face_ids if f in found]).astype(np.float32)

    def receipts(self, request_id: int) -> list[ErasureReceipt]:
        """Receipts of the request's finished erasure jobs, oldest first."""
        with self.catalog.session() as session:
            job_ids = session.scalars(
                select(ErasureJobRow.id)
                .where(ErasureJobRow.request_id == request_id, ErasureJobRow.state == "done")
                .order_by(ErasureJobRow.id)
            ).all()
        return [r for r in map(self.gate.receipt, job_ids) if r is not None]

    def outcome(self, request_id: int) -> dict[str, Any]:
        with self.catalog.session() as session:
            row = workflow.row_of(session, request_id)
            return json.loads(row.outcome) if row.outcome else {}

    # -- internals -----------------------------------------------------------------------------

    def _faces(self, photo: bytes) -> list[Any]:
        image = decode_image(
            photo, max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_image_bytes
        )
        return self._pipeline().faces(image.pixels)

    @contextmanager
    def _search_of(self, request_id: int) -> Iterator[None]:
        """Counts a search of the request in flight (:meth:`readiness`: candidates may arrive)."""
        with self._lock:
            self._searching[request_id] = self._searching.get(request_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._searching[request_id] -= 1
                if not self._searching[request_id]:
                    del self._searching[request_id]

    def _targets(
        self, request_id: int, found: dict[int, Candidate], *, auto_only: bool
    ) -> tuple[list[int], list[int]]:
        """The faces to act on (automatic band; unless ``auto_only``, confirmed ones too) and the
        review-band faces still waiting for a decision."""
        with self.catalog.session() as session:
            decisions = {c.face_id: c.decision for c in records.candidates(session, request_id)}
        targets = [
            f
            for f, c in found.items()
            if c.band == "automatic" or (not auto_only and decisions.get(f) == "confirmed")
        ]
        pending = [f for f, c in found.items() if c.band == "review" and decisions.get(f) is None]
        return targets, pending

    def _find(self, request_id: int, probes: np.ndarray) -> dict[int, Candidate]:
        """:meth:`_search`, its candidates stored (new ones added, known ones rescored)."""
        found = self._search(request_id, probes)
        with self.catalog.session() as session, session.begin():
            for candidate in found.values():
                row = session.get(RequestCandidateRow, (request_id, candidate.face_id))
                if row is None:
                    session.add(
                        RequestCandidateRow(
                            request_id=request_id,
                            face_id=candidate.face_id,
                            score=candidate.score,
                            band=candidate.band,
                            round=candidate.round,
                        )
                    )
                else:
                    row.score, row.band = candidate.score, candidate.band
        return found

    def _search(self, request_id: int, probes: np.ndarray) -> dict[int, Candidate]:
        """The person's faces in the gallery, with the reviewers' decisions so far; writes nothing."""
        with self.catalog.session() as session:
            rows = session.scalars(
                select(RequestCandidateRow).where(RequestCandidateRow.request_id == request_id)
            ).all()
            confirmed = [r.face_id for r in rows if r.decision == "confirmed"]
            rejected = [r.face_id for r in rows if r.decision == "rejected"]
        return find_person(
            self.store.index,
            probes,
            self.catalog.face_templates,
            auto_threshold=self.settings.erasure_auto_threshold,
            review_threshold=self.settings.erasure_review_threshold,
            confirmed=confirmed,
            rejected=rejected,
        )

    def _probe_templates(self, request_id: int) -> np.ndarray:
        """The requester's templates under the configured model: a probe whose template another model
        made (the embedder changed while the request was open) is embedded again from its photo,
        which is kept until the request closes."""
        rows = records.probe_templates(self.store, request_id)
        if not rows:
            raise PrivacyError(f"request {request_id} holds no photos any more (it was closed)")
        photos = (
            dict(records.probe_photos(self.store, request_id))
            if any(t is None or m != self.store.model_sha256 for _, t, m in rows)
            else {}
        )
        vectors = []
        for pid, template, model in rows:
            if template is not None and model == self.store.model_sha256:
                vectors.append(np.frombuffer(template, dtype=np.float32))
                continue
            vectors.append(self._embed_again(pid, photos.get(pid)))
        return np.vstack(vectors)

    def _embed_again(self, probe_id: int, photo: bytes | None) -> np.ndarray:
        if photo is None:
            raise PrivacyError(f"probe {probe_id} holds no photo any more")
        faces = self._faces(photo)
        if not faces:
            raise PrivacyError(f"probe {probe_id}: the configured embedder's detector finds no face")
        template = np.asarray(faces[0].embedding, np.float32)
        self.gate.replace_probe_template(probe_id, template)
        return template
