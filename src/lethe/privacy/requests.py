"""Data-subject requests (GDPR Arts. 12, 15, 17, 21): record, state machine, finding, action.

States: ``received`` → ``verified`` → ``in_review`` → ``answered`` | ``rejected``. The answer is due
one calendar month after receipt; an extension to three months needs a recorded reason (Art. 12(3)).
There is no cap on how often a person may ask, nor on how far back an answer reaches.

The requester's photos are stored encrypted (master key) only while the request is open; when it is
answered or rejected the photos and their templates are deleted and only their hashes remain.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from calendar import monthrange
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from lethe.catalog.privacy_tables import (
    ErasureJobRow,
    RequestCandidateRow,
    RequestEventRow,
    RequestProbeBlobRow,
    RequestProbeRow,
    RequestRow,
)
from lethe.catalog.repository import now_utc
from lethe.errors import InputError, NotFoundError, PrivacyError
from lethe.imaging import decode_image
from lethe.privacy import audit
from lethe.privacy.finder import Candidate, find_person

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lethe.pipeline import FacePipeline
    from lethe.privacy.erasure import ErasureReceipt
    from lethe.store import Store

KINDS = ("access", "erasure", "objection", "restriction")
OPEN_STATES = ("received", "verified", "in_review")
TRANSITIONS = {
    "received": {"verified", "rejected"},
    "verified": {"in_review", "answered", "rejected"},
    "in_review": {"in_review", "answered", "rejected"},
}
MAX_CONTACT = 320


def add_months(when: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months later (clamped to the month's last day)."""
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    ref: str
    kind: str
    state: str
    received_at: datetime
    due_at: datetime
    extension_reason: str | None
    channel: str
    answered_at: datetime | None
    closed_at: datetime | None
    outcome: dict[str, Any] | None
    probe_hashes: list[str] = field(default_factory=list)
    candidates: dict[str, int] = field(default_factory=dict)

    @property
    def overdue(self) -> bool:
        return self.state in OPEN_STATES and now_utc() > self.due_at

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ref": self.ref,
            "kind": self.kind,
            "state": self.state,
            "received_at": self.received_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "overdue": self.overdue,
            "extension_reason": self.extension_reason,
            "channel": self.channel,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "outcome": self.outcome,
            "probe_sha256": self.probe_hashes,
            "candidates": self.candidates,
        }


@dataclass(frozen=True, slots=True)
class CandidateView:
    face_id: int
    score: float
    band: str
    round: int
    decision: str | None
    decided_by: str | None


