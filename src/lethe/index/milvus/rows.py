"""The rows of one Milvus collection, reached in batches across its hash partitions.

Every pymilvus call goes through :meth:`Rows.call`, which maps whatever the client raises to
:class:`lethe.errors.VectorIndexError` (``Milvus failed to <what>: <reason>``) and refuses calls
once the index is closed. Rows live in :data:`PARTITIONS` hash partitions ``p00``, ``p01``... by
``id % PARTITIONS``; inserts, look-ups and deletes are sent :data:`BATCH` rows at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from lethe.errors import VectorIndexError

PARTITIONS = 16
#: Rows per insert, query or delete call (well under gRPC's 64 MiB message limit).
BATCH = 10_000


class Rows:
    """Batched, partition-aware row access to ``collection`` through ``client`` (a
    ``pymilvus.MilvusClient``). ``lite``: milvus-lite, which lists ids with one query (no result
    cap, no query iterators)."""

    def __init__(self, client: Any, collection: str, *, lite: bool) -> None:
        self.client: Any = client
        self.collection = collection
        self.lite = lite

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, a method of the client, with its errors mapped."""
        if self.client is None:
            raise VectorIndexError("the Milvus index is closed")
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise VectorIndexError(f"Milvus failed to {what}: {exc}") from exc

    def insert(
        self, ids: npt.NDArray[np.int64], vecs: npt.NDArray[np.float32], srcs: npt.NDArray[np.int64]
    ) -> None:
        """Insert rows, each into the partition of its id."""
        for part, rows in by_partition(np.arange(ids.size), key=ids):
            for chunk in chunks(rows):
                data = [
                    {"id": int(ids[r]), "vector": vecs[r], "source_id": int(srcs[r])} for r in chunk.tolist()
                ]
                self.call(
                    "insert into the index", self.client.insert, self.collection, data, partition_name=part
                )

    def present(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Which of ``ids`` are stored (sorted)."""
        found: list[int] = []
        for chunk in chunks(ids):
            rows = self.call(
                "look up ids",
                self.client.query,
                self.collection,
                filter=f"id in {chunk.tolist()}",
                output_fields=["id"],
            )
            found.extend(int(r["id"]) for r in rows)
        return np.unique(np.asarray(found, dtype=np.int64))

    def count(self, expr: str) -> int:
        """Rows matching the filter ``expr`` (all rows for ``""``)."""
        rows = self.call(
            "count rows", self.client.query, self.collection, filter=expr, output_fields=["count(*)"]
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def iter_ids(self, partition: str | None = None) -> Iterator[npt.NDArray[np.int64]]:
        """The stored ids (of one partition), in batches, unsorted."""
        kwargs: dict[str, Any] = {"partition_names": [partition]} if partition else {}
        if self.lite:  # milvus-lite has no result-size cap, and no timestamps for query iterators
            rows = self.call(
                "list ids",
                self.client.query,
                self.collection,
                filter="id >= 0",
                output_fields=["id"],
                **kwargs,
            )
            yield np.fromiter((int(r["id"]) for r in rows), dtype=np.int64, count=len(rows))
            return
        it = self.call(
            "list ids",
            self.client.query_iterator,
            self.collection,
            batch_size=BATCH,
            filter="id >= 0",
            output_fields=["id"],
            **kwargs,
        )
        try:
            while batch := self.call("list ids", it.next):
                yield np.fromiter((int(r["id"]) for r in batch), dtype=np.int64, count=len(batch))
        finally:
            it.close()

    def read(self, ids: npt.NDArray[np.int64], partition: str) -> list[dict[str, Any]]:
        """Whole rows (``id``, ``vector``, ``source_id``) of ``ids`` in ``partition``."""
        rows: list[dict[str, Any]] = []
        for chunk in chunks(ids):
            rows.extend(
                self.call(
                    "read a partition",
                    self.client.get,
                    self.collection,
                    ids=chunk.tolist(),
                    output_fields=["id", "vector", "source_id"],
                    partition_names=[partition],
                )
            )
        return rows

    def delete(self, ids: npt.NDArray[np.int64]) -> None:
        """Send the (soft) deletes of ``ids``, each to its partition."""
        for part, part_ids in by_partition(ids):
            for chunk in chunks(part_ids):
                self.call(
                    "delete from the index",
                    self.client.delete,
                    self.collection,
                    ids=chunk.tolist(),
                    partition_name=part,
                )

    def flush(self) -> None:
        """Seal what was written so far (deletes included)."""
        self.call("flush the index", self.client.flush, self.collection)


def partition_names() -> list[str]:
    return [f"p{p:02d}" for p in range(PARTITIONS)]


def by_partition(
    values: npt.NDArray[np.int64], *, key: npt.NDArray[np.int64] | None = None
) -> Iterator[tuple[str, npt.NDArray[np.int64]]]:
    """Group ``values`` by the hash partition of ``key`` (default: the values, which are ids)."""
    of = (values if key is None else key) % PARTITIONS
    for part in np.unique(of).tolist():
        yield f"p{part:02d}", values[of == part]


def chunks(values: npt.NDArray[np.int64]) -> Iterator[npt.NDArray[np.int64]]:
    for start in range(0, values.size, BATCH):
        yield values[start : start + BATCH]


def filter_expr(
    allow: npt.NDArray[np.int64] | None,
    deny: npt.NDArray[np.int64] | None,
    deny_sources: npt.NDArray[np.int64] | None,
) -> str:
    """The Milvus filter expression of one search's ``allow``/``deny``/``deny_sources``."""
    parts = []
    if allow is not None:
        parts.append(f"id in {allow.tolist()}")
    if deny is not None and deny.size:
        parts.append(f"id not in {deny.tolist()}")
    if deny_sources is not None and deny_sources.size:
        parts.append(f"source_id not in {deny_sources.tolist()}")
    return " and ".join(parts)
