"""What running a request does, per kind: erase the person's faces, export them, or keep them out
(objection, restriction). Each action gets the faces to act on and returns the request's outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lethe.catalog.repository import now_utc
from lethe.privacy.access import write_export
from lethe.privacy.objections import ERASURE
from lethe.privacy.recipient_notices import RecipientNotices, on_restriction

if TYPE_CHECKING:
    from lethe.privacy.requests import SubjectRequests


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a request: the faces to act on, those still waiting for a reviewer, and the
    requester's templates."""

    request_id: int
    kind: str
    actor: str
    targets: list[int]
    pending: list[int]
    probes: np.ndarray


def erase(requests: SubjectRequests, run: Run) -> dict[str, Any]:
    """Erase the person's faces. Their templates (the requester's and the faces about to be erased)
    are first kept as the request's erasure suppression, so a re-encoded or resized copy of an
    erased photo stays out of every later ingest (docs/privacy.md, "Erasure that stays erased")."""
    if run.targets:
        requests.gate.suppress(
            np.vstack([run.probes, requests.templates(run.targets)]),
            request_id=run.request_id,
            actor=run.actor,
            scope=ERASURE,
        )
    receipt = requests.gate.erase(
        run.targets, reason="erasure request", actor=run.actor, request_id=run.request_id
    )
    remaining = requests.remaining(run.probes)
    previous = requests.outcome(run.request_id)
    # Jobs of this request that an earlier, killed run planned and the engine finished on its next
    # start: what they erased belongs in the answer too.
    reported = {int(r["job_id"]) for r in previous.get("receipts", [])} | {receipt.job_id}
    new = [*(r for r in requests.receipts(run.request_id) if r.job_id not in reported), receipt]
    pending = [f for f in run.pending if f not in set(receipt.erased_faces)]
    return {
        "erased_faces": int(previous.get("erased_faces", 0)) + sum(len(r.erased_faces) for r in new),
        "erased_images": int(previous.get("erased_images", 0)) + sum(len(r.erased_images) for r in new),
        "review_candidates": len(pending),
        "remaining_after_verify": remaining,
        "receipts": [*previous.get("receipts", []), *(r.as_dict() for r in new)],
        "verified_at": now_utc().isoformat(),
        "pending": pending,
        # Art. 19: whom the erasure is passed on to (their notices are generated with it).
        "recipients_notified": RecipientNotices(requests.store).recipients_of_request(run.request_id),
    }


def export(requests: SubjectRequests, run: Run) -> dict[str, Any]:
    # The pipeline finds the photos' faces again, so faces the catalog never kept are blurred too.
    view = requests.get(run.request_id)
    path, faces = write_export(requests.store, view, run.targets, requests._pipeline)
    # The folder's name inside the exports folder: an outcome never holds a path of the server.
    return {"export": path.name, "faces": faces, "review_candidates": len(run.pending)}


def suppress(requests: SubjectRequests, run: Run) -> dict[str, Any]:
    templates = [run.probes] + ([requests.templates(run.targets)] if run.targets else [])
    count = requests.gate.suppress(
        np.vstack(templates), request_id=run.request_id, actor=run.actor, scope=run.kind
    )
    flag = "suppressed" if run.kind == "objection" else "restricted"
    # Art. 19: the recipients these faces were disclosed to are told (after the write succeeded).
    on_restriction(
        requests.store, request_id=run.request_id, face_ids=run.targets, cause=run.kind, actor=run.actor
    )
    return {
        flag: True,
        "templates": count,
        "faces": len(run.targets),
        "review_candidates": len(run.pending),
        "recipients_notified": RecipientNotices(requests.store).recipients_of_request(run.request_id),
    }


ACTIONS: dict[str, Callable[[SubjectRequests, Run], dict[str, Any]]] = {
    "erasure": erase,
    "access": export,
    "objection": suppress,
    "restriction": suppress,
}
