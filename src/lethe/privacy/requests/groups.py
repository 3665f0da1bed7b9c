"""One review decision per face, however many sources hold its photo (security review, section 21:
the same photo in two sources gave two candidates, which doubled the review work of every erasure).

Each source keeps its own rows (each has its own lawful basis), so the same photo ingested into two
sources is two faces. Candidates of a request that are *the same face of the same photo content* —
the same image sha256, boxes overlapping at IoU >= :data:`SAME_FACE_IOU`, whatever the source — form
one :class:`CandidateGroup`: the review queue lists it once with its members (face ids and
sources), and one decision applies to every member (:meth:`lethe.privacy.requests.SubjectRequests.decide`).

Running the request needs nothing more to reach every copy of a confirmed face, wherever and
whenever it was ingested: a confirmed face's template is a seed of the next search
(:mod:`lethe.privacy.finder`), and a copy's template is the same, so the copy is in the automatic
band.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestCandidateRow
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.detection.scan import iou
from lethe.privacy.requests.records import CandidateView
from lethe.types import Box

#: Boxes of one photo overlapping at least this much (intersection over union) are the same face.
SAME_FACE_IOU = 0.5


@dataclass(frozen=True, slots=True)
class Member:
    """One face of a group: its id and its source (``None`` once the face is erased)."""

    face_id: int
    source: str | None


@dataclass(frozen=True, slots=True)
class CandidateGroup(CandidateView):
    """Candidates of one request that are the same face of the same photo, in one or more sources.
    ``face_id``, ``score``, ``band`` and ``round`` are its first member's (the best score, then the
    lowest id); ``decision`` is the members' common decision, ``None`` while any member waits."""

    members: tuple[Member, ...]

    @property
    def face_ids(self) -> list[int]:
        return [m.face_id for m in self.members]

    @property
    def also_in(self) -> list[str]:
        """The sources of the other members that the first member's source is not."""
        first = self.members[0].source
        return sorted({m.source for m in self.members[1:] if m.source is not None and m.source != first})


@dataclass(frozen=True, slots=True)
class _Face:
    sha256: str
    box: Box
    source: str


def _faces(session: Session, face_ids: Iterable[int]) -> dict[int, _Face]:
    """Photo hash, box and source of each face that still exists."""
    wanted = sorted(set(face_ids))
    found: dict[int, _Face] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(FaceRow.id, ImageRow.sha256, FaceRow.box_left, FaceRow.box_top, FaceRow.box_right,
                   FaceRow.box_bottom, SourceRow.name)
            .join(ImageRow, FaceRow.image_id == ImageRow.id)
            .join(SourceRow, ImageRow.source_id == SourceRow.id)
            .where(FaceRow.id.in_(wanted[start : start + 500]))
        ).all()  # fmt: skip
        found.update((int(r[0]), _Face(r[1], Box(r[2], r[3], r[4], r[5]), r[6])) for r in rows)
    return found


def _same(a: _Face, b: _Face) -> bool:
    return a.sha256 == b.sha256 and iou(a.box, b.box) >= SAME_FACE_IOU


def _cluster(ordered: Sequence[int], faces: dict[int, _Face]) -> list[list[int]]:
    """``ordered`` split into groups of the same face of the same photo, each group and the groups
    in the order of their first member in ``ordered`` (faces no longer stored stay alone)."""
    groups: list[list[int]] = []
    of_photo: dict[str, list[list[int]]] = {}  # only faces of one photo are compared
    for face_id in ordered:
        face = faces.get(face_id)
        if face is None:
            groups.append([face_id])
            continue
        same_photo = of_photo.setdefault(face.sha256, [])
        group = next((g for g in same_photo if any(_same(face, faces[other]) for other in g)), None)
        if group is None:
            group = [face_id]
            groups.append(group)
            same_photo.append(group)
        else:
            group.append(face_id)
    return groups


def candidate_groups(
    session: Session, request_id: int, *, pending_only: bool = False
) -> list[CandidateGroup]:
    """The request's candidates grouped (see the module), best first. A group holds candidates of
    one band only. ``pending_only``: the review-band groups that still wait for a decision."""
    rows = session.scalars(
        select(RequestCandidateRow)
        .where(RequestCandidateRow.request_id == request_id)
        .order_by(RequestCandidateRow.score.desc(), RequestCandidateRow.face_id)
    ).all()
    faces = _faces(session, (r.face_id for r in rows))
    by_id = {r.face_id: r for r in rows}
    groups: list[CandidateGroup] = []
    for band in dict.fromkeys(r.band for r in rows):
        for ids in _cluster([r.face_id for r in rows if r.band == band], faces):
            first = by_id[ids[0]]
            decisions = {by_id[i].decision for i in ids}
            decision = decisions.pop() if len(decisions) == 1 else None
            groups.append(
                CandidateGroup(
                    face_id=first.face_id,
                    score=first.score,
                    band=first.band,
                    round=first.round,
                    decision=decision,
                    decided_by=first.decided_by if decision is not None else None,
                    members=tuple(Member(i, faces[i].source if i in faces else None) for i in ids),
                )
            )
    groups.sort(key=lambda g: (-g.score, g.face_id))
    if pending_only:
        groups = [g for g in groups if g.band == "review" and g.decision is None]
    return groups


def group_of(session: Session, request_id: int, face_id: int) -> CandidateGroup | None:
    """The group of the request's candidate ``face_id`` (``None`` when it is not a candidate)."""
    return next((g for g in candidate_groups(session, request_id) if face_id in g.face_ids), None)
