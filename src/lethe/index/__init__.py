"""Vector index of face templates: the backend contract and its FAISS and Milvus implementations.

:func:`index_for` is the one factory: it opens the backend the settings choose. Both backends follow
one sizing policy (:mod:`lethe.index._sizing`) and keep a JSON sidecar beside their data
(:mod:`lethe.index._sidecar`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lethe.index._sealed import IndexSealer
from lethe.index.base import Hit, VectorIndex
from lethe.index.faiss_index import FaissIndex, set_threads
from lethe.index.milvus import MilvusIndex

if TYPE_CHECKING:
    from lethe.config import Settings

__all__ = ["FaissIndex", "Hit", "IndexSealer", "MilvusIndex", "VectorIndex", "index_for", "set_threads"]


def index_for(settings: Settings, directory: Path, *, sealer: IndexSealer | None = None) -> VectorIndex:
    """The index the settings choose (``LETHE_INDEX``); ``directory`` holds its local files, sealed
    by ``sealer`` (FAISS; a Milvus server keeps its own files, see docs/operations.md)."""
    if settings.index == "milvus":
        return MilvusIndex(
            directory,
            uri=settings.milvus_uri or None,
            collection=settings.milvus_collection,
            token=settings.milvus_token,
            kind=settings.index_kind,
            exact_max=settings.index_exact_max_faces,
            compaction_timeout_s=settings.milvus_compaction_timeout_s,
        )
    return FaissIndex(
        directory, kind=settings.index_kind, exact_max=settings.index_exact_max_faces, sealer=sealer
    )
