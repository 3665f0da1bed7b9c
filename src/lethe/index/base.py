"""The contract every vector-index backend of Lethe fulfils.

Vectors are L2-normalised float32 rows (see :mod:`lethe.types`), so inner product is cosine
similarity. Ids are stable, caller-chosen, unique non-negative int64 values (the catalog's face ids):
they never drift when other entries are removed. Each vector may carry the id of the source it came
from, so a search can leave out whole sources (restricted ones) inside the index, without a list of
their faces. Every failure is raised as :class:`lethe.errors.VectorIndexError`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

#: One search hit: (face id, cosine similarity).
Hit = tuple[int, float]


@runtime_checkable
class VectorIndex(Protocol):
    """A persistent nearest-neighbour index of face templates keyed by stable int64 ids."""

    dim: int

    @property
    def generation(self) -> str | None:
        """An identifier of the saved state this object searches: a new one at every save (and a
        reload picks up another process's); None before the first save. A search's audit entry
        records it (the reference database searched, EU AI Act Art. 12(3)(a))."""
        ...

    def __len__(self) -> int:
        """Number of vectors stored."""
        ...

    def add(
        self,
        ids: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        *,
        sources: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Add ``vectors`` (n, dim) under ``ids`` (n,); an id already present is refused.

        ``sources`` (n,) are the non-negative source ids of the vectors (``None``: no source, so
        ``deny_sources`` never hides them)."""
        ...

    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        """Remove ``ids``; return how many were present. Unknown ids are ignored."""
        ...

    def search(
        self,
        vectors: npt.NDArray[np.float32],
        k: int,
        *,
        allow: npt.NDArray[np.int64] | None = None,
        deny: npt.NDArray[np.int64] | None = None,
        deny_sources: npt.NDArray[np.int64] | None = None,
    ) -> list[list[Hit]]:
        """Per query row, up to ``k`` hits best first.

        ``allow`` restricts results to these ids; ``deny`` ids are never returned, nor are vectors
        added with a source id in ``deny_sources``. An empty index gives one empty list per query.
        """
        ...

    def ids(self) -> npt.NDArray[np.int64]:
        """All stored ids, int64, sorted ascending."""
        ...

    def save(self) -> None:
        """Persist durably. Vectors removed since the last save are then physically gone from the
        backend's storage (no soft deletes left behind): erasure depends on it."""
        ...

    def rebuild(
        self,
        ids: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        *,
        sources: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Replace all content (the backend picks a structure by size) and save."""
        ...

    def reload_if_changed(self) -> bool:
        """Pick up what another process saved since this object last loaded or saved."""
        ...

    def stats(self) -> dict[str, object]:
        """At least ``backend``, ``kind``, ``count``, ``file_bytes`` and ``unsourced`` (vectors
        added without a source id, which a restriction cannot filter inside the search; Lethe's own
        writes always give one)."""
        ...

    def remove_stale_temps(self) -> int:
        """Delete temporary files a process killed while saving left behind; returns how many. The
        engine calls it on open, only while no other process writes."""
        ...

    def close(self) -> None:
        """Release connections and locks (the object is not used afterwards)."""
        ...
