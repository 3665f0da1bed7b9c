"""FAISS backend of :class:`lethe.index.base.VectorIndex`.

Two structures, both keyed by stable external int64 ids and both physically dropping removed codes:

* ``flat``: ``IndexIDMap2(IndexFlatIP)`` -- exact cosine search; removal compacts the stored rows.
* ``ivf``: ``IndexIVFScalarQuantizer`` (SQ8, inner product), ``nlist ~ 4*sqrt(n)`` trained on the
  vectors given to :meth:`FaissIndex.rebuild` (or, for ``kind="ivf"``, on the first batch added).

On disk: ``faces.faiss`` (a FAISS file followed by a trailer with its length and SHA-256, so bit rot
is caught on load) and ``faces.meta.json`` (``count``, ``kind``, ``dim``, ``nprobe``), both replaced
atomically. HNSW is deliberately not used: it cannot remove vectors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
import numpy.typing as npt

from lethe.errors import VectorIndexError
from lethe.index.base import Hit
from lethe.types import EMBEDDING_DIM

INDEX_FILE = "faces.faiss"
META_FILE = "faces.meta.json"
_TRAILER = struct.Struct("<8sQ32s")  # magic, payload length, sha256(payload)
_MAGIC = b"LETHEIX1"
_NORM_TOLERANCE = 1e-3
_MIN_POINTS_PER_LIST = 39  # below this FAISS k-means warns and clusters poorly

Kind = Literal["auto", "flat", "ivf"]


def set_threads(n: int) -> None:
    """Set the number of OpenMP threads FAISS uses (process-wide)."""
    if n < 1:
        raise VectorIndexError(f"thread count must be >= 1, got {n}")
    faiss.omp_set_num_threads(int(n))


def read_meta(directory: Path) -> dict[str, Any] | None:
    """Return the sidecar ``faces.meta.json`` of ``directory``, or ``None`` when absent."""
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise VectorIndexError(f"index metadata {path} is unreadable: {exc}") from exc
    if not isinstance(meta, dict):
        raise VectorIndexError(f"index metadata {path} is not a JSON object")
    return meta


class FaissIndex:
    """Persistent FAISS index in ``directory``; loads ``faces.faiss`` when present, else starts empty."""

    def __init__(
        self,
        directory: Path,
        dim: int = EMBEDDING_DIM,
        *,
        kind: Kind = "auto",
        exact_max: int = 100_000,
        nprobe: int | None = None,
    ) -> None:
        if kind not in ("auto", "flat", "ivf"):
            raise VectorIndexError(f"unknown index kind {kind!r}")
        self.directory = Path(directory)
        self.dim = int(dim)
        self._mode: Kind = kind
        self.exact_max = int(exact_max)
        self._nprobe_override = nprobe
        self._nprobe: int | None = None  # IVF only
        self._index: Any = None  # None until a structure exists (untrained kind="ivf")
        self._kind: Literal["flat", "ivf"] = "ivf" if kind == "ivf" else "flat"
        self._ids = np.empty(0, dtype=np.int64)  # sorted mirror of the stored ids
        self._lock = threading.RLock()
        self._remove_stale_temps()
        if (self.directory / INDEX_FILE).exists():
            self._load()
        self._stamp = self._disk_stamp()

    # ----------------------------------------------------------------- public API
    def __len__(self) -> int:
        return int(self._ids.size)

    @property
    def kind(self) -> Literal["flat", "ivf"]:
        """The structure in use now."""
        return self._kind

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        """Add ``vectors`` under ``ids``; ids already stored are refused (nothing is added)."""
        ids_, vecs = self._check_pair(ids, vectors)
        if ids_.size == 0:
            return
        with self._lock:
            clash = np.isin(ids_, self._ids)
            if clash.any():
                raise VectorIndexError(f"ids already in the index: {ids_[clash][:10].tolist()}")
            if self._index is None:
                self._index = self._new_structure(self._kind, vecs)
                self._nprobe = _nprobe_of(self._index)
            try:
                self._index.add_with_ids(vecs, ids_)
            except Exception as exc:  # SWIG raises RuntimeError on C++ failures
                raise VectorIndexError(f"adding to the index failed: {exc}") from exc
            self._ids = np.union1d(self._ids, ids_)

    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        """Remove ``ids`` (their codes are dropped); return how many were present."""
        ids_ = np.unique(self._check_ids(ids, unique=False))
        with self._lock:
            present = ids_[np.isin(ids_, self._ids, assume_unique=True)]
            if present.size == 0 or self._index is None:
                return 0
            try:
                removed = int(self._index.remove_ids(present))
            except Exception as exc:
                raise VectorIndexError(f"removing from the index failed: {exc}") from exc
            self._ids = np.setdiff1d(self._ids, present, assume_unique=True)
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
    ) -> list[list[Hit]]:
        """Per query row, up to ``k`` (id, cosine) best first, honouring ``allow`` and ``deny``."""
        queries = self._check_vectors(vectors)
        if k < 1:
            raise VectorIndexError(f"k must be >= 1, got {k}")
        allow_ = None if allow is None else np.unique(self._check_ids(allow, unique=False))
        deny_ = None if deny is None else np.unique(self._check_ids(deny, unique=False))
        empty: list[list[Hit]] = [[] for _ in range(queries.shape[0])]
        with self._lock:
            n = len(self)
            if n == 0 or queries.shape[0] == 0 or (allow_ is not None and allow_.size == 0):
                return empty
            k_eff = min(int(k), n if allow_ is None else min(n, int(allow_.size)))
            keep: list[Any] = []  # SWIG does not keep selectors alive: hold them until search returns
            sel = self._selector(allow_, deny_, keep)
            params: Any = faiss.SearchParametersIVF() if self._kind == "ivf" else faiss.SearchParameters()
            params.sel = sel
            if self._kind == "ivf":
                params.nprobe = self._probes(n, allow_, deny_)
            try:
                scores, found = self._index.search(queries, k_eff, params=params)
            except Exception as exc:
                raise VectorIndexError(f"index search failed: {exc}") from exc
        return [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True) if i >= 0]
            for row_i, row_s in zip(found, scores, strict=True)
        ]

    def ids(self) -> npt.NDArray[np.int64]:
        """All stored ids, sorted."""
        with self._lock:
            return self._ids.copy()

    def contains(self, face_id: int) -> bool:
        """Whether ``face_id`` is stored."""
        with self._lock:
            pos = int(np.searchsorted(self._ids, face_id))
            return pos < self._ids.size and int(self._ids[pos]) == int(face_id)

    def save(self) -> None:
        """Write ``faces.faiss`` then ``faces.meta.json``, each atomically."""
        with self._lock:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                target = self.directory / INDEX_FILE
                if self._index is None:
                    with contextlib.suppress(FileNotFoundError):
                        target.unlink()
                else:
                    self._atomic_write(target, self._write_index_file)
                meta = {"count": len(self), "kind": self._kind, "dim": self.dim, "nprobe": self._nprobe}
                payload = json.dumps(meta, sort_keys=True).encode()
                self._atomic_write(self.directory / META_FILE, lambda p: p.write_bytes(payload))
                self._stamp = self._disk_stamp()
            except VectorIndexError:
                raise
            except Exception as exc:
                raise VectorIndexError(f"saving the index to {self.directory} failed: {exc}") from exc

    def rebuild(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        """Replace all content, choosing flat or IVF by size (``kind="auto"``), and save."""
        ids_, vecs = self._check_pair(ids, vectors)
        use_ivf = self._mode == "ivf" or (self._mode == "auto" and ids_.size > self.exact_max)
        kind: Literal["flat", "ivf"] = "ivf" if use_ivf else "flat"
        index = None if (kind == "ivf" and ids_.size == 0) else self._new_structure(kind, vecs)
        if index is not None and ids_.size:
            try:
                index.add_with_ids(vecs, ids_)
            except Exception as exc:
                raise VectorIndexError(f"rebuilding the index failed: {exc}") from exc
        with self._lock:
            self._index, self._kind, self._ids = index, kind, np.sort(ids_)
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
            }
            if self._kind == "ivf":
                out["nlist"] = int(self._index.nlist) if self._index is not None else 0
                out["nprobe"] = self._nprobe
            return out

    # ----------------------------------------------------------------- internals
    def _check_ids(self, ids: Any, *, unique: bool = True) -> npt.NDArray[np.int64]:
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

    def _check_pair(self, ids: Any, vectors: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        ids_, vecs = self._check_ids(ids), self._check_vectors(vectors)
        if ids_.size != vecs.shape[0]:
            raise VectorIndexError(f"{ids_.size} ids for {vecs.shape[0]} vectors")
        return ids_, vecs

    def _check_vectors(self, vectors: Any) -> npt.NDArray[np.float32]:
        arr = np.asarray(vectors)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise VectorIndexError(f"vectors must have shape (n, {self.dim}), got {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.floating):
            raise VectorIndexError(f"vectors must be float32, got {arr.dtype}")
        out = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(out).all():
            raise VectorIndexError("vectors contain NaN or infinite values")
        norms = np.linalg.norm(out, axis=1)
        if out.size and np.abs(norms - 1.0).max() > _NORM_TOLERANCE:
            raise VectorIndexError("vectors must be L2-normalised (see lethe.types.l2_normalise)")
        return out

    def _new_structure(self, kind: Literal["flat", "ivf"], train: npt.NDArray[np.float32]) -> Any:
        if kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        n = int(train.shape[0])
        nlist = max(1, min(round(4 * math.sqrt(n)), n // _MIN_POINTS_PER_LIST))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.verbose = False
        try:
            index.train(train)
        except Exception as exc:
            raise VectorIndexError(f"training the IVF index failed: {exc}") from exc
        index.nprobe = min(nlist, self._nprobe_override or max(16, nlist // 16))
        return index

    def _probes(self, n: int, allow: npt.NDArray[np.int64] | None, deny: npt.NDArray[np.int64] | None) -> int:
        """Widen nprobe so a filtered search still sees about as many eligible candidates."""
        nlist, base = int(self._index.nlist), int(self._index.nprobe)
        eligible = float(n if allow is None else min(n, allow.size))
        if deny is not None:
            eligible = max(1.0, eligible - deny.size)
        return min(nlist, max(base, math.ceil(base * n / eligible)))

    @staticmethod
    def _selector(
        allow: npt.NDArray[np.int64] | None, deny: npt.NDArray[np.int64] | None, keep: list[Any]
    ) -> Any:
        sel: Any = None
        if allow is not None:
            sel = faiss.IDSelectorBatch(allow)
            keep.append(sel)
        if deny is not None and deny.size:
            inner = faiss.IDSelectorBatch(deny)
            neg = faiss.IDSelectorNot(inner)
            keep.extend([inner, neg])
            sel = neg if sel is None else faiss.IDSelectorAnd(sel, neg)
            keep.append(sel)
        return sel

    def _write_index_file(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))
        digest, length = _hash_file(path, None)
        with open(path, "ab") as fh:
            fh.write(_TRAILER.pack(_MAGIC, length, digest))

    def _atomic_write(self, target: Path, write: Any) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            write(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def reload_if_changed(self) -> bool:
        """Re-read the files when another process saved them since this one loaded or saved
        (a long-running service must not search, or later save, a stale copy)."""
        with self._lock:
            stamp = self._disk_stamp()
            if stamp == self._stamp:
                return False
            self._index, self._ids = None, np.empty(0, dtype=np.int64)
            self._kind = "ivf" if self._mode == "ivf" else "flat"
            self._nprobe = None
            if (self.directory / INDEX_FILE).exists():
                self._load()
            self._stamp = stamp
            return True

    def _disk_stamp(self) -> tuple[int, int, int] | None:
        """Identity of the last save: the metadata file is replaced last by every save."""
        try:
            st = (self.directory / META_FILE).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _remove_stale_temps(self) -> None:
        """Delete temp files a crashed save left behind (they may hold removed vectors)."""
        if self.directory.is_dir():
            for name in (INDEX_FILE, META_FILE):
                for stale in self.directory.glob(f".{name}.*.tmp"):
                    with contextlib.suppress(OSError):
                        stale.unlink()

    def _load(self) -> None:
        path = self.directory / INDEX_FILE
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                fh.seek(max(0, size - _TRAILER.size))
                magic, length, digest = _TRAILER.unpack(fh.read(_TRAILER.size))
            ok = magic == _MAGIC and length == size - _TRAILER.size and _hash_file(path, length)[0] == digest
        except (OSError, struct.error) as exc:
            raise VectorIndexError(f"vector index {path} is unreadable: {exc}") from exc
        if not ok:
            raise VectorIndexError(f"vector index {path} is corrupt (checksum mismatch); rebuild it")
        try:
            index = faiss.read_index(str(path))  # already downcast; owns its memory
        except Exception as exc:
            raise VectorIndexError(f"vector index {path} cannot be parsed: {exc}") from exc
        if index.d != self.dim or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise VectorIndexError(f"vector index {path} has dim {index.d}, expected {self.dim} (IP)")
        if isinstance(index, faiss.IndexIDMap2):
            self._kind, ids = "flat", faiss.vector_to_array(index.id_map)
        elif isinstance(index, faiss.IndexIVFScalarQuantizer):
            self._kind, ids = "ivf", _ivf_ids(index)
            meta = read_meta(self.directory) or {}
            index.nprobe = min(
                int(index.nlist), int(self._nprobe_override or meta.get("nprobe") or index.nprobe)
            )
        else:
            raise VectorIndexError(f"vector index {path} holds an unsupported {type(index).__name__}")
        self._index, self._ids = index, np.sort(np.asarray(ids, dtype=np.int64))
        self._nprobe = _nprobe_of(index)


def _nprobe_of(index: Any) -> int | None:
    """The default nprobe of an IVF structure; ``None`` for flat or no structure."""
    return int(index.nprobe) if isinstance(index, faiss.IndexIVF) else None


def _hash_file(path: Path, length: int | None) -> tuple[bytes, int]:
    """SHA-256 and byte count of the first ``length`` bytes of ``path`` (all when ``None``)."""
    h, done = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while length is None or done < length:
            chunk = fh.read(1 << 20 if length is None else min(1 << 20, length - done))
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
    return h.digest(), done


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
