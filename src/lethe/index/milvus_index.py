"""Milvus backend of :class:`lethe.index.base.VectorIndex` (pymilvus; milvus-lite for a local file).

One collection (default ``lethe_faces``): ``id`` INT64 primary key (the catalog's face id), ``vector``
FLOAT_VECTOR(dim) searched with inner product (= cosine on L2-normalised rows) and ``source_id``
INT64 (``-1``: none), so restricted sources are filtered inside the search (``source_id not in
[...]``). Rows are spread over :data:`PARTITIONS` hash partitions ``p00``, ``p01``... by
``id % PARTITIONS``. Structure by size, like the FAISS backend: ``FLAT`` (exact) up to
``exact_max`` vectors, ``IVF_SQ8`` (8-bit codes, ``nlist ~ 4*sqrt(rows per segment)``, a segment
holding part of one partition) above.
Reads are made at ``Strong`` consistency: a search never misses a committed delete.

The URI is a Milvus server (``http://host:19530``) or a local path ending in ``.db`` for the
embedded milvus-lite, which allows one process at a time on a folder (its own file lock).

**Physical purge.** Milvus deletes are soft: a deleted row stays in its segment files until
compaction rewrites them. :meth:`MilvusIndex.save` therefore purges what was removed since the last
save, and verifies it (none of those ids can be read back):

* a Milvus server: flush, L0 compaction (applies the deletes to the sealed segments), then mix
  compaction (rewrites the segments without the deleted rows), waiting for each to complete. The
  files of the replaced segments leave object storage when Milvus's garbage collector runs
  (``dataCoord.gc.dropTolerance``; see docs/operations.md for the settings that make it prompt).
* milvus-lite 3.x: manual compaction is a no-op there (``ManualCompaction`` returns at once) and
  its automatic size-tiered compaction only merges once four files share a size bucket, so deleted
  rows keep their bytes in the partition's parquet data file and its index file. Each partition
  that lost rows is rewritten instead: its surviving rows are read, the partition is dropped
  (milvus-lite deletes its folder) and re-created with them.

The ids awaiting a purge are written to ``milvus.meta.json`` (beside the lite database) before the
delete is sent, so a crash between ``remove`` and ``save`` is purged when the index is next opened.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from lethe.errors import ConfigError, VectorIndexError
from lethe.index._checks import NO_SOURCE, check_batch, check_ids, check_search
from lethe.index.base import Hit
from lethe.storage import DIR_MODE, FILE_MODE, atomic_write, remove_stale_temps
from lethe.types import EMBEDDING_DIM

log = logging.getLogger(__name__)

META_FILE = "milvus.meta.json"
LITE_FILE = "milvus.db"
DEFAULT_COLLECTION = "lethe_faces"
PARTITIONS = 16
#: Milvus refuses a larger ``limit`` (``topK``) per search.
MAX_TOPK = 16_384
#: Rows per insert, query or delete call (well under gRPC's 64 MiB message limit).
BATCH = 10_000
#: Most rows of one sealed segment, for nlist (milvus-lite caps compacted segments at 100k rows).
SEGMENT_ROWS = 100_000
_MIN_POINTS_PER_LIST = 39

Kind = Literal["auto", "flat", "ivf"]


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise ConfigError(
            "the Milvus index needs pymilvus and milvus-lite: pip install 'lethe[milvus]'"
        ) from exc
    return pymilvus


def is_local(uri: str) -> bool:
    """Whether ``uri`` names a milvus-lite file rather than a Milvus server."""
    return "://" not in uri and not uri.startswith("unix:")


#: milvus-lite runs one server per database folder per process; handles share it (reference count).
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()


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
        kind: Kind = "auto",
        exact_max: int = 100_000,
        nprobe: int | None = None,
        compaction_timeout_s: float = 600.0,
    ) -> None:
        if kind not in ("auto", "flat", "ivf"):
            raise VectorIndexError(f"unknown index kind {kind!r}")
        self.directory = Path(directory)
        self.dim = int(dim)
        self.uri = str(uri) if uri else str(self.directory / LITE_FILE)
        self.collection = collection
        self.exact_max = int(exact_max)
        self.compaction_timeout_s = float(compaction_timeout_s)
        self._mode: Kind = kind
        self._nprobe_override = nprobe
        self._lock = threading.RLock()
        self._lite_path: str | None = None
        self._pm = _pymilvus()
        self._client = self._connect(token)
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
                self._create(self._mode if self._mode != "auto" else "flat", 0)
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
        return self._count("")

    @property
    def kind(self) -> Literal["flat", "ivf"]:
        """The structure in use now."""
        return "ivf" if self._meta.get("kind") == "ivf" else "flat"

    @property
    def lite(self) -> bool:
        """Whether this is an embedded milvus-lite database (a local folder)."""
        return self._lite_path is not None

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
            clash = self._present(ids_)
            if clash.size:
                raise VectorIndexError(f"ids already in the index: {clash[:10].tolist()}")
            self._insert(ids_, vecs, srcs)

    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        """Delete ``ids``; their bytes are purged by the next :meth:`save`. Returns how many were present."""
        ids_ = np.unique(check_ids(ids, unique=False))
        with self._lock:
            present = self._present(ids_)
            if present.size == 0:
                return 0
            self._meta["pending_ids"] = sorted(set(self._pending().tolist()) | set(present.tolist()))
            self._write_meta(new_generation=False)  # durable before the delete: a crash still purges
            self._delete(present)
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
        expr = _filter(allow_, deny_, sources_)
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
        found = list(self._iter_ids())
        return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def save(self) -> None:
        """Flush, purge (and verify) what was removed since the last save, record a new generation."""
        with self._lock:
            self._call("flush the index", self._client.flush, self.collection)
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
        use_ivf = self._mode == "ivf" or (self._mode == "auto" and ids_.size > self.exact_max)
        with self._lock:
            self._call("drop the collection", self._client.drop_collection, self.collection)
            self._create("ivf" if use_ivf else "flat", int(ids_.size))
            self._insert(ids_, vecs, srcs)
            self._call("flush the index", self._client.flush, self.collection)
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
                "file_bytes": _tree_bytes(Path(self._lite_path)) if self._lite_path else 0,
                "unsourced": self._count(f"source_id == {NO_SOURCE}"),
                "partitions": PARTITIONS,
                "purge": "partition rewrite" if self.lite else "compaction",
            }
            if self.kind == "ivf":
                out["nlist"] = self._meta.get("nlist")
                out["nprobe"] = self._nprobe()
            return out

    def close(self) -> None:
        """Close the connection; the last handle on a milvus-lite folder stops its server."""
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        path, self._lite_path = self._lite_path, None
        if path is None:
            return
        with _LITE_LOCK:
            users = _LITE_USERS.get(path, 0) - 1
            if users > 0:
                _LITE_USERS[path] = users
                return
            _LITE_USERS.pop(path, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)
        _owner_only(Path(path))

    # ----------------------------------------------------------------- internals
    def _connect(self, token: str | None) -> Any:
        if is_local(self.uri):
            if not self.uri.endswith(".db"):
                raise ConfigError(f"a milvus-lite path must end in .db, got {self.uri}")
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = os.path.abspath(self.uri)
            with _LITE_LOCK:
                _LITE_USERS[path] = _LITE_USERS.get(path, 0) + 1
            self._lite_path = path
        try:
            return self._pm.MilvusClient(uri=self.uri, token=token or "")
        except Exception as exc:
            self.close()
            lite = is_local(self.uri)
            hint = " (milvus-lite admits one process per folder: is another Lethe using it?)" if lite else ""
            raise VectorIndexError(
                f"cannot open the Milvus index at {_safe_uri(self.uri)}: {exc}{hint}"
            ) from exc

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._client is None:
            raise VectorIndexError("the Milvus index is closed")
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise VectorIndexError(f"Milvus failed to {what}: {exc}") from exc

    def _create(self, kind: Literal["flat", "ivf"], n: int) -> None:
        pm, client = self._pm, self._client
        self._remove_stale_lite_folder()
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", pm.DataType.INT64, is_primary=True)
        schema.add_field("vector", pm.DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("source_id", pm.DataType.INT64)
        index_params = client.prepare_index_params()
        self._meta.update(kind=kind, nlist=None, nprobe=None)
        if kind == "flat":
            index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        else:
            rows = max(1, min(math.ceil(n / PARTITIONS), SEGMENT_ROWS))  # segments are per partition
            nlist = max(1, min(round(4 * math.sqrt(rows)), rows // _MIN_POINTS_PER_LIST or 1))
            self._meta.update(nlist=nlist, nprobe=min(nlist, self._nprobe_override or max(16, nlist // 16)))
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
        for part in _partition_names():
            self._call("create a partition", client.create_partition, self.collection, part)
        self._call("load the collection", client.load_collection, self.collection)

    def remove_stale_temps(self) -> int:
        """Delete temporary metadata files a killed save left behind."""
        return remove_stale_temps(self.directory, [META_FILE]) if self.directory.is_dir() else 0

    def _complete(self) -> bool:
        """Whether the collection has its vector index and every partition (``_create`` made them
        after the collection itself)."""
        info = self._call("describe the index", self._client.describe_index, self.collection, "vector")
        if not info:
            return False
        partitions = self._call("list the partitions", self._client.list_partitions, self.collection)
        return set(_partition_names()) <= set(partitions)

    def _remove_stale_lite_folder(self) -> None:
        """milvus-lite killed while dropping a collection (or creating one) leaves the collection's
        folder without its schema file: milvus-lite then says there is no such collection but
        refuses to create it (``File exists``). That folder belongs to no collection and may hold
        vectors of erased faces: delete it (the catalog rebuilds the index)."""
        if self._lite_path is None:
            return
        stale = Path(self._lite_path) / "collections" / self.collection
        if stale.is_dir():
            log.warning("removing the remains of a milvus-lite collection a crash left behind")
            shutil.rmtree(stale)

    def _describe(self) -> None:
        """Read the structure from the server (another process may have rebuilt it)."""
        info = self._call("describe the index", self._client.describe_index, self.collection, "vector")
        kind = "ivf" if str(info.get("index_type", "")).upper() == "IVF_SQ8" else "flat"
        if kind != self._meta.get("kind"):
            self._meta["kind"] = kind
            if kind == "ivf":
                nlist = int(info.get("nlist") or json.loads(info.get("params") or "{}").get("nlist", 1))
                self._meta.update(nlist=nlist, nprobe=max(16, nlist // 16))

    def _nprobe(self) -> int:
        nlist = int(self._meta.get("nlist") or 1)
        return min(nlist, int(self._nprobe_override or self._meta.get("nprobe") or 16))

    def _probes(self, allow: npt.NDArray[np.int64] | None, expr: str) -> int:
        """Widen nprobe when a filter leaves few eligible rows (IVF probes fewer of them)."""
        base = self._nprobe()
        if not expr:
            return base
        n = max(1, len(self))
        eligible = self._count(expr) if allow is None else min(int(allow.size), n)
        return min(int(self._meta.get("nlist") or base), max(base, math.ceil(base * n / max(1, eligible))))

    def _insert(
        self, ids: npt.NDArray[np.int64], vecs: npt.NDArray[np.float32], srcs: npt.NDArray[np.int64]
    ) -> None:
        for part, rows in _by_partition(np.arange(ids.size), key=ids):
            for chunk in _chunks(rows):
                data = [
                    {"id": int(ids[r]), "vector": vecs[r], "source_id": int(srcs[r])} for r in chunk.tolist()
                ]
                self._call(
                    "insert into the index", self._client.insert, self.collection, data, partition_name=part
                )

    def _present(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Which of ``ids`` are stored (sorted)."""
        found: list[int] = []
        for chunk in _chunks(ids):
            rows = self._call(
                "look up ids",
                self._client.query,
                self.collection,
                filter=f"id in {chunk.tolist()}",
                output_fields=["id"],
            )
            found.extend(int(r["id"]) for r in rows)
        return np.unique(np.asarray(found, dtype=np.int64))

    def _count(self, expr: str) -> int:
        rows = self._call(
            "count rows", self._client.query, self.collection, filter=expr, output_fields=["count(*)"]
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def _iter_ids(self, partition: str | None = None) -> Iterator[npt.NDArray[np.int64]]:
        kwargs: dict[str, Any] = {"partition_names": [partition]} if partition else {}
        if self.lite:  # milvus-lite has no result-size cap, and no timestamps for query iterators
            rows = self._call(
                "list ids",
                self._client.query,
                self.collection,
                filter="id >= 0",
                output_fields=["id"],
                **kwargs,
            )
            yield np.fromiter((int(r["id"]) for r in rows), dtype=np.int64, count=len(rows))
            return
        it = self._call(
            "list ids",
            self._client.query_iterator,
            self.collection,
            batch_size=BATCH,
            filter="id >= 0",
            output_fields=["id"],
            **kwargs,
        )
        try:
            while batch := self._call("list ids", it.next):
                yield np.fromiter((int(r["id"]) for r in batch), dtype=np.int64, count=len(batch))
        finally:
            it.close()

    def _pending(self) -> npt.NDArray[np.int64]:
        return np.asarray(self._meta.get("pending_ids") or [], dtype=np.int64)

    def _delete(self, ids: npt.NDArray[np.int64]) -> None:
        for part, part_ids in _by_partition(ids):
            for chunk in _chunks(part_ids):
                self._call(
                    "delete from the index",
                    self._client.delete,
                    self.collection,
                    ids=chunk.tolist(),
                    partition_name=part,
                )

    def _purge(self) -> None:
        """Make the vectors removed since the last purge physically gone, then check none is left."""
        pending = self._pending()
        if pending.size == 0:
            return
        # A process killed inside remove() noted every id but sent only some of the deletes: send
        # the rest first, or rewriting a partition would carry the undeleted vectors over.
        self._delete(self._present(pending))
        if self.lite:
            for part, _ in _by_partition(pending):
                self._rewrite_partition(part)
        else:
            self._compact()
        left = self._present(pending)
        if left.size:
            raise VectorIndexError(f"{left.size} removed vectors are still stored after the purge")
        self._meta["pending_ids"] = []

    def _rewrite_partition(self, part: str) -> None:
        """milvus-lite: copy out the partition's surviving rows, drop it (its folder goes), refill it."""
        ids = np.sort(np.concatenate([np.empty(0, np.int64), *self._iter_ids(part)]))
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(ids):
            rows.extend(
                self._call(
                    "read a partition",
                    self._client.get,
                    self.collection,
                    ids=chunk.tolist(),
                    output_fields=["id", "vector", "source_id"],
                    partition_names=[part],
                )
            )
        if len(rows) != ids.size:
            raise VectorIndexError(f"read {len(rows)} of the {ids.size} rows of partition {part}")
        self._call("drop a partition", self._client.drop_partition, self.collection, part)
        self._call("create a partition", self._client.create_partition, self.collection, part)
        if rows:
            vecs = np.asarray([r["vector"] for r in rows], dtype=np.float32)
            srcs = np.asarray([r["source_id"] for r in rows], dtype=np.int64)
            self._insert(np.asarray([r["id"] for r in rows], dtype=np.int64), vecs, srcs)
        self._call("flush the index", self._client.flush, self.collection)

    def _compact(self) -> None:
        """Milvus server: L0 compaction (2.4+: applies deletes to the sealed segments), then mix
        compaction (rewrites segments without the deleted rows); waits for each to complete."""
        for level0 in (True, False):
            if level0 and not _has_level0(self._call("ask the version", self._client.get_server_version)):
                continue
            job = int(self._call("start compaction", self._client.compact, self.collection, is_l0=level0))
            t0 = time.monotonic()
            while (
                state := self._call("poll compaction", self._client.get_compaction_state, job)
            ) != "Completed":
                if time.monotonic() - t0 > self.compaction_timeout_s:
                    raise VectorIndexError(
                        f"compaction {job} still {state} after {self.compaction_timeout_s:.0f} s; removed "
                        "vectors may remain on disk until a later save completes it"
                    )
                time.sleep(0.5)
            kind = "L0" if level0 else "mix"
            log.info("compaction %d (%s) completed in %.1f s", job, kind, time.monotonic() - t0)

    # ---------------------------------------------------------------- metadata file
    def _read_meta(self) -> dict[str, Any]:
        path = self.directory / META_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise VectorIndexError(f"index metadata {path} is unreadable: {exc}") from exc
        if not isinstance(meta, dict):
            raise VectorIndexError(f"index metadata {path} is not a JSON object")
        return meta

    def _write_meta(self, *, new_generation: bool = True) -> None:
        if new_generation:
            self._meta["generation"] = uuid.uuid4().hex
        self._meta.update(dim=self.dim, collection=self.collection)
        payload = json.dumps(self._meta, sort_keys=True).encode()
        try:
            atomic_write(self.directory / META_FILE, payload)
            if self._lite_path:
                _owner_only(Path(self._lite_path))
        except OSError as exc:
            raise VectorIndexError(f"writing {self.directory / META_FILE} failed: {exc}") from exc
        self._stamp = self._disk_stamp()

    def _disk_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = (self.directory / META_FILE).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)


