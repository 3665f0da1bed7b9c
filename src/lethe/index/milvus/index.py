"""The Milvus backend's :class:`lethe.index.base.VectorIndex` methods: :class:`MilvusIndex`.

Schema, structure and search parameters are made here; row access in batches lives in
:mod:`~lethe.index.milvus.rows`, the physical purge in :mod:`~lethe.index.milvus.purge`, and the
milvus-lite server and files in :mod:`~lethe.index.milvus.lite`. The package docstring
(:mod:`lethe.index.milvus`) describes the collection and the purge.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import lethe.index._sizing as sizing
from lethe.errors import ConfigError, VectorIndexError
from lethe.index._checks import NO_SOURCE, check_batch, check_ids, check_search
from lethe.index._sidecar import Stamp, disk_stamp, read_meta, write_meta
from lethe.index.base import Hit
from lethe.index.milvus.lite import LiteFolder, is_local
from lethe.index.milvus.purge import LitePartitionRewrite, Purge, ServerCompaction
from lethe.index.milvus.rows import PARTITIONS, Rows, filter_expr, partition_names
from lethe.storage import remove_stale_temps
from lethe.types import EMBEDDING_DIM

log = logging.getLogger(__name__)

META_FILE = "milvus.meta.json"
LITE_FILE = "milvus.db"
DEFAULT_COLLECTION = "lethe_faces"
#: Milvus refuses a larger ``limit`` (``topK``) per search.
MAX_TOPK = 16_384
#: Most rows of one sealed segment, for nlist (milvus-lite caps compacted segments at 100k rows).
SEGMENT_ROWS = 100_000


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise ConfigError(
            "the Milvus index needs pymilvus and milvus-lite: pip install 'lethe[milvus]'"
        ) from exc
    return pymilvus


def segment_rows(n: int) -> int:
    """Rows of the segments an IVF index is built on, for ``n`` rows in all (spread over the hash
    partitions, a segment holding part of one partition)."""
    return max(1, min(math.ceil(n / PARTITIONS), SEGMENT_ROWS))


class MilvusIndex:
    """Persistent Milvus collection of face vectors; the metadata file lives in ``directory``."""

    def __init__(
        self,
        directory: Path,
        dim: int = EMBEDDING_DIM,
        *,
        uri: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        token: str | None = None,
        kind: sizing.Mode = "auto",
        exact_max: int = 100_000,
        nprobe: int | None = None,
        compaction_timeout_s: float = 600.0,
    ) -> None:
        self._mode = sizing.check_mode(kind)
        self.directory = Path(directory)
        self.dim = int(dim)
        self.uri = str(uri) if uri else str(self.directory / LITE_FILE)
        self.collection = collection
        self.exact_max = int(exact_max)
        self.compaction_timeout_s = float(compaction_timeout_s)
        self._nprobe_override = nprobe
        self._lock = threading.RLock()
        self._pm = _pymilvus()
        self._lite = LiteFolder(self.uri) if is_local(self.uri) else None
        self._rows = Rows(None, self.collection, lite=self.lite)
        self._rows.client = self._connect(token)
        self._purger: Purge = (
            LitePartitionRewrite(self._rows)
            if self.lite
            else ServerCompaction(self._rows, compaction_timeout_s)
        )
        try:
            self._meta = self._read_meta()
            self._stamp = self._disk_stamp()
            exists = self._call("check the collection", self._client.has_collection, self.collection)
            if exists and not self._complete():
                # A process killed while creating it (a rebuild drops and creates the collection):
                # start empty; the engine refills it from the catalog.
                log.warning("the index collection was left half created; creating it again")
                self._call("drop the collection", self._client.drop_collection, self.collection)
                exists = False
            if not exists:
                self._create(sizing.choose_structure(self._mode, 0, self.exact_max), 0)
                self._write_meta()
            # a restarted server (or a reopened milvus-lite folder) starts with collections released
            self._call("load the collection", self._client.load_collection, self.collection)
            self._describe()
            if self._meta.get("pending_ids"):
                log.warning("purging %d vectors removed before an interrupted save", len(self._pending()))
                self._purge()
                self._write_meta()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- public API
    def __len__(self) -> int:
        return self._rows.count("")

    @property
    def kind(self) -> sizing.Structure:
        """The structure in use now."""
        return "ivf" if self._meta.get("kind") == "ivf" else "flat"

    @property
    def generation(self) -> str | None:
        """The identifier of the last save (a new one per save)."""
        generation = self._meta.get("generation")
        return str(generation) if generation else None

    @property
    def lite(self) -> bool:
        """Whether this is an embedded milvus-lite database (a local folder)."""
        return self._lite is not None

    def add(
        self,
        ids: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        *,
        sources: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Add ``vectors`` under ``ids``; ids already stored are refused (nothing is added)."""
        ids_, vecs, srcs = check_batch(ids, vectors, sources, self.dim)
        if ids_.size == 0:
            return
        with self._lock:
            clash = self._rows.present(ids_)
            if clash.size:
                raise VectorIndexError(f"ids already in the index: {clash[:10].tolist()}")
            self._rows.insert(ids_, vecs, srcs)

    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        """Delete ``ids``; their bytes are purged by the next :meth:`save`. Returns how many were present."""
        ids_ = np.unique(check_ids(ids, unique=False))
        with self._lock:
            present = self._rows.present(ids_)
            if present.size == 0:
                return 0
            self._meta["pending_ids"] = sorted(set(self._pending().tolist()) | set(present.tolist()))
            self._write_meta(new_generation=False)  # durable before the delete: a crash still purges
            self._rows.delete(present)
            return int(present.size)

    def search(
        self,
        vectors: npt.NDArray[np.float32],
        k: int,
        *,
        allow: npt.NDArray[np.int64] | None = None,
        deny: npt.NDArray[np.int64] | None = None,
        deny_sources: npt.NDArray[np.int64] | None = None,
    ) -> list[list[Hit]]:
        """Per query row, up to ``k`` (id, cosine) best first, honouring ``allow``, ``deny`` and
        ``deny_sources`` inside Milvus's search (a filter expression). ``k`` is capped at
        :data:`MAX_TOPK`."""
        queries, allow_, deny_, sources_ = check_search(vectors, k, self.dim, allow, deny, deny_sources)
        if queries.shape[0] == 0:
            return []
        if allow_ is not None and allow_.size == 0:
            return [[] for _ in range(queries.shape[0])]
        limit = min(int(k), MAX_TOPK, MAX_TOPK if allow_ is None else int(allow_.size))
        expr = filter_expr(allow_, deny_, sources_)
        params: dict[str, Any] = {}
        with self._lock:
            if self.kind == "ivf":
                params["nprobe"] = self._probes(allow_, expr)
            rows = self._call(
                "search the index",
                self._client.search,
                self.collection,
                data=queries,
                anns_field="vector",
                limit=limit,
                filter=expr,
                output_fields=["id"],
                search_params={"metric_type": "IP", "params": params},
            )
        return [[(int(hit["id"]), float(hit["distance"])) for hit in row] for row in rows]

    def ids(self) -> npt.NDArray[np.int64]:
        """All stored ids, sorted."""
        found = list(self._rows.iter_ids())
        return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def save(self) -> None:
        """Flush, purge (and verify) what was removed since the last save, record a new generation."""
        with self._lock:
            self._rows.flush()
            self._purge()
            self._write_meta()

    def rebuild(
        self,
        ids: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        *,
        sources: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Drop the collection and create it again with ``ids`` (FLAT or IVF_SQ8 by size), then save."""
        ids_, vecs, srcs = check_batch(ids, vectors, sources, self.dim)
        with self._lock:
            self._call("drop the collection", self._client.drop_collection, self.collection)
            self._create(sizing.choose_structure(self._mode, int(ids_.size), self.exact_max), int(ids_.size))
            self._rows.insert(ids_, vecs, srcs)
            self._rows.flush()
            self._meta["pending_ids"] = []  # the old collection and its files are gone
            self._write_meta()

    def reload_if_changed(self) -> bool:
        """Pick up a save by another handle or process (new structure, search parameters)."""
        with self._lock:
            stamp = self._disk_stamp()
            if stamp == self._stamp:
                return False
            self._meta = self._read_meta()
            self._stamp = stamp
            self._describe()
            return True

    def stats(self) -> dict[str, object]:
        """Backend, structure, count, bytes on local disk (milvus-lite), search parameters."""
        with self._lock:
            out: dict[str, object] = {
                "backend": "milvus",
                "server": "milvus-lite" if self.lite else "milvus",
                "collection": self.collection,
                "kind": self.kind,
                "index_type": "IVF_SQ8" if self.kind == "ivf" else "FLAT",
                "count": len(self),
                "dim": self.dim,
                "file_bytes": self._lite.file_bytes() if self._lite else 0,
                "unsourced": self._rows.count(f"source_id == {NO_SOURCE}"),
                "partitions": PARTITIONS,
                "purge": self._purger.name,
            }
            if self.kind == "ivf":
                out["nlist"] = self._meta.get("nlist")
                out["nprobe"] = self._nprobe()
            return out

    def remove_stale_temps(self) -> int:
        """Delete temporary metadata files a killed save left behind."""
        return remove_stale_temps(self.directory, [META_FILE]) if self.directory.is_dir() else 0

    def close(self) -> None:
        """Close the connection; the last handle on a milvus-lite folder stops its server."""
        client, self._rows.client = self._rows.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        lite, self._lite = self._lite, None
        if lite is not None:
            lite.release()

    # ----------------------------------------------------------------- internals
    @property
    def _client(self) -> Any:
        """The pymilvus client (``None`` once closed)."""
        return self._rows.client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self._rows.call(what, fn, *args, **kwargs)

    def _connect(self, token: str | None) -> Any:
        try:
            return self._pm.MilvusClient(uri=self.uri, token=token or "")
        except Exception as exc:
            self.close()
            lite = is_local(self.uri)
            hint = " (milvus-lite admits one process per folder: is another Lethe using it?)" if lite else ""
            raise VectorIndexError(
                f"cannot open the Milvus index at {_safe_uri(self.uri)}: {exc}{hint}"
            ) from exc

    def _create(self, kind: sizing.Structure, n: int) -> None:
        pm, client = self._pm, self._client
        if self._lite is not None:
            self._lite.remove_stale_collection(self.collection)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", pm.DataType.INT64, is_primary=True)
        schema.add_field("vector", pm.DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("source_id", pm.DataType.INT64)
        index_params = client.prepare_index_params()
        self._meta.update(kind=kind, nlist=None, nprobe=None)
        if kind == "flat":
            index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        else:
            nlist = sizing.nlist_for(segment_rows(n))  # an IVF index is built per segment
            self._meta.update(
                nlist=nlist, nprobe=sizing.default_nprobe(nlist, n, override=self._nprobe_override)
            )
            # Milvus reads build parameters as top-level keys, milvus-lite only from "params": give both.
            build = {"nlist": nlist, "params": {"nlist": nlist}}
            index_params.add_index(field_name="vector", index_type="IVF_SQ8", metric_type="IP", params=build)
        self._call(
            "create the collection",
            client.create_collection,
            self.collection,
            schema=schema,
            consistency_level="Strong",
        )
        # sync=False: the client would wait on AllocTimestamp, which milvus-lite does not implement;
        # an index is built per sealed segment anyway, and segments without one are searched exactly.
        self._call("create the index", client.create_index, self.collection, index_params, sync=False)
        for part in partition_names():
            self._call("create a partition", client.create_partition, self.collection, part)
        self._call("load the collection", client.load_collection, self.collection)

    def _complete(self) -> bool:
        """Whether the collection has its vector index and every partition (``_create`` made them
        after the collection itself)."""
        info = self._call("describe the index", self._client.describe_index, self.collection, "vector")
        if not info:
            return False
        partitions = self._call("list the partitions", self._client.list_partitions, self.collection)
        return set(partition_names()) <= set(partitions)

    def _describe(self) -> None:
        """Read the structure from the server (another process may have rebuilt it)."""
        info = self._call("describe the index", self._client.describe_index, self.collection, "vector")
        kind = "ivf" if str(info.get("index_type", "")).upper() == "IVF_SQ8" else "flat"
        if kind != self._meta.get("kind"):
            self._meta["kind"] = kind
            if kind == "ivf":
                nlist = int(info.get("nlist") or json.loads(info.get("params") or "{}").get("nlist", 1))
                self._meta.update(nlist=nlist, nprobe=sizing.default_nprobe(nlist, len(self)))

    def _nprobe(self) -> int:
        nlist = int(self._meta.get("nlist") or 1)
        return min(nlist, int(self._nprobe_override or self._meta.get("nprobe") or 16))

    def _probes(self, allow: npt.NDArray[np.int64] | None, expr: str) -> int:
        """Widen nprobe when a filter leaves few eligible rows (IVF probes fewer of them)."""
        base = self._nprobe()
        if not expr:
            return base
        n = max(1, len(self))
        eligible = self._rows.count(expr) if allow is None else min(int(allow.size), n)
        return sizing.widen_nprobe(base, int(self._meta.get("nlist") or base), n, eligible)

    def _pending(self) -> npt.NDArray[np.int64]:
        return np.asarray(self._meta.get("pending_ids") or [], dtype=np.int64)

    def _purge(self) -> None:
        """Make the vectors removed since the last purge physically gone, then check none is left."""
        pending = self._pending()
        if pending.size == 0:
            return
        # A process killed inside remove() noted every id but sent only some of the deletes: send
        # the rest first, or rewriting a partition would carry the undeleted vectors over.
        rows = self._rows
        rows.delete(rows.present(pending))
        self._purger.purge(pending)
        left = rows.present(pending)
        if left.size:
            raise VectorIndexError(f"{left.size} removed vectors are still stored after the purge")
        self._meta["pending_ids"] = []

    # ---------------------------------------------------------------- metadata file
    def _read_meta(self) -> dict[str, Any]:
        return read_meta(self.directory / META_FILE) or {}

    def _write_meta(self, *, new_generation: bool = True) -> None:
        if new_generation:
            self._meta["generation"] = uuid.uuid4().hex
        self._meta.update(dim=self.dim, collection=self.collection)
        write_meta(self.directory / META_FILE, self._meta)
        if self._lite is not None:
            try:
                self._lite.owner_only()
            except OSError as exc:
                raise VectorIndexError(f"writing {self.directory / META_FILE} failed: {exc}") from exc
        self._stamp = self._disk_stamp()

    def _disk_stamp(self) -> Stamp | None:
        return disk_stamp(self.directory / META_FILE)


def _safe_uri(uri: str) -> str:
    """The URI without credentials (``user:password@``), for messages and logs."""
    scheme, sep, rest = uri.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else uri
