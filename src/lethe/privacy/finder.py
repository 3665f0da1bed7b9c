"""Finding every face of one person from the photos they supplied (for access, erasure, objection).

Each face found gets a *band*:

* ``auto`` — similarity to a seed at or above the automatic threshold **and** at least the review
  threshold to one of the requester's own photos (the anchor: expansion may not drift to a look-alike
  of a look-alike);
* ``review`` — at or above the review threshold, below automatic: a person decides.

Query expansion: the templates of automatic (and reviewer-confirmed) faces become extra seeds, and the
search repeats until a round finds no new automatic face. Restricted sources are searched too: a
person's rights reach data that is hidden from ordinary search.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from lethe.index import VectorIndex

MAX_ROUNDS = 6
FIRST_K = 256


@dataclass(frozen=True, slots=True)
class Candidate:
    face_id: int
    score: float  # best similarity to any seed
    anchor: float  # best similarity to the requester's own photos
    band: str  # "automatic" | "review" (the names search uses too)
    round: int


def _neighbours(index: VectorIndex, seeds: np.ndarray, floor: float) -> dict[int, float]:
    """Every face with similarity >= floor to any seed (growing k until the tail drops below)."""
    total = len(index)
    best: dict[int, float] = {}
    if total == 0 or len(seeds) == 0:
        return best
    k = min(FIRST_K, total)
    while True:
        rows = index.search(seeds, k)
        tail_above = False
        for hits in rows:
            for face_id, score in hits:
                if score >= floor and score > best.get(face_id, -2.0):
                    best[face_id] = score
            if len(hits) == k and hits[-1][1] >= floor:
                tail_above = True
        if not tail_above or k >= total:
            return best
        k = min(total, k * 4)


def find_person(
    index: VectorIndex,
    probes: np.ndarray,
    templates: Callable[[Iterable[int]], dict[int, np.ndarray]],
    *,
    auto_threshold: float,
    review_threshold: float,
    confirmed: Iterable[int] = (),
    rejected: Iterable[int] = (),
) -> dict[int, Candidate]:
    """All candidates for the person whose photos gave ``probes`` (unit rows)."""
    rejected_set = {int(f) for f in rejected}
    anchors = _neighbours(index, probes, review_threshold)
    found: dict[int, Candidate] = {}
    seeds_used: set[int] = set()
    next_seeds = list(dict.fromkeys(int(f) for f in confirmed))
    scores = dict(anchors)
    for round_no in range(MAX_ROUNDS):
        for face_id, score in scores.items():
            if face_id in rejected_set:
                continue
            anchor = anchors.get(face_id, -1.0)
            band = "automatic" if score >= auto_threshold and anchor >= review_threshold else "review"
            previous = found.get(face_id)
            if (
                previous is None
                or (band == "automatic" and previous.band == "review")
                or score > previous.score
            ):
                keep_round = previous.round if previous and previous.band == band else round_no
                best = max(score, previous.score) if previous else score
                found[face_id] = Candidate(face_id, best, anchor, band, keep_round)
        new_seeds = [f for f, c in found.items() if c.band == "automatic" and f not in seeds_used]
        new_seeds += [f for f in next_seeds if f not in seeds_used]
        next_seeds = []
        if not new_seeds:
            break
        seeds_used.update(new_seeds)
        vectors = templates(new_seeds)
        matrix = np.vstack([vectors[f] for f in new_seeds if f in vectors]) if vectors else np.zeros((0, 0))
        if matrix.size == 0:
            break
        scores = _neighbours(index, matrix.astype(np.float32), auto_threshold)
        # a seed finds itself at 1.0: that says nothing about whose face it is
        for face_id in new_seeds:
            scores.pop(face_id, None)
        # a face reached only through expansion still needs its anchor to the requester's photos
        for face_id in scores:
            if face_id not in anchors:
                anchors[face_id] = -1.0
    return found
