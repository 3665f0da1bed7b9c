"""Ingest through the gate: the one code path that stores new faces — their catalog rows, sealed
templates, sealed crops and vectors.

It refuses a source that is not active (stopped by an order, or whose basis lapsed), skips photos
erased before from any source (tombstones), drops every face that matches an active objection or
erasure suppression (under the configured model, and under the models of older entries, whose
templates each new face also gets in memory only; a photo whose faces were all erased copies is not
stored at all), keeps of a photo with no face to store (none found, or each an objector's) only its
hash, no row and no path (re-ingesting skips it), and writes what is left in
one catalog transaction with its audit entry, crops on disk before the commit (journalled, so the
next open deletes them if the process dies first), vectors after it. :meth:`lethe.privacy.gate.Gate.ingesting`
holds the store's write lock for the whole ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lethe.catalog import ImageMeta, Source
from lethe.errors import LawfulBasisError
from lethe.ingest import Committed, Job, ProcessedImage
from lethe.privacy import audit
from lethe.privacy.consent import Enrolled, enrolled
from lethe.privacy.gate import enrolment
from lethe.privacy.objections import INGEST_SCOPES, ActiveTemplates, Entry, entries_of_other_models
from lethe.store import Store
from lethe.types import FaceRecord, match_any

Batch = list[tuple[Job, ProcessedImage]]


def admit(store: Store, source_name: str) -> Source:
    """The source, if ingest into it is allowed now."""
    source = store.catalog.source(source_name)
    if source.status != "active":
        raise LawfulBasisError(f"source {source.name!r} is {source.status}; ingest is refused")
    return source


class IngestGate:
    """Stores the faces of one ingest into ``source`` (see the module)."""

    def __init__(
        self,
        store: Store,
        objections: ActiveTemplates,
        source: Source,
        *,
        actor: str,
        detector: str,
        embedder: str,
        uri_for: Callable[[Path], str] | None = None,
    ) -> None:
        self.store = store
        self.objections = objections
        self.source = source
        self.actor = actor
        self.detector = detector
        self.embedder = embedder
        self.uri_for = uri_for
        #: Objections and erasure suppressions made under another model (docs/models.md, "Changing
        #: the embedder").
        self.old_objections: list[Entry] = [
            e for e in entries_of_other_models(store) if e.scope in INGEST_SCOPES
        ]
        #: The people enrolled in an ``enrolled_only`` source (their templates in memory only).
        self.enrolled: Enrolled | None = (
            enrolled(store, source.id) if source.mode == "enrolled_only" else None
        )

    @property
    def other_models(self) -> tuple[str, ...]:
        """The models each new face must also be embedded with, to be checked against old objections."""
        return tuple(sorted({e.model_sha256 for e in self.old_objections}))

    def is_known(self, digest: str) -> bool:
        """Already in this source, or erased from any source (a tombstone)."""
        return bool(self.store.catalog.known_hashes(self.source.id, [digest]))

    def is_erased(self, digest: str) -> bool:
        """Erased before from any source: its tombstone blocks it (a known photo, reported apart)."""
        return bool(self.store.catalog.erased_hashes([digest]))

    def commit(self, batch: Batch) -> Committed:
        """Store one batch of processed photos (what it did: :class:`lethe.ingest.Committed`)."""
        offered = len(batch)
        no_face = sum(1 for _, processed in batch if not processed.faces)
        batch, suppressed = self._without_objections(batch)
        batch, discarded, consents_of, seen = self._only_enrolled(batch)
        faceless = [job.sha256 for job, processed in batch if not processed.faces and id(job) not in seen]
        items = [
            (
                ImageMeta(
                    sha256=job.sha256,
                    uri=self.uri_for(job.item.path) if self.uri_for else str(job.item.path),
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
            if processed.faces or id(job) in seen
        ]
        stored = self._write_rows_and_crops(items, faceless, consents_of)
        ids: list[int] = []
        vectors: list[np.ndarray] = []
        for (_, faces), (image_id, face_ids) in zip(items, stored, strict=True):
            if image_id < 0:
                continue  # stored meanwhile by another process: skipped
            for face, face_id in zip(faces, face_ids, strict=True):
                ids.append(face_id)
                vectors.append(face.embedding)
        if ids:
            self.store.index.add(
                np.asarray(ids, dtype=np.int64),
                np.vstack(vectors).astype(np.float32),
                sources=np.full(len(ids), self.source.id, dtype=np.int64),
            )
        return Committed(len(ids), suppressed, offered - len(batch), no_face, discarded)

    def _only_enrolled(self, batch: Batch) -> tuple[Batch, int, dict[int, list[int]], set[int]]:
        """In an ``enrolled_only`` source, keep only the faces that match an enrolled person's
        template (in memory; the others are dropped here, before any write). Returns the batch, how
        many faces were discarded, the consents each kept face matched (by the face object's id)
        and the jobs whose photo showed faces but none of an enrolled person: their row is kept,
        with no face, so that a later enrolment's scan finds the photo."""
        if self.enrolled is None:
            return batch, 0, {}, set()
        threshold = self.store.settings.match_threshold
        kept: Batch = []
        discarded = 0
        consents_of: dict[int, list[int]] = {}
        seen: set[int] = set()
        for job, processed in batch:
            if not processed.faces:
                kept.append((job, processed))
                continue
            vectors = np.array([f.embedding for f in processed.faces], dtype=np.float32)
            hits = self.enrolled.matches(vectors, threshold)
            faces = [f for f, consents in zip(processed.faces, hits, strict=True) if consents]
            for face, consents in zip(processed.faces, hits, strict=True):
                if consents:
                    consents_of[id(face)] = consents
            discarded += len(processed.faces) - len(faces)
            if not faces:
                seen.add(id(job))
            kept.append((job, ProcessedImage(processed.width, processed.height, processed.format, faces)))
        return kept, discarded, consents_of, seen

    def _without_objections(self, batch: Batch) -> tuple[Batch, int]:
        excluded, erased = self.objections.excluded, self.objections.erased
        if not len(excluded) and not len(erased) and not self.old_objections:
            return batch, 0
        settings = self.store.settings
        kept: Batch = []
        suppressed = 0
        for job, processed in batch:
            if not processed.faces:
                kept.append((job, processed))
                continue
            found = np.array([f.embedding for f in processed.faces], dtype=np.float32)
            objected = match_any(excluded, found, settings.erasure_review_threshold)
            copied = match_any(erased, found, settings.erasure_auto_threshold)
            for entry in self.old_objections:
                theirs = np.array([f.others[entry.model_sha256] for f in processed.faces], np.float32)
                hit = match_any(entry.templates, theirs, entry.threshold)
                if entry.scope == "objection":
                    objected |= hit
                else:
                    copied |= hit
            out = objected | copied
            suppressed += int(out.sum())
            if copied.all():
                continue  # a copy of an erased photo: not even its row is stored
            faces = [f for f, drop in zip(processed.faces, out, strict=True) if not drop]
            kept.append((job, ProcessedImage(processed.width, processed.height, processed.format, faces)))
        return kept, suppressed

    def _write_rows_and_crops(
        self,
        items: list[tuple[ImageMeta, list[FaceRecord]]],
        faceless: list[str],
        consents_of: dict[int, list[int]],
    ) -> list[tuple[int, list[int]]]:
        crops = self.store.crops
        written: list[int] = []

        def write_crops(new_faces: list[tuple[int, FaceRecord]]) -> None:
            # Inside the catalog transaction: crops are on disk before their faces commit. The
            # journal lets the next open delete them if this process dies before the commit.
            written.extend(face_id for face_id, _ in new_faces)
            crops.begin(written)
            for face_id, face in new_faces:
                crops.write(face_id, face.crop_jpeg, source_id=self.source.id)

        try:
            return self.store.catalog.add_images(
                self.source.id,
                items,
                detector=self.detector,
                embedder=self.embedder,
                model_sha256=self.store.model_sha256,
                crop_path_for=crops.relative_path,
                audit_as=audit.record(
                    self.actor, "ingest", {"detector": self.detector, "embedder": self.embedder}
                ),
                before_commit=write_crops,
                faceless=faceless,
                links=(
                    (
                        lambda session, new: enrolment.link(
                            session, [(f, consents_of[id(face)]) for f, face in new]
                        )
                    )
                    if consents_of
                    else None
                ),
            )
        except BaseException:
            for face_id in written:  # rolled back: these faces do not exist
                crops.delete(face_id)
            raise
        finally:
            crops.settle()
