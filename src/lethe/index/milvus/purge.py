"""Physical purge of deleted rows: Milvus deletes are soft, erasure needs the bytes gone.

A deleted row stays in its segment files until they are rewritten. One interface,
:meth:`Purge.purge`, with one strategy per engine:

* :class:`ServerCompaction` (a Milvus server): L0 compaction (2.4+: applies the deletes to the
  sealed segments), then mix compaction (rewrites the segments without the deleted rows), waiting
  for each to complete. The files of the replaced segments leave object storage when Milvus's
  garbage collector runs (``dataCoord.gc.dropTolerance``; see docs/operations.md for the settings
  that make it prompt).
* :class:`LitePartitionRewrite` (milvus-lite 3.x): manual compaction is a no-op there
  (``ManualCompaction`` returns at once) and its automatic size-tiered compaction only merges once
  four files share a size bucket, so deleted rows keep their bytes in the partition's parquet data
  file and its index file. Each partition that lost rows is rewritten instead: its surviving rows
  are read, the partition is dropped (milvus-lite deletes its folder) and re-created with them.

The index sends the deletes first and checks afterwards that none of the ids can be read back.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Protocol

import numpy as np
import numpy.typing as npt

from lethe.errors import VectorIndexError
from lethe.index.milvus.rows import Rows, by_partition

log = logging.getLogger(__name__)


class Purge(Protocol):
    """How one engine makes deleted rows physically gone."""

    #: Shown in the index stats (``purge``).
    name: str

    def purge(self, ids: npt.NDArray[np.int64]) -> None:
        """Rewrite storage so the rows of ``ids`` (deleted already) leave it."""
        ...


class LitePartitionRewrite:
    """milvus-lite: copy out each affected partition's surviving rows, drop it (its folder goes),
    re-create it with them."""

    name = "partition rewrite"

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def purge(self, ids: npt.NDArray[np.int64]) -> None:
        for part, _ in by_partition(ids):
            self._rewrite(part)

    def _rewrite(self, part: str) -> None:
        rows, client, collection = self.rows, self.rows.client, self.rows.collection
        ids = np.sort(np.concatenate([np.empty(0, np.int64), *rows.iter_ids(part)]))
        kept = rows.read(ids, part)
        if len(kept) != ids.size:
            raise VectorIndexError(f"read {len(kept)} of the {ids.size} rows of partition {part}")
        rows.call("drop a partition", client.drop_partition, collection, part)
        rows.call("create a partition", client.create_partition, collection, part)
        if kept:
            vecs = np.asarray([r["vector"] for r in kept], dtype=np.float32)
            srcs = np.asarray([r["source_id"] for r in kept], dtype=np.int64)
            rows.insert(np.asarray([r["id"] for r in kept], dtype=np.int64), vecs, srcs)
        rows.flush()


class ServerCompaction:
    """A Milvus server: L0 then mix compaction of the collection, each awaited up to ``timeout_s``."""

    name = "compaction"

    def __init__(self, rows: Rows, timeout_s: float) -> None:
        self.rows = rows
        self.timeout_s = float(timeout_s)

    def purge(self, ids: npt.NDArray[np.int64]) -> None:
        rows, client = self.rows, self.rows.client
        for level0 in (True, False):
            if level0 and not has_level0(rows.call("ask the version", client.get_server_version)):
                continue
            job = int(rows.call("start compaction", client.compact, rows.collection, is_l0=level0))
            t0 = time.monotonic()
            while (state := rows.call("poll compaction", client.get_compaction_state, job)) != "Completed":
                if time.monotonic() - t0 > self.timeout_s:
                    raise VectorIndexError(
                        f"compaction {job} still {state} after {self.timeout_s:.0f} s; removed "
                        "vectors may remain on disk until a later save completes it"
                    )
                time.sleep(0.5)
            kind = "L0" if level0 else "mix"
            log.info("compaction %d (%s) completed in %.1f s", job, kind, time.monotonic() - t0)


def has_level0(version: str) -> bool:
    """Whether a server of ``version`` (``v2.4.5``, ``2.6.0-rc``...) keeps deletes in L0 segments."""
    numbers = [int(x) for x in re.findall(r"\d+", version)[:2]]
    return len(numbers) < 2 or tuple(numbers) >= (2, 4)