class Requests:
    """The request workflow over an open store."""

    def __init__(self, store: Store, pipeline: Callable[[], FacePipeline]) -> None:
        self.store = store
        self._pipeline = pipeline  # built on first use: opening a request decodes its photos
        self.catalog = store.catalog
        self.settings = store.settings

    # -- opening -------------------------------------------------------------------------------

    def open(
        self, *, kind: str, photos: Sequence[bytes], contact: str, channel: str = "cli", actor: str = "system"
    ) -> RequestView:
        if kind not in KINDS:
            raise InputError(f"request kind must be one of {', '.join(KINDS)}")
        contact = contact.strip()
        if not contact or len(contact) > MAX_CONTACT:
            raise InputError("a contact address (1-320 characters) is needed to answer the request")
        if not photos:
            raise InputError("at least one photo of the person is needed")
        templates: list[np.ndarray] = []
        counts: list[int] = []
        for number, photo in enumerate(photos, start=1):
            image = decode_image(
                photo, max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_image_bytes
            )
            faces = self._pipeline().faces(image.pixels)
            if not faces:
                raise InputError(f"photo {number} holds no detectable face")
            templates.append(faces[0].embedding)
            counts.append(len(faces))
        received = now_utc()
        keyring = self.store.keyring
        with self.catalog.session() as session, session.begin():
            row = RequestRow(
                ref=secrets.token_hex(8),
                kind=kind,
                state="received",
                received_at=received,
                due_at=add_months(received, 1),
                channel=channel,
                contact=b"",
                outcome=None,
            )
            session.add(row)
            session.flush()
            row.contact = keyring.seal_master(contact.encode(), f"request-contact:{row.id}".encode())
            for photo, template, count in zip(photos, templates, counts, strict=True):
                probe = RequestProbeRow(
                    request_id=row.id,
                    sha256=hashlib.sha256(photo).hexdigest(),
                    faces=count,
                    added_at=received,
                )
                session.add(probe)
                session.flush()
                aad = f"request-probe:{probe.id}".encode()
                session.add(
                    RequestProbeBlobRow(
                        probe_id=probe.id,
                        photo=keyring.seal_master(photo, aad + b":photo"),
                        template=keyring.seal_master(
                            np.asarray(template, np.float32).tobytes(), aad + b":template"
                        ),
                        model_sha256=self.store.model_sha256,
                    )
                )
            self._event(session, row, None, "received", actor, f"opened via {channel}")
            audit.append(
                session,
                actor=actor,
                action="request.open",
                details={"request_id": row.id, "kind": kind, "photos": len(photos), "channel": channel},
                at=received,
            )
            request_id = row.id
        return self.get(request_id)

    # -- reading -------------------------------------------------------------------------------

    def get(self, request_id: int) -> RequestView:
        with self.catalog.session() as session:
            return self._view(session, self._row(session, request_id))

    def list_requests(self, *, state: str | None = None, open_only: bool = False) -> list[RequestView]:
        with self.catalog.session() as session:
            query = select(RequestRow).order_by(RequestRow.due_at)
            if state:
                query = query.where(RequestRow.state == state)
            if open_only:
                query = query.where(RequestRow.state.in_(OPEN_STATES))
            return [self._view(session, r) for r in session.scalars(query)]

    def contact(self, request_id: int) -> str:
        with self.catalog.session() as session:
            row = self._row(session, request_id)
            return self.store.keyring.open_master(row.contact, f"request-contact:{row.id}".encode()).decode()

    def candidates(self, request_id: int, *, pending_only: bool = False) -> list[CandidateView]:
        with self.catalog.session() as session:
            query = select(RequestCandidateRow).where(RequestCandidateRow.request_id == request_id)
            rows = session.scalars(query.order_by(RequestCandidateRow.score.desc())).all()
        views = [CandidateView(r.face_id, r.score, r.band, r.round, r.decision, r.decided_by) for r in rows]
        if pending_only:
            views = [v for v in views if v.band == "review" and v.decision is None]
        return views

    def events(self, request_id: int) -> list[dict[str, object]]:
        with self.catalog.session() as session:
            rows = session.scalars(
                select(RequestEventRow)
                .where(RequestEventRow.request_id == request_id)
                .order_by(RequestEventRow.id)
            ).all()
            return [
                {
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "from": r.from_state,
                    "to": r.to_state,
                    "note": r.note,
                }
                for r in rows
            ]

    def probe_photos(self, request_id: int) -> list[bytes]:
        """The requester's photos (decrypted) while the request is open: for the reviewer's screen."""
        with self.catalog.session() as session:
            rows = session.execute(
                select(RequestProbeRow.id, RequestProbeBlobRow.photo)
                .join(RequestProbeBlobRow, RequestProbeBlobRow.probe_id == RequestProbeRow.id)
                .where(RequestProbeRow.request_id == request_id)
                .order_by(RequestProbeRow.id)
            ).all()
        keyring = self.store.keyring
        return [keyring.open_master(blob, f"request-probe:{pid}:photo".encode()) for pid, blob in rows]

    # -- state changes -------------------------------------------------------------------------

    def verify(self, request_id: int, *, actor: str, note: str | None = None) -> RequestView:
        with self.catalog.session() as session, session.begin():
            row = self._row(session, request_id)
            self._move(session, row, "verified", actor, note or "identity of the requester verified")
        return self.get(request_id)

    def extend(self, request_id: int, *, reason: str, actor: str) -> RequestView:
        reason = reason.strip()
        if len(reason) < 10:
            raise InputError("an extension needs a stated reason (at least 10 characters)")
        with self.catalog.session() as session, session.begin():
            row = self._row(session, request_id)
            if row.state not in OPEN_STATES:
                raise PrivacyError(f"request {row.id} is {row.state}; it cannot be extended")
            if row.extension_reason:
                raise PrivacyError(f"request {row.id} was already extended")
            row.extension_reason = reason
            row.due_at = add_months(row.received_at, 3)
            self._event(
                session, row, row.state, row.state, actor, f"extended to {row.due_at.date()}: {reason}"
            )
            audit.append(
                session,
                actor=actor,
                action="request.extend",
                details={"request_id": row.id, "due_at": row.due_at.isoformat()},
                at=now_utc(),
            )
        return self.get(request_id)

    def reject(self, request_id: int, *, reason: str, actor: str) -> RequestView:
        reason = reason.strip()
        if not reason:
            raise InputError("a rejection needs a stated reason (the requester is told why)")
        with self.catalog.session() as session, session.begin():
            row = self._row(session, request_id)
            self._move(session, row, "rejected", actor, reason)
            # What earlier runs already did (faces erased before the rejection) stays on record.
            earlier = json.loads(row.outcome) if row.outcome else {}
            self._close(session, row, earlier | {"rejected": reason})
        self.catalog.checkpoint()
        return self.get(request_id)

    def decide(self, request_id: int, face_id: int, *, confirm: bool, actor: str) -> CandidateView:
        with self.catalog.session() as session, session.begin():
            row = self._row(session, request_id)
            if row.state not in OPEN_STATES:
                raise PrivacyError(f"request {row.id} is {row.state}; decisions are closed")
            candidate = session.get(RequestCandidateRow, (request_id, face_id))
            if candidate is None:
                raise NotFoundError(f"face {face_id} is not a candidate of request {request_id}")
            candidate.decision = "confirmed" if confirm else "rejected"
            candidate.decided_by, candidate.decided_at = actor, now_utc()
            audit.append(
                session,
                actor=actor,
                action="request.decide",
                details={"request_id": request_id, "face_id": face_id, "decision": candidate.decision},
                at=candidate.decided_at,
            )
            return CandidateView(
                candidate.face_id, candidate.score, candidate.band, candidate.round, candidate.decision, actor
            )

    # -- acting --------------------------------------------------------------------------------

    def answer(self, request_id: int, *, actor: str) -> dict[str, object]:
        """Act on the automatic and confirmed faces and close the request: only once every
        candidate is decided (a :class:`PrivacyError` names how many still wait)."""
        pending = self.candidates(request_id, pending_only=True)
        if pending:
            raise PrivacyError(f"{len(pending)} candidate(s) still wait for a decision")
        return self.run(request_id, actor=actor, auto_only=False)

    def run(self, request_id: int, *, actor: str, auto_only: bool = False) -> dict[str, object]:
        """Find the person and act: erase, export or suppress. With ``auto_only`` only the automatic
        band is acted on; otherwise reviewer-confirmed faces too. Closes the request when nothing is
        left for a reviewer."""
        from lethe.privacy.access import write_export
        from lethe.privacy.erasure import Eraser
        from lethe.privacy.suppression import suppress

        with self.catalog.session() as session, session.begin():
            row = self._row(session, request_id)
            if row.state not in OPEN_STATES:
                raise PrivacyError(f"request {row.id} is {row.state}; it cannot be run again")
            if row.state == "received":
                self._move(session, row, "verified", actor, "verified by the operator who ran it")
            kind = row.kind
        probes = self._probe_templates(request_id)
        found = self._find(request_id, probes)
        with self.catalog.session() as session:
            decisions = {
                r.face_id: r.decision
                for r in session.scalars(
                    select(RequestCandidateRow).where(RequestCandidateRow.request_id == request_id)
                )
            }
        targets = [
            f
            for f, c in found.items()
            if c.band == "auto" or (not auto_only and decisions.get(f) == "confirmed")
        ]
        pending = [f for f, c in found.items() if c.band == "review" and decisions.get(f) is None]
        result: dict[str, object]
        if kind == "erasure":
            with self.store.writing():
                receipt = Eraser(self.store).erase(
                    targets, reason="erasure request", actor=actor, request_id=request_id
                )
            remaining = self._remaining(probes)
            previous = self._outcome(request_id)
            # Jobs of this request that an earlier, killed run planned and the engine finished on
            # its next start: what they erased belongs in the answer too.
            reported = {int(r["job_id"]) for r in previous.get("receipts", [])} | {receipt.job_id}
            new = [*(r for r in self._receipts(request_id) if r.job_id not in reported), receipt]
            erased_faces = int(previous.get("erased_faces", 0)) + sum(len(r.erased_faces) for r in new)
            erased_images = int(previous.get("erased_images", 0)) + sum(len(r.erased_images) for r in new)
            pending = [f for f in pending if f not in set(receipt.erased_faces)]
            result = {
                "erased_faces": erased_faces,
                "erased_images": erased_images,
                "review_candidates": len(pending),
                "remaining_after_verify": remaining,
                "receipts": [*previous.get("receipts", []), *(r.as_dict() for r in new)],
                "verified_at": now_utc().isoformat(),
            }
        elif kind == "access":
            view = self.get(request_id)
            path, faces = write_export(self.store, view, targets)
            result = {"export": str(path), "faces": faces, "review_candidates": len(pending)}
        else:
            templates = [probes] + ([self._templates(targets)] if targets else [])
            count = suppress(self.store, np.vstack(templates), request_id=request_id, actor=actor, scope=kind)
            flag = "suppressed" if kind == "objection" else "restricted"
            result = {
                flag: True,
                "templates": count,
                "faces": len(targets),
                "review_candidates": len(pending),
            }
        with self.catalog.session() as session, session.begin():
            row = self._row(session, request_id)
            row.outcome = json.dumps(result)
            audit.append(
                session,
                actor=actor,
                action=f"request.run.{kind}",
                details={"request_id": request_id, "acted_on": len(targets), "pending": len(pending)},
                at=now_utc(),
            )
            if pending:
                self._move(
                    session, row, "in_review", actor, f"{len(pending)} candidate(s) wait for a reviewer"
                )
            else:
                self._move(session, row, "answered", actor, f"{kind} carried out")
                self._close(session, row, result)
        self.catalog.checkpoint()
        return {k: v for k, v in result.items() if k != "receipts"} | {"state": self.get(request_id).state}

    # -- internals -----------------------------------------------------------------------------

    def _find(self, request_id: int, probes: np.ndarray) -> dict[int, Candidate]:
        with self.catalog.session() as session:
            rows = session.scalars(
                select(RequestCandidateRow).where(RequestCandidateRow.request_id == request_id)
            ).all()
            confirmed = [r.face_id for r in rows if r.decision == "confirmed"]
            rejected = [r.face_id for r in rows if r.decision == "rejected"]
        found = find_person(
            self.store.index,
            probes,
            self.catalog.face_templates,
            auto_threshold=self.settings.erasure_auto_threshold,
            review_threshold=self.settings.erasure_review_threshold,
            confirmed=confirmed,
            rejected=rejected,
        )
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

    def _remaining(self, probes: np.ndarray) -> int:
        """Faces still at or above the automatic threshold for the requester's photos."""
        if len(self.store.index) == 0:
            return 0
        k = min(len(self.store.index), 256)
        hits = self.store.index.search(probes, k)
        limit = self.settings.erasure_auto_threshold
        return len({f for row in hits for f, s in row if s >= limit})

    def _templates(self, face_ids: Sequence[int]) -> np.ndarray:
        found = self.catalog.face_templates(face_ids)
        return np.vstack([found[f] for f in face_ids if f in found]).astype(np.float32)

    def _probe_templates(self, request_id: int) -> np.ndarray:
        """The requester's templates under the configured model: a probe whose template another model
        made (the embedder changed while the request was open) is embedded again from its photo,
        which is kept until the request closes."""
        with self.catalog.session() as session:
            rows = session.execute(
                select(RequestProbeRow.id, RequestProbeBlobRow.template, RequestProbeBlobRow.model_sha256)
                .join(RequestProbeBlobRow, RequestProbeBlobRow.probe_id == RequestProbeRow.id)
                .where(RequestProbeRow.request_id == request_id)
            ).all()
        if not rows:
            raise PrivacyError(f"request {request_id} holds no photos any more (it was closed)")
        keyring = self.store.keyring
        vectors = []
        for pid, blob, model in rows:
            aad = f"request-probe:{pid}".encode()
            if blob is not None and model == self.store.model_sha256:
                vectors.append(np.frombuffer(keyring.open_master(blob, aad + b":template"), dtype=np.float32))
                continue
            vectors.append(self._embed_again(pid, aad))
        return np.vstack(vectors)

    def _embed_again(self, probe_id: int, aad: bytes) -> np.ndarray:
        with self.catalog.session() as session, session.begin():
            blob = session.get(RequestProbeBlobRow, probe_id)
            if blob is None:
                raise PrivacyError(f"probe {probe_id} holds no photo any more")
            photo = self.store.keyring.open_master(blob.photo, aad + b":photo")
            image = decode_image(
                photo, max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_image_bytes
            )
            faces = self._pipeline().faces(image.pixels)
            if not faces:
                raise PrivacyError(f"probe {probe_id}: the configured embedder's detector finds no face")
            template = np.asarray(faces[0].embedding, np.float32)
            blob.template = self.store.keyring.seal_master(template.tobytes(), aad + b":template")
            blob.model_sha256 = self.store.model_sha256
        return template

    def _receipts(self, request_id: int) -> list[ErasureReceipt]:
        """Receipts of the request's finished erasure jobs, oldest first."""
        from lethe.privacy.erasure import Eraser

        with self.catalog.session() as session:
            job_ids = session.scalars(
                select(ErasureJobRow.id)
                .where(ErasureJobRow.request_id == request_id, ErasureJobRow.state == "done")
                .order_by(ErasureJobRow.id)
            ).all()
        eraser = Eraser(self.store)
        return [r for r in map(eraser.receipt, job_ids) if r is not None]

    def _outcome(self, request_id: int) -> dict[str, Any]:
        with self.catalog.session() as session:
            row = self._row(session, request_id)
            return json.loads(row.outcome) if row.outcome else {}

    def _row(self, session: Session, request_id: int) -> RequestRow:
        row = session.get(RequestRow, request_id)
        if row is None:
            raise NotFoundError(f"no request {request_id}")
        return row

    def _move(self, session: Session, row: RequestRow, to: str, actor: str, note: str | None) -> None:
        if to not in TRANSITIONS.get(row.state, set()):
            raise PrivacyError(f"request {row.id} is {row.state}; it cannot become {to}")
        self._event(session, row, row.state, to, actor, note)
        audit.append(
            session,
            actor=actor,
            action="request.state",
            details={"request_id": row.id, "from": row.state, "to": to},
            at=now_utc(),
        )
        row.state = to

    def _event(
        self, session: Session, row: RequestRow, frm: str | None, to: str, actor: str, note: str | None
    ) -> None:
        session.add(
            RequestEventRow(
                request_id=row.id, at=now_utc(), actor=actor, from_state=frm, to_state=to, note=note
            )
        )

    def _close(self, session: Session, row: RequestRow, outcome: dict[str, object]) -> None:
        """Answered or rejected: delete the requester's photos and templates, keep their hashes."""
        at = now_utc()
        row.closed_at = at
        if row.state == "answered":
            row.answered_at = at
        row.outcome = json.dumps(outcome)
        probes = session.scalars(select(RequestProbeRow).where(RequestProbeRow.request_id == row.id)).all()
        for probe in probes:
            blob = session.get(RequestProbeBlobRow, probe.id)
            if blob is not None:
                session.delete(blob)
            probe.deleted_at = at
        audit.append(
            session,
            actor="system",
            action="request.close",
            details={"request_id": row.id, "state": row.state, "photos_deleted": len(probes)},
            at=at,
        )

    def _view(self, session: Session, row: RequestRow) -> RequestView:
        hashes = list(
            session.scalars(select(RequestProbeRow.sha256).where(RequestProbeRow.request_id == row.id))
        )
        bands: dict[str, int] = {}
        for r in session.scalars(select(RequestCandidateRow).where(RequestCandidateRow.request_id == row.id)):
            key = r.band if r.decision is None else r.decision
            bands[key] = bands.get(key, 0) + 1
        return RequestView(
            id=row.id,
            ref=row.ref,
            kind=row.kind,
            state=row.state,
            received_at=row.received_at,
            due_at=row.due_at,
            extension_reason=row.extension_reason,
            channel=row.channel,
            answered_at=row.answered_at,
            closed_at=row.closed_at,
            outcome=json.loads(row.outcome) if row.outcome else None,
            probe_hashes=hashes,
            candidates=bands,
        )
