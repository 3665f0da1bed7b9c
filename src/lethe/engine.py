"""The engine: the one facade the CLI and the API both use. Business rules live here and below."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from lethe.calibration import calibration_file, implied
from lethe.catalog import Catalog, ImageMeta, Source
from lethe.catalog.tables import AuditEntryRow
from lethe.config import Settings
from lethe.errors import CatalogError, InputError, LawfulBasisError, ModelError, NotFoundError
from lethe.imaging import decode_image
from lethe.index import VectorIndex, index_for
from lethe.ingest import IngestReport, Job, ProcessedImage, Progress, run_ingest
from lethe.model_ids import model_name, template_model
from lethe.pipeline import FacePipeline, build_pipeline
from lethe.privacy import SourceSpec, audit
from lethe.privacy.audit import AuditEntry, AuditRecord, Verification
from lethe.privacy.crypto import KeyRing
from lethe.privacy.suppression import matches as suppression_matches
from lethe.reembed import ReembedReport
from lethe.storage import CropStore, private_dir
from lethe.types import EMBEDDING_DIM, Box, FaceRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Match:
    face_id: int
    score: float
    image: str
    source: str
    source_url: str | None
    box: Box
    crop_path: str
    #: Where the score falls among the erasure bands: "automatic", "review" or "below_review".
    band: str

    def as_dict(self) -> dict[str, object]:
        return {
            "face_id": self.face_id,
            "image": self.image,
            "score": round(self.score, 6),
            "band": self.band,
            "source": self.source,
            "source_url": self.source_url,
            "box": self.box.as_list(),
            "crop": self.crop_path,
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    probe_faces: list[Box]
    used_face: int | None
    threshold: float
    matches: list[Match]
    #: The thresholds in force and what the match threshold implies at this gallery size.
    calibration: dict[str, object]

    @property
    def no_match(self) -> bool:
        return not self.matches

    def as_dict(self) -> dict[str, object]:
        return {
            "probe_faces": len(self.probe_faces),
            "probe_boxes": [b.as_list() for b in self.probe_faces],
            "face": self.used_face,
            "threshold": self.threshold,
            "calibration": self.calibration,
            "matches": [m.as_dict() for m in self.matches],
            "no_match": self.no_match,
        }


class Lethe:
    """Open with ``Lethe(Settings())``; close with ``close()`` or use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = settings.ensure_data_dir()
        #: The model whose templates this engine stores, indexes and compares (lethe.model_ids).
        self.model_sha256 = template_model(settings.embedder)
        self.catalog = Catalog(settings.resolved_catalog_url, template_model=self.model_sha256)
        try:
            self.keyring = KeyRing(data_dir / "keys", self.catalog, master_key_file=settings.master_key_file)
        except BaseException:
            self.catalog.close()
            raise
        self.catalog.attach_keyring(self.keyring)
        self.crops = CropStore(data_dir / "crops", self.keyring)
        self._lock_path = data_dir / ".write.lock"
        self._lock_depth = 0
        self._thread_lock = threading.RLock()
        self._suppressed: np.ndarray | None = None
        self._suppressed_key = b""
        self._objected = np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        try:
            self.index: VectorIndex = index_for(settings, private_dir(data_dir / "index"))
        except BaseException:
            self.catalog.close()
            raise
        self._pipeline: FacePipeline | None = None
        try:
            self._clean_up_after_crash()
            self._sync_index()
            self._resume_erasures()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Lethe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.index.close()
        finally:
            self.catalog.close()

    @property
    def pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            self._pipeline = build_pipeline(self.settings)
        return self._pipeline

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
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._lock_depth = 1
                # Another process may have written since: never build on (or save) a stale index.
                self.index.reload_if_changed()
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    # -- objections ------------------------------------------------------------------------------

    @property
    def suppressed(self) -> np.ndarray:
        """Templates of active objections: decrypted again whenever the objections changed, in this
        process or another (a cheap fingerprint query is made every time)."""
        from lethe.privacy.suppression import active_templates, fingerprint

        key = fingerprint(self)
        if self._suppressed is None or key != self._suppressed_key:
            self._suppressed = active_templates(self)
            self._objected = active_templates(self, ("objection",))
            self._suppressed_key = key
        return self._suppressed

    @property
    def objected(self) -> np.ndarray:
        """Templates of active objections only: these faces are not even ingested (a restriction
        hides faces from search but lets ingest go on)."""
        _ = self.suppressed
        return self._objected

    def reload_suppression(self) -> None:
        self._suppressed = None

    # -- sources ---------------------------------------------------------------------------------

    def add_source(self, spec: SourceSpec, *, actor: str = "system") -> Source:
        return self.catalog.add_source(spec, audit_as=actor)

    def source_listing(self) -> list[dict[str, object]]:
        """Every source with its declaration, status and counts: what the CLI and the API show."""
        return [
            {
                "id": s.id,
                "source": s.name,
                "basis": s.lawful_basis,
                "art9": s.art9_condition,
                "purpose": s.purpose,
                "jurisdiction": s.jurisdiction,
                "retention_days": s.retention_days,
                "status": s.status,
                "created_at": s.created_at.isoformat(),
                "images": images,
                "faces": faces,
            }
            for s, images, faces in self.sources()
        ]

    def sources(self) -> list[tuple[Source, int, int]]:
        counts = self.catalog.source_counts()
        return [(s, *counts.get(s.id, (0, 0))) for s in self.catalog.sources()]

    # -- ingest ----------------------------------------------------------------------------------

    def ingest(
        self,
        source_name: str,
        target: Path,
        progress: Progress | None = None,
        *,
        actor: str = "system",
        uri_for: Callable[[Path], str] | None = None,
    ) -> IngestReport:
        """Ingest a folder or manifest. ``uri_for`` names each photo in the catalog (default: its path
        as given); the service uses it for uploads, whose temporary files are deleted afterwards."""
        source = self.catalog.source(source_name)
        if source.status != "active":
            raise LawfulBasisError(f"source {source.name!r} is {source.status}; ingest is refused")
        from lethe.privacy.suppression import entries_of_other_models

        # Objections made under another model: each new face also gets that model's template, in
        # memory only, to be checked against them (docs/models.md, "Changing the embedder").
        old_objections = [e for e in entries_of_other_models(self) if e.scope == "objection"]
        also = tuple(sorted({e.model_sha256 for e in old_objections}))
        pipeline = self.pipeline if not also else build_pipeline(self.settings, also)
        detector = self.settings.detector
        embedder = self.pipeline.embedder.name  # also prepares the ONNX model once, before workers start
        if self.pipeline.embedder.model_sha256 != self.model_sha256:
            raise ModelError(
                f"the embedder's model file has sha256 {self.pipeline.embedder.model_sha256}, expected "
                f"{self.model_sha256} ({model_name(self.model_sha256)})"
            )
        keep_out = self.settings.erasure_review_threshold

        def is_known(digest: str) -> bool:
            return bool(self.catalog.known_hashes(source.id, [digest]))

        def commit(batch: list[tuple[Job, ProcessedImage]]) -> tuple[int, int]:
            suppressed = 0
            if len(self.objected) or old_objections:
                kept: list[tuple[Job, ProcessedImage]] = []
                for job, processed in batch:
                    found = np.array([f.embedding for f in processed.faces], dtype=np.float32)
                    objected = suppression_matches(self.objected, found, keep_out)
                    for entry in old_objections:
                        theirs = np.array([f.others[entry.model_sha256] for f in processed.faces], np.float32)
                        objected |= suppression_matches(entry.templates, theirs, entry.threshold)
                    suppressed += int(objected.sum())
                    faces = [f for f, out in zip(processed.faces, objected, strict=True) if not out]
                    kept.append(
                        (job, ProcessedImage(processed.width, processed.height, processed.format, faces))
                    )
                batch = kept
            items = [
                (
                    ImageMeta(
                        sha256=job.sha256,
                        uri=uri_for(job.item.path) if uri_for else str(job.item.path),
                        width=processed.width,
                        height=processed.height,
                        size_bytes=job.size_bytes,
                        format=processed.format,
                        source_url=job.item.source_url,
                        captured_at=job.item.captured_at,
                        caption=job.item.caption,
                    ),
                    processed.faces,
                )
                for job, processed in batch
            ]
            written: list[int] = []

            def crop_path_for(face_id: int) -> str:
                return self.crops.relative_path(face_id)

            def write_crops(new_faces: list[tuple[int, FaceRecord]]) -> None:
                # Inside the catalog transaction: crops are on disk before their faces commit. The
                # journal lets the next open delete them if this process dies before the commit.
                written.extend(face_id for face_id, _ in new_faces)
                self.crops.begin(written)
                for face_id, face in new_faces:
                    self.crops.write(face_id, face.crop_jpeg, source_id=source.id)

            try:
                stored = self.catalog.add_images(
                    source.id,
                    items,
                    detector=detector,
                    embedder=embedder,
                    model_sha256=self.model_sha256,
                    crop_path_for=crop_path_for,
                    audit_as=AuditRecord(actor, "ingest", {"detector": detector, "embedder": embedder}),
                    before_commit=write_crops,
                )
            except BaseException:
                for face_id in written:  # rolled back: these faces do not exist
                    self.crops.delete(face_id)
                raise
            finally:
                self.crops.settle()
            ids: list[int] = []
            vectors: list[np.ndarray] = []
            for (_, faces), (image_id, face_ids) in zip(items, stored, strict=True):
                if image_id < 0:
                    continue  # stored meanwhile by another process: skipped
                for face, face_id in zip(faces, face_ids, strict=True):
                    ids.append(face_id)
                    vectors.append(face.embedding)
            if ids:
                self.index.add(
                    np.asarray(ids, dtype=np.int64),
                    np.vstack(vectors).astype(np.float32),
                    sources=np.full(len(ids), source.id, dtype=np.int64),
                )
            return len(ids), suppressed

        with self.writing():
            report = run_ingest(
                target,
                self.settings,
                is_known=is_known,
                commit=commit,
                pipeline=lambda: pipeline,
                progress=progress,
                also_models=also,
            )
            self._maybe_restructure()
            self.index.save()
        log.info(
            "ingest source_id=%s images=%d faces=%d skipped=%d errors=%d",
            source.id,
            report.images,
            report.faces,
            report.skipped,
            len(report.errors) + report.errors_omitted,
        )
        return report

    # -- search ----------------------------------------------------------------------------------

    def search(
        self,
        probe: bytes,
        *,
        purpose: str,
        actor: str = "system",
        top_k: int = 10,
        threshold: float | None = None,
        face: int | None = None,
    ) -> SearchResult:
        """Search by a probe photo. Every search is audited: who, why, the probe's hash, what it found."""
        limit = self.settings.match_threshold if threshold is None else threshold
        self.index.reload_if_changed()
        if top_k < 1:
            raise InputError("top must be at least 1")
        if len(purpose.strip()) < 3:
            raise InputError("a search must state its purpose")
        image = decode_image(
            probe, max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_image_bytes
        )
        faces = self.pipeline.faces(image.pixels)
        boxes = [f.box for f in faces]
        if not faces:
            self._audit_search(actor, purpose, probe, limit, top_k, [])
            return SearchResult([], None, limit, [], self.calibration(limit))
        chosen = 0 if face is None else face
        if not 0 <= chosen < len(faces):
            raise InputError(f"the probe has {len(faces)} face(s); --face must be 0..{len(faces) - 1}")
        restricted = self._restricted_source_ids()
        hits = self.index.search(faces[chosen].embedding[None, :], top_k, deny_sources=restricted)[0]
        hits = [(fid, score) for fid, score in hits if score >= limit]
        hits = self._without_objections(hits)
        infos = self.catalog.faces([fid for fid, _ in hits])
        matches = [
            Match(
                face_id=fid,
                score=score,
                image=infos[fid].image_uri,
                source=infos[fid].source_name,
                source_url=infos[fid].source_url,
                box=infos[fid].box,
                crop_path=str(self.crops.root / infos[fid].crop_path),
                band=self._band(score),
            )
            for fid, score in hits
            if fid in infos
        ]
        self._audit_search(actor, purpose, probe, limit, top_k, [m.face_id for m in matches])
        return SearchResult(boxes, chosen, limit, matches, self.calibration(limit))

    def _searched_sources(self) -> list[str]:
        return sorted(s.name for s in self.catalog.sources() if s.status == "active")

    def _band(self, score: float) -> str:
        if score >= self.settings.erasure_auto_threshold:
            return "automatic"
        return "review" if score >= self.settings.erasure_review_threshold else "below_review"

    def calibration(self, match_threshold: float | None = None) -> dict[str, object]:
        """The thresholds in force, and the FPIR/FNIR measured on LFW nearest to the match
        threshold at this gallery's size (see :mod:`lethe.calibration`)."""
        limit = self.settings.match_threshold if match_threshold is None else match_threshold
        measured = implied(
            limit, len(self.index), calibration_file(self.settings.embedder, self.settings.embed_flip)
        )
        return {
            "match_threshold": limit,
            "erasure_automatic_threshold": self.settings.erasure_auto_threshold,
            "erasure_review_threshold": self.settings.erasure_review_threshold,
            "gallery_faces": len(self.index),
            "implied": measured.as_dict() if measured else None,
        }

    def crop_jpeg(self, face_id: int) -> bytes:
        """The face's aligned crop as JPEG bytes (decrypted; the file on disk is sealed)."""
        source_id = self.catalog.face_source_ids([face_id]).get(face_id)
        if source_id is None:
            raise NotFoundError(f"no face {face_id}")
        return self.crops.read(face_id, source_id=source_id)

    def _audit_search(
        self, actor: str, purpose: str, probe: bytes, threshold: float, top_k: int, face_ids: list[int]
    ) -> None:
        details = {
            "purpose": purpose.strip(),
            "probe_sha256": hashlib.sha256(probe).hexdigest(),
            "threshold": threshold,
            "top": top_k,
            "face_ids": face_ids,
            "model_sha256": self.model_sha256,
            "model": model_name(self.model_sha256),
            "gallery_faces": len(self.index),
            "sources_searched": self._searched_sources(),
        }
        self.catalog.record(AuditRecord(actor, "search", details, tuple(face_ids)))

    def _without_objections(self, hits: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Drop faces of people who objected: they are never returned."""
        if not hits or not len(self.suppressed):
            return hits
        templates = self.catalog.face_templates([fid for fid, _ in hits])
        ids = [fid for fid, _ in hits if fid in templates]
        if not ids:
            return hits
        objected = suppression_matches(
            self.suppressed, np.vstack([templates[f] for f in ids]), self.settings.erasure_review_threshold
        )
        hidden = {fid for fid, out in zip(ids, objected, strict=True) if out}
        return [(fid, score) for fid, score in hits if fid not in hidden]

    def _restricted_source_ids(self) -> np.ndarray | None:
        """Sources whose faces ordinary search must not show; the index filters them out itself
        (every vector carries its source id), so no list of their faces is built per search."""
        restricted = [s.id for s in self.catalog.sources() if s.status != "active"]
        return np.asarray(restricted, dtype=np.int64) if restricted else None

    def verify_audit(self) -> Verification:
        return self.catalog.verify_audit()

    def audit_entries(
        self, *, action: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before`` a sequence number pages back."""
        with self.catalog.session() as session:
            return audit.entries(session, action=action, limit=limit, before=before)

    def count_audited(self, action: str, *, since: datetime) -> int:
        """How many times ``action`` was recorded since ``since`` (e.g. searches today)."""
        with self.catalog.session() as session:
            query = select(func.count()).where(AuditEntryRow.action == action, AuditEntryRow.at >= since)
            return int(session.scalar(query) or 0)

    # -- index maintenance -----------------------------------------------------------------------

    def remove_faces(self, face_ids: list[int], *, actor: str = "system", reason: str = "operator") -> int:
        """Erase faces everywhere (catalog rows, crops, vectors; physically). Returns faces erased."""
        from lethe.privacy.erasure import Eraser

        with self.writing():
            receipt = Eraser(self).erase(face_ids, reason=reason, actor=actor)
        return len(receipt.erased_faces)

    def reembed(self, *, actor: str = "system", progress: Progress | None = None) -> ReembedReport:
        """Move faces whose templates another model made to the configured embedder (lethe.reembed)."""
        from lethe.reembed import reembed

        return reembed(self, actor=actor, progress=progress)

    def rotate_master_key(self, *, actor: str = "system") -> int:
        """New master key; every data key re-wrapped with it (see lethe.privacy.crypto). Returns the
        number of keys re-wrapped."""
        with self.writing():
            count = self.keyring.rotate_master()
            self.catalog.record(AuditRecord(actor, "keys.rotate", {"keys": count}))
        return count

    def rebuild_index(self, *, actor: str = "system") -> dict[str, object]:
        """Rebuild the vector index from the catalog's templates; drop crops with no catalog face."""
        with self.writing():
            self._rebuild()
            known = {int(i) for i in self.index.ids()}
            orphans = [fid for fid in self.crops.face_ids_on_disk() if fid not in known]
            for face_id in orphans:
                self.crops.delete(face_id)
            stats = dict(self.index.stats())
            stats["orphan_crops_removed"] = len(orphans)
            self.catalog.record(AuditRecord(actor, "index.rebuild", stats))
        return stats

    def _rebuild(self) -> None:
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

    def _maybe_restructure(self) -> None:
        stats = self.index.stats()
        if (
            self.settings.index_kind == "auto"
            and stats.get("kind") == "flat"
            and len(self.index) > self.settings.index_exact_max_faces
        ):
            self._rebuild()

    def _resume_erasures(self) -> None:
        from lethe.privacy.erasure import Eraser

        eraser = Eraser(self)
        if eraser.pending():
            with self.writing():
                for receipt in eraser.resume():
                    log.warning("resumed interrupted erasure job %d", receipt.job_id)

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
        same = len(catalog_ids) == len(index_ids) and np.array_equal(np.sort(catalog_ids), np.sort(index_ids))
        if same and not self.index.stats().get("unsourced"):
            return
        if same:  # written before vectors carried their source: restrictions need it
            log.warning("vector index has vectors without a source id; rebuilding")
            with self.writing():
                self._rebuild()
            return
        log.warning(
            "vector index out of step with the catalog (%d vs %d); rebuilding",
            len(index_ids),
            len(catalog_ids),
        )
        with self.writing():
            self._rebuild()