def _has_level0(version: str) -> bool:
    """Whether a server of ``version`` (``v2.4.5``, ``2.6.0-rc``...) keeps deletes in L0 segments."""
    numbers = [int(x) for x in re.findall(r"\d+", version)[:2]]
    return len(numbers) < 2 or tuple(numbers) >= (2, 4)


def _partition_names() -> list[str]:
    return [f"p{p:02d}" for p in range(PARTITIONS)]


def _by_partition(
    values: npt.NDArray[np.int64], *, key: npt.NDArray[np.int64] | None = None
) -> Iterator[tuple[str, npt.NDArray[np.int64]]]:
    """Group ``values`` by the hash partition of ``key`` (default: the values, which are ids)."""
    of = (values if key is None else key) % PARTITIONS
    for part in np.unique(of).tolist():
        yield f"p{part:02d}", values[of == part]


def _chunks(values: npt.NDArray[np.int64]) -> Iterator[npt.NDArray[np.int64]]:
    for start in range(0, values.size, BATCH):
        yield values[start : start + BATCH]


def _filter(
    allow: npt.NDArray[np.int64] | None,
    deny: npt.NDArray[np.int64] | None,
    deny_sources: npt.NDArray[np.int64] | None,
) -> str:
    parts = []
    if allow is not None:
        parts.append(f"id in {allow.tolist()}")
    if deny is not None and deny.size:
        parts.append(f"id not in {deny.tolist()}")
    if deny_sources is not None and deny_sources.size:
        parts.append(f"source_id not in {deny_sources.tolist()}")
    return " and ".join(parts)


def _owner_only(root: Path) -> None:
    """milvus-lite creates its files with the process umask (often 0644): make them 0600 and its
    folders 0700, like every other file of the data folder. (The index folder around it is 0700
    already, so nobody else could reach them; files written later by milvus-lite's background
    compaction get the same treatment at the next save or close.)"""
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):  # compaction may remove a file meanwhile
            path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _safe_uri(uri: str) -> str:
    """The URI without credentials (``user:password@``), for messages and logs."""
    scheme, sep, rest = uri.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else uri
