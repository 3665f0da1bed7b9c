"""How big an index structure is, one policy for every backend: flat or IVF, nlist, nprobe.

* **Structure** (:func:`choose_structure`): exact ``flat`` up to ``exact_max`` vectors, ``ivf``
  above (``kind="auto"``); ``kind="flat"``/``"ivf"`` force one.
* **nlist** (:func:`nlist_for`): about ``4 * sqrt(rows)`` lists for the rows one IVF structure is
  trained on (a whole FAISS index; one Milvus segment), but never fewer than
  :data:`MIN_POINTS_PER_LIST` training points per list.
* **nprobe** (:func:`default_nprobe`): nlist/16 lists, but no more than about
  :data:`SCAN_BUDGET_CODES` codes scanned per query over the whole gallery, and at least 16. Measured
  (docs/benchmarks.md, "ANN at scale"): at 1M faces nprobe 250 (62.5k codes) gives p50 1.75 ms and
  mated hits at parity with exact search; at 10M, nprobe 128 (101k codes) gives p50 3.3 ms, while
  nlist/16 = 790 would scan 625k. The same budget holds for a segmented backend: with ``S``
  segments of ``r`` rows, each probed for ``nprobe`` of its ``nlist`` lists, a query scans
  ``S * nprobe * r / nlist = nprobe * n / nlist`` codes, the FAISS formula with ``n`` the gallery.
* **Widening** (:func:`widen_nprobe`): a filtered search probes more lists, in proportion to the
  share of the gallery its filter leaves eligible, so it still sees about as many candidates.
"""

from __future__ import annotations

import math
from typing import Literal, cast

from lethe.errors import VectorIndexError

#: What the caller asks for: pick by size, or force one structure.
Mode = Literal["auto", "flat", "ivf"]
#: What is built.
Structure = Literal["flat", "ivf"]

#: Below this many training points per list FAISS's k-means warns and clusters poorly.
MIN_POINTS_PER_LIST = 39
#: Codes an IVF search scans by default (nprobe x list size), over the whole gallery.
SCAN_BUDGET_CODES = 100_000
#: Fewest lists a default search probes (all of them when there are fewer).
MIN_NPROBE = 16


def check_mode(kind: str) -> Mode:
    """``kind`` as a :data:`Mode`; anything else is refused."""
    if kind in ("auto", "flat", "ivf"):
        return cast(Mode, kind)
    raise VectorIndexError(f"unknown index kind {kind!r}")


def choose_structure(mode: Mode, n: int, exact_max: int) -> Structure:
    """``ivf`` when forced, or (``auto``) when ``n`` vectors are more than ``exact_max``."""
    return "ivf" if mode == "ivf" or (mode == "auto" and n > exact_max) else "flat"


def nlist_for(rows: int) -> int:
    """Inverted lists for an IVF structure trained on ``rows`` vectors (at least 1)."""
    return max(1, min(round(4 * math.sqrt(rows)), rows // MIN_POINTS_PER_LIST))


def default_nprobe(nlist: int, n: int, *, override: int | None = None) -> int:
    """Lists a search probes in IVF structures of ``nlist`` lists holding ``n`` vectors in all:
    nlist/16, at most about :data:`SCAN_BUDGET_CODES` codes, at least :data:`MIN_NPROBE`, never
    more than ``nlist``. ``override`` (a setting) replaces the rule, still capped at ``nlist``."""
    if override:
        return min(nlist, override)
    budget = round(SCAN_BUDGET_CODES * nlist / max(n, 1))
    return min(nlist, max(MIN_NPROBE, min(nlist // 16, budget)))


def widen_nprobe(base: int, nlist: int, n: int, eligible: int) -> int:
    """``base`` widened for a filter that leaves ``eligible`` of the ``n`` stored vectors, so the
    search still sees about as many candidates (capped at ``nlist``)."""
    return min(nlist, max(base, math.ceil(base * n / max(1, eligible))))
