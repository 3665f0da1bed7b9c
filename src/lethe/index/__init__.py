"""Vector index of face templates: the backend contract and the FAISS implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from lethe.index.base import Hit, VectorIndex
from lethe.index.faiss_index import FaissIndex, set_threads
from lethe.types import EMBEDDING_DIM

__all__ = ["FaissIndex", "Hit", "VectorIndex", "open_index", "set_threads"]


def open_index(
    directory: Path,
    dim: int = EMBEDDING_DIM,
    kind: Literal["auto", "flat", "ivf"] = "auto",
    exact_max: int = 100_000,
) -> VectorIndex:
    """Open (or start empty) the vector index stored in ``directory``."""
    return FaissIndex(Path(directory), dim, kind=kind, exact_max=exact_max)
