"""Argument checks shared by every vector-index backend: one set of rules, one set of messages."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from lethe.errors import VectorIndexError

NORM_TOLERANCE = 1e-3
#: Source id stored for a vector added without one (never matched by ``deny_sources``).
NO_SOURCE = -1


def check_ids(ids: Any, *, unique: bool = True) -> npt.NDArray[np.int64]:
    """1-D, integer, non-negative (and, by default, unique) ids as a contiguous int64 array."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise VectorIndexError(f"ids must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise VectorIndexError(f"ids must be integers, got {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.int64)
    if out.size and int(out.min()) < 0:
        raise VectorIndexError("ids must be non-negative int64")
    if unique and np.unique(out).size != out.size:
        raise VectorIndexError("ids must be unique")
    return out


def check_vectors(vectors: Any, dim: int) -> npt.NDArray[np.float32]:
    """Finite, L2-normalised float rows of width ``dim`` (one row may be given 1-D)."""
    arr = np.asarray(vectors)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise VectorIndexError(f"vectors must have shape (n, {dim}), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.floating):
        raise VectorIndexError(f"vectors must be float32, got {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise VectorIndexError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(out, axis=1)
    if out.size and np.abs(norms - 1.0).max() > NORM_TOLERANCE:
        raise VectorIndexError("vectors must be L2-normalised (see lethe.types.l2_normalise)")
    return out


def check_sources(sources: Any, n: int) -> npt.NDArray[np.int64]:
    """One non-negative source id per vector; ``None`` gives :data:`NO_SOURCE` for all ``n``."""
    if sources is None:
        return np.full(n, NO_SOURCE, dtype=np.int64)
    arr = check_ids(sources, unique=False)
    if arr.size != n:
        raise VectorIndexError(f"{arr.size} source ids for {n} vectors")
    return arr


def check_batch(
    ids: Any, vectors: Any, sources: Any, dim: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Ids, vectors and source ids of one ``add``/``rebuild`` call, checked together."""
    ids_, vecs = check_ids(ids), check_vectors(vectors, dim)
    if ids_.size != vecs.shape[0]:
        raise VectorIndexError(f"{ids_.size} ids for {vecs.shape[0]} vectors")
    return ids_, vecs, check_sources(sources, ids_.size)


def check_search(
    vectors: Any, k: int, dim: int, allow: Any, deny: Any, deny_sources: Any
) -> tuple[
    npt.NDArray[np.float32],
    npt.NDArray[np.int64] | None,
    npt.NDArray[np.int64] | None,
    npt.NDArray[np.int64] | None,
]:
    """Queries and the sorted, de-duplicated ``allow``/``deny``/``deny_sources`` of one search."""
    queries = check_vectors(vectors, dim)
    if k < 1:
        raise VectorIndexError(f"k must be >= 1, got {k}")

    def ids_or_none(value: Any) -> npt.NDArray[np.int64] | None:
        return None if value is None else np.unique(check_ids(value, unique=False))

    return queries, ids_or_none(allow), ids_or_none(deny), ids_or_none(deny_sources)
