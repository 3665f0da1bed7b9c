"""FAISS backend of :class:`lethe.index.base.VectorIndex`.

Two structures, both keyed by stable external int64 ids and both physically dropping removed codes:

* ``flat``: ``IndexIDMap2(IndexFlatIP)`` -- exact cosine search; removal compacts the stored rows.
* ``ivf``: ``IndexIVFScalarQuantizer`` (SQ8, inner product) trained on the vectors given to
  :meth:`FaissIndex.rebuild` (or, for ``kind="ivf"``, on the first batch added); structure, nlist
  and nprobe follow the sizing policy shared with the Milvus backend (:mod:`lethe.index._sizing`).

On disk: ``faces.faiss``, sealed (:mod:`lethe.index._sealed`: chunked AES-256-GCM under a fresh
random file key wrapped by the :class:`IndexSealer` the index is given -- the Store passes the key
ring -- so a copied data folder or a stolen disk shows no template without the master key), and the
sidecar ``faces.meta.json`` (``count``, ``kind``, ``dim``, ``nprobe``; :mod:`lethe.index._sidecar`),
both replaced through :func:`lethe.storage.atomic_write`. Inside the seal: a FAISS file, then the
source id of every vector in ascending id order, then a trailer with both lengths and their SHA-256.
A save streams: FAISS serialises into the sealing writer, which encrypts 1 MiB at a time into the
temporary file; a load decrypts chunk by chunk into FAISS's reader, each chunk authenticated before
FAISS sees a byte of it (no copy of the whole file in memory either way). An index opened without a
sealer uses a key that lives only in its process (:class:`ProcessKeySealer`): no code path writes a
template in clear. A file of the former unsealed format (``LETHEIX2`` trailer) is still read, and
:attr:`FaissIndex.plaintext_on_disk` tells the Store to save it sealed at once. HNSW is deliberately
not used: it cannot remove vectors.

``deny_sources`` becomes an id selector over the faces of those sources, built once per content
version and reused by every search until the next change.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import faiss
import numpy as np
import numpy.typing as npt

import lethe.index._sizing as sizing
from lethe.errors import VectorIndexError
from lethe.index._checks import NO_SOURCE, check_batch, check_ids, check_search
from lethe.index._sealed import IndexSealer, ProcessKeySealer, SealedReader, SealedWriter, is_sealed
from lethe.index._sidecar import disk_stamp, read_meta, write_meta
from lethe.index.base import Hit
from lethe.storage import atomic_write, remove_stale_temps
from lethe.types import EMBEDDING_DIM

INDEX_FILE = "faces.faiss"
META_FILE = "faces.meta.json"
_TRAILER = struct.Struct("<8sQQ32s")  # magic, FAISS length, source-id length, sha256(both)
_MAGIC = b"LETHEIX2"


@contextlib.contextmanager
def _faiss_errors(what: str) -> Iterator[None]:
    """Raise what FAISS raises inside the block (SWIG turns C++ failures into ``RuntimeError``) as
    :class:`VectorIndexError` ``"<what>: <reason>"``; our own errors pass through."""
    try:
        yield
    except VectorIndexError:
        raise
    except Exception as exc:
        raise VectorIndexError(f"{what}: {exc}") from exc


def set_threads(n: int) -> None:
    """Set the number of OpenMP threads FAISS uses (process-wide)."""
    if n < 1:
        raise VectorIndexError(f"thread count must be >= 1, got {n}")
    faiss.omp_set_num_threads(int(n))


class FaissIndex:
    """Persistent FAISS index in ``directory``; loads ``faces.faiss`` when present, else starts empty."""

    def __init__(
        self,
        directory: Path,
        dim: int = EMBEDDING_DIM,
        *,
        kind: sizing.Mode = "auto",
        exact_max: int = 100_000,
        nprobe: int | None = None,
        sealer: IndexSealer | None = None,
    ) -> None:
        self._mode = sizing.check_mode(kind)
        self._sealer: IndexSealer = sealer if sealer is not None else ProcessKeySealer()
        #: Whether the file last loaded was of the former unsealed format (save it sealed now).
        self.plaintext_on_disk = False
        self.directory = Path(directory)
        self.dim = int(dim)
        self.exact_max = int(exact_max)
        self._nprobe_override = nprobe
        self._nprobe: int | None = None  # IVF only
        self._index: Any = None  # None until a structure exists (untrained kind="ivf")
        self._kind: sizing.Structure = "ivf" if kind == "ivf" else "flat"
        self._ids = np.empty(0, dtype=np.int64)  # sorted mirror of the stored ids
        self._sources = np.empty(0, dtype=np.int64)  # source id of each of self._ids
        self._version = 0  # bumped by every change of content: keys the deny_sources cache
        self._denied: tuple[int, bytes, npt.NDArray[np.int64], list[Any]] | None = None
        self._lock = threading.RLock()
        if (self.directory / INDEX_FILE).exists():
            self._load()
        self._stamp = self._disk_stamp()
        self._generation = self._saved_generation()

    # ----------------------------------------------------------------- public API
    def __len__(self) -> int:
        return int(self._ids.size)

    @property
    def kind(self) -> sizing.Structure:
        """The structure in use now."""
        return self._kind

    @property
    def generation(self) -> str | None:
        """The identifier of the save this object holds (a new one per save; None before the first)."""
        return self._generation

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
            clash = np.isin(ids_, self._ids)
            if clash.any():
                raise VectorIndexError(f"ids already in the index: {ids_[clash][:10].tolist()}")
            if self._index is None:
                self._index = self._new_structure(self._kind, vecs)
                self._nprobe = _nprobe_of(self._index)
            with _faiss_errors("adding to the index failed"):
                self._index.add_with_ids(vecs, ids_)
            self._set_content(np.concatenate([self._ids, ids_]), np.concatenate([self._sources, srcs]))

    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        """Remove ``ids`` (their codes are dropped); return how many were present."""
        ids_ = np.unique(check_ids(ids, unique=False))
        with self._lock:
            present = ids_[np.isin(ids_, self._ids, assume_unique=True)]
            if present.size == 0 or self._index is None:
                return 0
            with _faiss_errors("removing from the index failed"):
                removed = int(self._index.remove_ids(present))
            keep = ~np.isin(self._ids, present, assume_unique=True)
            self._set_content(self._ids[keep], self._sources[keep])
            if removed != present.size:
                raise VectorIndexError(f"index removed {removed} of {present.size} present ids")
            return removed

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
        ``deny_sources``."""
        queries, allow_, deny_, sources_ = check_search(vectors, k, self.dim, allow, deny, deny_sources)
        empty: list[list[Hit]] = [[] for _ in range(queries.shape[0])]
        with self._lock:
            n = len(self)
            if n == 0 or queries.shape[0] == 0 or (allow_ is not None and allow_.size == 0):
                return empty
            k_eff = min(int(k), n if allow_ is None else min(n, int(allow_.size)))
            keep: list[Any] = []  # SWIG does not keep selectors alive: hold them until search returns
            sel, denied = self._selector(allow_, deny_, sources_, keep)
            params: Any = faiss.SearchParametersIVF() if self._kind == "ivf" else faiss.SearchParameters()
            params.sel = sel
            if self._kind == "ivf":
                params.nprobe = self._probes(n, allow_, denied)
            with _faiss_errors("index search failed"):
                scores, found = self._index.search(queries, k_eff, params=params)
        return [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True) if i >= 0]
            for row_i, row_s in zip(found, scores, strict=True)
        ]

    def ids(self) -> npt.NDArray[np.int64]:
        """All stored ids, sorted."""
        with self._lock:
            return self._ids.copy()

    def save(self) -> None:
        """Write ``faces.faiss`` then ``faces.meta.json``, each atomically."""
        with self._lock, _faiss_errors(f"saving the index to {self.directory} failed"):
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.directory / INDEX_FILE
            if self._index is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
            else:
                atomic_write(target, self._write_file)
            self._generation = uuid.uuid4().hex
            meta = {"count": len(self), "kind": self._kind, "dim": self.dim, "nprobe": self._nprobe}
            write_meta(self.directory / META_FILE, meta | {"generation": self._generation})
            self._stamp = self._disk_stamp()
            self.plaintext_on_disk = False

    def rebuild(
        self,
        ids: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        *,
        sources: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Replace all content, choosing flat or IVF by size (``kind="auto"``), and save."""
        ids_, vecs, srcs = check_batch(ids, vectors, sources, self.dim)
        kind = sizing.choose_structure(self._mode, int(ids_.size), self.exact_max)
        index = None if (kind == "ivf" and ids_.size == 0) else self._new_structure(kind, vecs)
        if index is not None and ids_.size:
            with _faiss_errors("rebuilding the index failed"):
                index.add_with_ids(vecs, ids_)
        with self._lock:
            self._index, self._kind = index, kind
            self._set_content(ids_, srcs)
            self._nprobe = _nprobe_of(index)
            self.save()

    def stats(self) -> dict[str, object]:
        """Backend, structure, count, on-disk size and search parameters."""
        path = self.directory / INDEX_FILE
        with self._lock:
            out: dict[str, object] = {
                "backend": "faiss",
                "kind": self._kind,
                "count": len(self),
                "dim": self.dim,
                "file_bytes": path.stat().st_size if path.exists() else 0,
                "unsourced": int(np.count_nonzero(self._sources == NO_SOURCE)),
            }
            if self._kind == "ivf":
                out["nlist"] = int(self._index.nlist) if self._index is not None else 0
                out["nprobe"] = self._nprobe
            return out

    # ----------------------------------------------------------------- internals
    def close(self) -> None:
        """Nothing to release: the index lives in this process's memory."""

    def _set_content(self, ids: npt.NDArray[np.int64], sources: npt.NDArray[np.int64]) -> None:
        """Replace the sorted id mirror and its source ids (one content version later)."""
        order = np.argsort(ids, kind="stable")
        self._ids, self._sources = ids[order], sources[order]
        self._version += 1
        self._denied = None

    def _new_structure(self, kind: sizing.Structure, train: npt.NDArray[np.float32]) -> Any:
        if kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        n = int(train.shape[0])
        nlist = sizing.nlist_for(n)
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.verbose = False
        with _faiss_errors("training the IVF index failed"):
            index.train(train)
        index.nprobe = sizing.default_nprobe(nlist, n, override=self._nprobe_override)
        return index

    def _probes(self, n: int, allow: npt.NDArray[np.int64] | None, denied: int) -> int:
        """Widen nprobe so a filtered search still sees about as many eligible candidates."""
        eligible = (n if allow is None else min(n, int(allow.size))) - denied
        return sizing.widen_nprobe(int(self._index.nprobe), int(self._index.nlist), n, eligible)

    def _selector(
        self,
        allow: npt.NDArray[np.int64] | None,
        deny: npt.NDArray[np.int64] | None,
        deny_sources: npt.NDArray[np.int64] | None,
        keep: list[Any],
    ) -> tuple[Any, int]:
        """The FAISS selector for one search and how many stored ids it denies."""
        sel: Any = None
        if allow is not None:
            sel = faiss.IDSelectorBatch(allow)
            keep.append(sel)
        neg: Any = None
        denied = 0
        if deny_sources is not None and deny_sources.size and (deny is None or not deny.size):
            neg, denied = self._source_selector(deny_sources)  # cached: the common case
        else:
            if deny is not None and deny_sources is not None and deny_sources.size:
                deny = np.union1d(deny, self._ids[np.isin(self._sources, deny_sources)])
            if deny is not None and deny.size:
                inner = faiss.IDSelectorBatch(deny)
                neg = faiss.IDSelectorNot(inner)
                keep.append(inner)
                denied = int(deny.size)
        if neg is not None:
            keep.append(neg)
            sel = neg if sel is None else faiss.IDSelectorAnd(sel, neg)
            keep.append(sel)
        return sel, denied

    def _source_selector(self, deny_sources: npt.NDArray[np.int64]) -> tuple[Any, int]:
        """Selector refusing every face of ``deny_sources``; rebuilt only when content changed."""
        key = deny_sources.tobytes()
        cached = self._denied
        if cached is None or cached[0] != self._version or cached[1] != key:
            denied = self._ids[np.isin(self._sources, deny_sources)]
            inner = faiss.IDSelectorBatch(denied) if denied.size else None
            objects: list[Any] = [] if inner is None else [inner, faiss.IDSelectorNot(inner)]
            cached = self._denied = (self._version, key, denied, objects)
        objects = cached[3]
        return (objects[1] if objects else None), int(cached[2].size)

    def _write_file(self, handle: BinaryIO) -> None:
        """Write ``faces.faiss`` to ``handle``, sealed as it streams: the FAISS file, the source ids,
        the trailer (both lengths and the SHA-256 of what precedes it)."""
        sealed = SealedWriter(handle, self._sealer)
        digest = hashlib.sha256()
        written = 0

        def put(chunk: bytes) -> None:
            nonlocal written
            sealed.write(chunk)
            digest.update(chunk)
            written += len(chunk)

        faiss.write_index(self._index, faiss.PyCallbackIOWriter(put))  # type: ignore[attr-defined]  # not in faiss's stubs
        index_length = written
        put(self._sources.astype("<i8").tobytes())
        sealed.write(_TRAILER.pack(_MAGIC, index_length, written - index_length, digest.digest()))
        sealed.finish()

    def reload_if_changed(self) -> bool:
        """Re-read the files when another process saved them since this one loaded or saved
        (a long-running service must not search, or later save, a stale copy)."""
        with self._lock:
            stamp = self._disk_stamp()
            if stamp == self._stamp:
                return False
            self._index = None
            self._set_content(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
            self._kind = "ivf" if self._mode == "ivf" else "flat"
            self._nprobe = None
            if (self.directory / INDEX_FILE).exists():
                self._load()
            self._stamp = stamp
            self._generation = self._saved_generation()
            return True

    def _saved_generation(self) -> str | None:
        generation = (read_meta(self.directory / META_FILE) or {}).get("generation")
        return str(generation) if generation else None

    def _disk_stamp(self) -> tuple[int, int, int] | None:
        """Identity of the last save: the metadata file is replaced last by every save."""
        return disk_stamp(self.directory / META_FILE)

    def remove_stale_temps(self) -> int:
        """Delete temporary files a killed save left behind (they may hold removed vectors)."""
        return remove_stale_temps(self.directory, [INDEX_FILE, META_FILE]) if self.directory.is_dir() else 0

    def _load(self) -> None:
        path = self.directory / INDEX_FILE
        try:
            with open(path, "rb") as fh:
                sealed = is_sealed(fh.read(8))
            if sealed:
                index, sources = self._read_sealed(path)
            else:
                index, sources = self._read_plaintext(path)
        except (OSError, struct.error, ValueError) as exc:
            raise VectorIndexError(f"vector index {path} is unreadable: {exc}") from exc
        self.plaintext_on_disk = not sealed
        self._adopt(path, index, sources)

    def _read_sealed(self, path: Path) -> tuple[Any, npt.NDArray[np.int64]]:
        """Decrypt ``path`` chunk by chunk into FAISS's reader, then the source ids and the trailer."""
        with open(path, "rb") as raw:
            reader = SealedReader(raw, self._sealer, str(path))
            digest = hashlib.sha256()
            consumed = 0

            def take(n: int) -> bytes:
                nonlocal consumed
                data = reader.read(n)
                digest.update(data)
                consumed += len(data)
                return data

            with _faiss_errors(f"vector index {path} cannot be parsed"):
                index = faiss.read_index(faiss.PyCallbackIOReader(take))  # type: ignore[attr-defined]  # not in faiss's stubs
            index_length = consumed
            sources = np.frombuffer(take(int(index.ntotal) * 8), dtype="<i8").astype(np.int64)
            tail = reader.read(_TRAILER.size)
            if len(tail) != _TRAILER.size or not reader.at_end():
                raise VectorIndexError(f"vector index {path} is corrupt (length mismatch)")
            magic, stored_index, stored_sources, stored_digest = _TRAILER.unpack(tail)
            if (magic, stored_index, stored_sources, stored_digest) != (
                _MAGIC,
                index_length,
                consumed - index_length,
                digest.digest(),
            ):
                raise VectorIndexError(f"vector index {path} is corrupt (checksum mismatch); rebuild it")
        return index, sources

    @staticmethod
    def _read_plaintext(path: Path) -> tuple[Any, npt.NDArray[np.int64]]:
        """A file of the former unsealed format: checksum first, then FAISS parses it."""
        index_length, sources = _read_checked(path)
        if index_length is None:
            raise VectorIndexError(f"vector index {path} is corrupt (checksum mismatch); rebuild it")
        with _faiss_errors(f"vector index {path} cannot be parsed"):
            index = faiss.read_index(str(path))  # already downcast; owns its memory
        return index, sources

    def _adopt(self, path: Path, index: Any, sources: npt.NDArray[np.int64]) -> None:
        if index.d != self.dim or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise VectorIndexError(f"vector index {path} has dim {index.d}, expected {self.dim} (IP)")
        if isinstance(index, faiss.IndexIDMap2):
            self._kind, ids = "flat", faiss.vector_to_array(index.id_map)
        elif isinstance(index, faiss.IndexIVFScalarQuantizer):
            self._kind, ids = "ivf", _ivf_ids(index)
            meta = read_meta(self.directory / META_FILE) or {}
            index.nprobe = min(
                int(index.nlist), int(self._nprobe_override or meta.get("nprobe") or index.nprobe)
            )
        else:
            raise VectorIndexError(f"vector index {path} holds an unsupported {type(index).__name__}")
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        if sources.size != ids.size:
            raise VectorIndexError(f"vector index {path} holds {sources.size} source ids for {ids.size} ids")
        self._index = index
        self._set_content(ids, sources)
        self._nprobe = _nprobe_of(index)


def discard_files(directory: Path) -> None:
    """Delete the index files of ``directory`` (the Store does it when a file is refused, before it
    rebuilds the index from the catalog)."""
    for name in (INDEX_FILE, META_FILE):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def _nprobe_of(index: Any) -> int | None:
    """The default nprobe of an IVF structure; ``None`` for flat or no structure."""
    return int(index.nprobe) if isinstance(index, faiss.IndexIVF) else None


def _read_checked(path: Path) -> tuple[int | None, npt.NDArray[np.int64]]:
    """Length of the FAISS part of ``path`` (``None`` when the trailer or its checksum fails) and
    the source ids stored after it."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - _TRAILER.size))
        tail = fh.read(_TRAILER.size)
        if len(tail) != _TRAILER.size or tail[:8] != _MAGIC:
            return None, np.empty(0, dtype=np.int64)
        _, index_length, sources_length, digest = _TRAILER.unpack(tail)
        length = index_length + sources_length
        if length != size - _TRAILER.size or sources_length % 8 or _hash_file(path, length) != digest:
            return None, np.empty(0, dtype=np.int64)
        fh.seek(index_length)
        return index_length, np.frombuffer(fh.read(sources_length), dtype="<i8").astype(np.int64)


def _hash_file(path: Path, length: int) -> bytes:
    """SHA-256 of the first ``length`` bytes of ``path``."""
    h, done = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while done < length:
            chunk = fh.read(min(1 << 20, length - done))
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
    return h.digest()


def _ivf_ids(index: Any) -> npt.NDArray[np.int64]:
    """All ids stored in the inverted lists of an IVF index."""
    invlists, parts = index.invlists, []
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if size:
            ptr = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            invlists.release_ids(list_no, ptr)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
