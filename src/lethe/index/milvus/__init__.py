"""Milvus backend of :class:`lethe.index.base.VectorIndex` (pymilvus; milvus-lite for a local file).

One collection (default ``lethe_faces``): ``id`` INT64 primary key (the catalog's face id), ``vector``
FLOAT_VECTOR(dim) searched with inner product (= cosine on L2-normalised rows) and ``source_id``
INT64 (``-1``: none), so restricted sources are filtered inside the search (``source_id not in
[...]``). Rows are spread over :data:`~lethe.index.milvus.rows.PARTITIONS` hash partitions ``p00``,
``p01``... by ``id % PARTITIONS``. Structure by size, by the policy shared with the FAISS backend
(:mod:`lethe.index._sizing`): ``FLAT`` (exact) up to ``exact_max`` vectors, ``IVF_SQ8`` (8-bit
codes, nlist for the rows of one segment, a segment holding part of one partition) above. Reads are
made at ``Strong`` consistency: a search never misses a committed delete.

The URI is a Milvus server (``http://host:19530``) or a local path ending in ``.db`` for the
embedded milvus-lite, which allows one process at a time on a folder (its own file lock).

**Physical purge.** Milvus deletes are soft: :meth:`MilvusIndex.save` purges what was removed since
the last save (compaction on a server, partition rewrite on milvus-lite) and verifies it (none of
those ids can be read back). The ids awaiting a purge are written to ``milvus.meta.json`` (beside
the lite database) before the delete is sent, so a crash between ``remove`` and ``save`` is purged
when the index is next opened.

By lifecycle:

* :mod:`~lethe.index.milvus.index` -- :class:`MilvusIndex`, the protocol's methods, schema,
  structure and metadata file;
* :mod:`~lethe.index.milvus.rows` -- batched row access across the hash partitions, error mapping;
* :mod:`~lethe.index.milvus.purge` -- the purge strategies behind one ``purge(ids)``;
* :mod:`~lethe.index.milvus.lite` -- the milvus-lite server reference count, owner-only files,
  repair of a collection folder a crash left behind.

pymilvus is imported when an index is opened; without it the error names the ``lethe[milvus]``
extra.
"""

from lethe.index.milvus.index import DEFAULT_COLLECTION, META_FILE, MilvusIndex
from lethe.index.milvus.lite import is_local

__all__ = ["DEFAULT_COLLECTION", "META_FILE", "MilvusIndex", "is_local"]
