"""The Store: where personal data lives — the catalog, the key ring, the sealed crops and the vector
index of one data folder — with the one write lock that moves them together, crash recovery and
index rebuilds.

The privacy services (``lethe.privacy``) and search take a Store, never the engine; the engine
(:mod:`lethe.engine`) only composes them. The Store decides no privacy rule and writes no personal
data of its own accord: what may be written is decided above it, by the privacy gate
(:mod:`lethe.privacy.gate`). What it does write is repair: after a crash it deletes crops of faces
that were never committed and makes the index match the catalog again (it never adds or removes a
face the catalog does not already hold or lack).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lethe.catalog import Catalog, Source, audit_log
from lethe.catalog.audit_log import AuditRecord, Verification
from lethe.config import Settings
from lethe.crops import CropStore
from lethe.errors import CatalogError, NotFoundError, SealedDataError, VectorIndexError
from lethe.index import VectorIndex, index_for
from lethe.index.faiss_index import discard_files
from lethe.keyring import KeyRing
from lethe.model_ids import template_model
from lethe.storage import private_dir

log = logging.getLogger(__name__)

#: Signed checkpoints of the audit chain's head, beside the master key (lethe.catalog.audit_log).
ANCHOR_FILE = "audit-checkpoints.jsonl"


class AnchoredCatalog(Catalog):
    """The catalog whose :meth:`verify_audit` also holds the chain to the signed checkpoints kept
    outside it (the Store sets :attr:`verifier`)."""

    verifier: Callable[[], Verification] | None = None

    def verify_audit(self) -> Verification:
        return self.verifier() if self.verifier is not None else super().verify_audit()


class Store:
    """Open with ``Store(settings)``; close with ``close()``. Opening repairs what a crash left
    (:meth:`recover`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = settings.ensure_data_dir()
        #: The model whose templates this store holds, indexes and compares (lethe.model_ids).
        self.model_sha256 = template_model(settings.embedder)
        self.catalog = AnchoredCatalog(settings.resolved_catalog_url, template_model=self.model_sha256)
        try:
            self.keyring = KeyRing(data_dir / "keys", self.catalog, master_key_file=settings.master_key_file)
            self.catalog.attach_sealer(self.keyring)
            self.crops = CropStore(data_dir / "crops", self.keyring)
            self.index: VectorIndex = self._open_index(private_dir(data_dir / "index"))
        except BaseException:
            self.catalog.close()
            raise
        self.catalog.verifier = self.verify_audit
        self._anchored_seq: int | None = None
        self._lock_path = data_dir / ".write.lock"
        self._lock_depth = 0
        self._thread_lock = threading.RLock()
        try:
            self.recover()
        except BaseException:
            self.close()
            raise

    def _open_index(self, folder: Path) -> VectorIndex:
        """The index, its files sealed by the key ring. A FAISS file that is refused (altered, cut
        short, sealed under another key) is deleted and the index starts empty: :meth:`recover`
        then rebuilds it from the catalog's templates, as after a crash (the catalog decides which
        faces exist; the file is only a derived copy)."""
        try:
            return index_for(self.settings, folder, sealer=self.keyring)
        except (VectorIndexError, SealedDataError) as exc:
            if self.settings.index != "faiss":
                raise
            log.warning("vector index file refused, rebuilding it from the catalog: %s", exc)
            discard_files(folder)
            return index_for(self.settings, folder, sealer=self.keyring)

    def close(self) -> None:
        try:
            self.anchor_audit_now()
        finally:
            try:
                self.index.close()
            finally:
                self.catalog.close()

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """The exclusive lock on the data folder's lock file (across processes)."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _try_file_lock(self) -> int | None:
        """The lock file's descriptor with the exclusive lock taken, or None at once when a writer
        (another process, or this one inside :meth:`writing`) holds it."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    # -- the audit chain's anchors ---------------------------------------------------------------

    @property
    def anchor_path(self) -> Path:
        """The signed checkpoints of the audit chain: beside the master key, outside the catalog."""
        return self.keyring.master_path.parent / ANCHOR_FILE

    def audit_checkpoints(self) -> tuple[list[str], list[tuple[int, str]], int]:
        """The checkpoint lines, those whose signature holds as (seq, hash), and how many do not."""
        try:
            lines = self.anchor_path.read_text(encoding="ascii").splitlines()
        except FileNotFoundError:
            lines = []
        good, bad = audit_log.check_checkpoints(lines, self.keyring.audit_public_key())
        return lines, good, bad

    def verify_audit(self) -> Verification:
        """The chain recomputed (texts and faces included) and held to every signed checkpoint: a
        tail cut back to an earlier entry, head rewritten, is reported as a truncation. The
        checkpoint entries inside the chain (log retention) are checked under the same key."""
        _, good, bad = self.audit_checkpoints()
        with self.catalog.session() as session:
            result = audit_log.verify(session, anchors=good, public_key=self.keyring.audit_public_key())
        if result.ok and not bad:
            self.anchor_audit_now()  # a verified head, vouched for from now on
        if result.ok and bad:
            return Verification(
                False,
                result.entries,
                result.head,
                None,
                f"{bad} checkpoint(s) in {self.anchor_path} do not verify: the file was altered",
                anchored=result.anchored,
                pruned_before=result.pruned_before,
                checkpoints=result.checkpoints,
            )
        return result

    def anchor_audit(self) -> None:
        """Append a signed checkpoint of the committed head when it moved since the last one. Call
        holding the file lock (:meth:`writing` does at its end, :meth:`close` too). A checkpoint
        that cannot be written is a warning, never a failed action."""
        try:
            with self.catalog.session() as session:
                seq, hash_ = audit_log.head(session)
            if self._anchored_seq is None:
                self._anchored_seq = self._last_anchored()
            if seq <= self._anchored_seq:
                return  # nothing new (or a chain shorter than its checkpoints: verify reports it)
            at = datetime.now(UTC).isoformat()
            signature = self.keyring.sign_audit(audit_log.checkpoint_message(seq, hash_, at))
            line = audit_log.checkpoint_line(seq, hash_, at, signature).encode("ascii")
            fd = os.open(self.anchor_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._anchored_seq = seq
        except (OSError, CatalogError) as exc:
            log.warning("could not write an audit checkpoint to %s: %s", self.anchor_path, exc)

    def anchor_audit_now(self) -> None:
        """A checkpoint of the head as it is now (reads too are audited: a search commits its entry
        outside the write lock, anchored at the next write, close, verification or pack)."""
        if self._lock_depth:  # this process writes: its writing() anchors at its end
            return
        fd = self._try_file_lock()
        if fd is None:  # another process writes: it anchors at its end; never wait on it here
            return
        try:
            self.anchor_audit()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _last_anchored(self) -> int:
        try:
            with open(self.anchor_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 4096))
                tail = fh.read().decode("ascii", "replace").splitlines()
        except FileNotFoundError:
            return 0
        for line in reversed(tail):
            try:
                return int(json.loads(line)["seq"])
            except (ValueError, KeyError, TypeError):
                continue
        return 0

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One writer at a time: across threads of this process (a re-entrant lock) and across
        processes (an exclusive lock on a file in the data folder). Catalog, crops and index move
        together under it."""
        with self._thread_lock:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            with self._file_lock():
                self._lock_depth = 1
                try:
                    # Another process may have written since: never build on (or save) a stale index.
                    self.index.reload_if_changed()
                    yield
                finally:
                    self._lock_depth = 0
                self.anchor_audit()  # what the block committed is anchored before the lock goes

    # -- reads -----------------------------------------------------------------------------------

    def sources(self) -> list[tuple[Source, int, int]]:
        """Every source with its photo and face counts."""
        counts = self.catalog.source_counts()
        return [(s, *counts.get(s.id, (0, 0))) for s in self.catalog.sources()]

    def crop_jpeg(self, face_id: int) -> bytes:
        """The face's aligned crop as JPEG bytes (decrypted; the file on disk is sealed)."""
        source_id = self.catalog.face_source_ids([face_id]).get(face_id)
        if source_id is None:
            raise NotFoundError(f"no face {face_id}")
        return self.crops.read(face_id, source_id=source_id)

    # -- maintenance -----------------------------------------------------------------------------

    def rotate_master_key(self, *, audit_as: AuditRecord) -> int:
        """New master key; every data key re-wrapped with it (see lethe.keyring). Returns the
        number of keys re-wrapped."""
        with self.writing():
            count = self.keyring.rotate_master()
            self.catalog.record(audit_as.with_details(keys=count))
        return count

    def rebuild_index(self, *, audit_as: AuditRecord) -> dict[str, object]:
        """Rebuild the vector index from the catalog's templates; drop crops with no catalog face
        (a repair: the catalog decides which faces exist)."""
        with self.writing():
            self.rebuild_vectors()
            known = {int(i) for i in self.index.ids()}
            orphans = [fid for fid in self.crops.face_ids_on_disk() if fid not in known]
            for face_id in orphans:
                self.crops.delete(face_id)
            stats = dict(self.index.stats())
            stats["orphan_crops_removed"] = len(orphans)
            self.catalog.record(audit_as.with_details(**stats))
        return stats

    def rebuild_vectors(self) -> None:
        """The vector index built again from the catalog's templates (call under :meth:`writing`)."""
        chunks = list(self.catalog.iter_embeddings())
        if chunks:
            ids = np.concatenate([c[0] for c in chunks])
            vectors = np.vstack([c[1] for c in chunks])
        else:
            ids = np.zeros(0, dtype=np.int64)
            vectors = np.zeros((0, self.index.dim), dtype=np.float32)
        face_ids, source_ids = self.catalog.face_sources()
        at = np.searchsorted(face_ids, ids)
        if ids.size and not np.array_equal(face_ids[np.minimum(at, face_ids.size - 1)], ids):
            raise CatalogError("a face without a photo or source: the catalog is inconsistent")
        self.index.rebuild(ids, vectors, sources=source_ids[at] if ids.size else None)

    def restructure_if_grown(self) -> None:
        """An exact index that grew past ``index_exact_max_faces`` becomes an approximate one (call
        under :meth:`writing`)."""
        stats = self.index.stats()
        if (
            self.settings.index_kind == "auto"
            and stats.get("kind") == "flat"
            and len(self.index) > self.settings.index_exact_max_faces
        ):
            self.rebuild_vectors()

    # -- crash recovery --------------------------------------------------------------------------

    def recover(self) -> None:
        """What a process killed mid-write left is repaired: orphan crops and temporary files
        deleted, the index made to match the catalog. (Interrupted erasures are resumed by the
        privacy gate, :meth:`lethe.privacy.gate.Gate.resume_erasures`.)"""
        self._clean_up_after_crash()
        self._sync_index()
        if getattr(self.index, "plaintext_on_disk", False):
            log.warning("vector index file of the former unsealed format: saving it sealed")
            with self.writing():
                self.index.save()

    def _clean_up_after_crash(self) -> None:
        """Delete what a process killed mid-write left: crops written for a batch whose catalog
        commit never came (they belong to no face), temporary files of the index. Only when no live
        process is writing: its journal and temporary files are its own, settled as it goes."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                if self.crops.pending():
                    deleted = self.crops.recover(lambda ids: set(self.catalog.face_source_ids(ids)))
                    if deleted:
                        log.warning("deleted %d crops of faces an interrupted ingest never stored", deleted)
                if self.index.remove_stale_temps():
                    log.warning("deleted temporary index files an interrupted save left")
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _sync_index(self) -> None:
        """After a crash the index may lag or lead the catalog: make it match the catalog exactly."""
        catalog_ids = self.catalog.face_ids()
        index_ids = self.index.ids()
        if len(catalog_ids) == len(index_ids) and np.array_equal(np.sort(catalog_ids), np.sort(index_ids)):
            return
        log.warning(
            "vector index out of step with the catalog (%d vs %d); rebuilding",
            len(index_ids),
            len(catalog_ids),
        )
        with self.writing():
            self.rebuild_vectors()
