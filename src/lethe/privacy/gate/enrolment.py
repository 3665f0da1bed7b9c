"""Consents through the gate: consent texts, enrolments, the enrolment's scan of the photos already
stored, the links between consents and the faces their templates matched, and withdrawal.

Only here (and in :mod:`lethe.privacy.gate.ingest`, which links the faces an ``enrolled_only``
ingest stores) are consent rows written. The enrolment template and the contact address are sealed
with the source's data key (shredding the source makes them noise too).

The scan reads each photo of the source at the path it was ingested from (checked against its
sha256, as :mod:`lethe.privacy.gate.reembed` does), detects and embeds it in memory, and compares
every face with the templates of the consents being scanned only (those of one source that enrolled
together share one pass): a match that overlaps a face already stored (found for another consent)
is linked to it; a new match is stored, with its crop and vector; every other face is dropped there
and then. It keeps its place (``scanned_upto``) in the same transaction as
each photo's faces, so an interrupted scan resumes where it stopped, and holds one photo at a time.
Faces that an objection or an erasure keeps out are not stored, as at ingest.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from lethe.catalog.consent_tables import ConsentFaceRow, ConsentRow, ConsentTextRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow
from lethe.errors import ConflictError, LetheError, NotFoundError
from lethe.imaging import decode_image
from lethe.privacy import audit
from lethe.privacy.consent import Enrolled, contact_aad, enrolled, template_aad
from lethe.privacy.gate.reembed import pair_faces, read_photo
from lethe.types import Box, FaceRecord, match_any

if TYPE_CHECKING:
    from lethe.catalog import Source
    from lethe.pipeline import FacePipeline
    from lethe.privacy.gate.erasure import Eraser, ErasureReceipt
    from lethe.privacy.objections import ActiveTemplates
    from lethe.store import Store

log = logging.getLogger(__name__)

#: The erasure reason of a withdrawn consent: the photos stay in the source (for the other guests),
#: only the person's faces go.
CONSENT_WITHDRAWN = "consent_withdrawn"
SCAN_BATCH = 16


def set_text(store: Store, source: Source, text: str, *, actor: str) -> int:
    """Add a version of a source's consent text; its number."""
    at = now_utc()
    digest = hashlib.sha256(text.encode()).hexdigest()
    with store.catalog.session() as session, session.begin():
        last = session.scalar(
            select(ConsentTextRow.version)
            .where(ConsentTextRow.source_id == source.id)
            .order_by(ConsentTextRow.version.desc())
            .limit(1)
        )
        version = (last or 0) + 1
        session.add(
            ConsentTextRow(
                source_id=source.id,
                version=version,
                text=text,
                sha256=digest,
                created_at=at,
                created_by=actor,
            )
        )
        audit.append(
            session,
            actor=actor,
            action="consent.text",
            details={"source_id": source.id, "version": version, "sha256": digest},
            at=at,
        )
    return version


def enrol(
    store: Store,
    source: Source,
    template: np.ndarray,
    *,
    text_version: int,
    contact: str | None,
    channel: str,
    age_attestation: str,
    age_threshold: int,
    link_hash: str | None,
    actor: str,
) -> int:
    """Record a consent with its sealed template (and contact); its id. Its scan is pending."""
    at = now_utc()
    vector = np.ascontiguousarray(template, dtype=np.float32)
    store.keyring.ensure(source.id)
    with store.catalog.session() as session, session.begin():
        text_id = session.scalar(
            select(ConsentTextRow.id).where(
                ConsentTextRow.source_id == source.id, ConsentTextRow.version == text_version
            )
        )
        if text_id is None:
            raise NotFoundError(f"source {source.name!r} has no consent text version {text_version}")
        row = ConsentRow(
            source_id=source.id,
            text_id=text_id,
            channel=channel,
            age_attestation=age_attestation,
            age_threshold=age_threshold,
            given_at=at,
            given_by=actor,
            model_sha256=store.model_sha256,
            link_hash=link_hash,
            scan_state="pending",
            scanned_upto=0,
        )
        session.add(row)
        session.flush()
        row.template = store.keyring.seal(source.id, vector.tobytes(), template_aad(row.id))
        if contact:
            row.contact = store.keyring.seal(source.id, contact.encode(), contact_aad(row.id))
        audit.append(
            session,
            actor=actor,
            action="consent.give",
            details={
                "consent_id": row.id,
                "source_id": source.id,
                "text_version": text_version,
                "channel": channel,
                "age_attestation": age_attestation,
                "age_threshold": age_threshold,
            },
            at=at,
        )
        return row.id


def link(session: Session, pairs: list[tuple[int, list[int]]]) -> None:
    """Record which consents each stored face matched, inside the caller's transaction."""
    rows = [{"consent_id": c, "face_id": f} for f, consents in pairs for c in consents]
    if rows:
        session.execute(insert(ConsentFaceRow), rows)


def unlink_faces(session: Session, face_ids: list[int]) -> None:
    """Erased faces leave every consent's list (inside the erasure's transaction)."""
    if face_ids:
        session.execute(delete(ConsentFaceRow).where(ConsentFaceRow.face_id.in_(face_ids)))


@dataclass
class ScanReport:
    photos: int = 0
    linked: int = 0
    stored: int = 0
    kept_out: int = 0
    unreadable: int = 0


def scan(
    store: Store,
    consent_ids: Sequence[int],
    pipeline: FacePipeline,
    objections: ActiveTemplates,
    *,
    actor: str,
) -> ScanReport:
    """Look for some consents' people in their source's stored photos (see the module), in one pass
    over the photos: consents of one source whose scans stand at the same place (new ones all start
    at the beginning), so that guests who enrol together cost one reading of the event."""
    report = ScanReport()
    with store.catalog.session() as session:
        rows = [session.get(ConsentRow, int(c)) for c in consent_ids]
        if any(r is None for r in rows):
            raise NotFoundError(f"no consent among {sorted(consent_ids)}")
        todo = [r for r in rows if r is not None and r.withdrawn_at is None and r.scan_state != "done"]
        if not todo:
            return report
        places = {(r.source_id, r.scanned_upto) for r in todo}
        if len(places) > 1:
            raise ConflictError("consents scanned together must be of one source, at the same place")
        ((source_id, after),) = places
        ids = [r.id for r in todo]
    mine = enrolled(store, source_id, only=ids)
    if len(mine):
        while photos := _photos_after(store, source_id, after):
            for image_id, uri, sha256 in photos:
                _scan_photo(store, ids, mine, pipeline, objections, image_id, uri, sha256, report, actor)
                after = image_id
            store.index.save()
    at = now_utc()
    with store.catalog.session() as session, session.begin():
        for row in session.scalars(select(ConsentRow).where(ConsentRow.id.in_(ids))):
            row.scan_state = "done"
        audit.append(
            session,
            actor=actor,
            action="consent.scan",
            details={
                "consent_ids": ids,
                "photos": report.photos,
                "faces_linked": report.linked,
                "faces_stored": report.stored,
                "faces_kept_out": report.kept_out,
                "unreadable": report.unreadable,
            },
            at=at,
        )
    return report


def _photos_after(store: Store, source_id: int, after: int) -> list[tuple[int, str, str]]:
    with store.catalog.session() as session:
        rows = session.execute(
            select(ImageRow.id, ImageRow.uri, ImageRow.sha256)
            .where(ImageRow.source_id == source_id, ImageRow.id > after)
            .order_by(ImageRow.id)
            .limit(SCAN_BATCH)
        ).all()
    return [(int(i), str(u), str(s)) for i, u, s in rows]


def _scan_photo(
    store: Store,
    consent_ids: list[int],
    mine: Enrolled,
    pipeline: FacePipeline,
    objections: ActiveTemplates,
    image_id: int,
    uri: str,
    sha256: str,
    report: ScanReport,
    actor: str,
) -> None:
    settings = store.settings
    report.photos += 1
    found: list[FaceRecord] = []
    data = read_photo(uri, settings.max_image_bytes)
    if isinstance(data, str) or hashlib.sha256(data).hexdigest() != sha256:
        report.unreadable += 1
    else:
        try:
            image = decode_image(
                data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes
            )
            found = pipeline.faces(image.pixels)
        except LetheError:
            report.unreadable += 1
    matched: list[FaceRecord] = []
    consents_of: list[list[int]] = []
    if found:
        vectors = np.array([f.embedding for f in found], dtype=np.float32)
        hits = mine.matches(vectors, settings.match_threshold)
        out = match_any(objections.excluded, vectors, settings.erasure_review_threshold) | match_any(
            objections.erased, vectors, settings.erasure_auto_threshold
        )
        report.kept_out += int((out & np.array([bool(h) for h in hits])).sum())
        for face, consents, kept_out in zip(found, hits, out, strict=True):
            if consents and not kept_out:
                matched.append(face)
                consents_of.append(consents)
    with store.catalog.session() as session:
        stored = {
            int(r.id): Box(r.box_left, r.box_top, r.box_right, r.box_bottom)
            for r in session.scalars(select(FaceRow).where(FaceRow.image_id == image_id))
        }
    pairs = pair_faces(stored, matched)  # stored face id -> index in matched
    known = [(face_id, consents_of[j]) for face_id, j in pairs.items()]
    used = set(pairs.values())
    new = [(f, consents_of[j]) for j, f in enumerate(matched) if j not in used]

    def keep_place(session: Session) -> None:
        link(session, known)
        for row in session.scalars(select(ConsentRow).where(ConsentRow.id.in_(consent_ids))):
            row.scanned_upto = image_id

    if new:
        ids = _store_faces(store, image_id, new, keep_place, actor, pipeline.embedder.name)
        report.stored += len(ids)
    else:
        with store.catalog.session() as session, session.begin():
            keep_place(session)
    report.linked += sum(len(c) for _, c in known) + sum(len(c) for _, c in new)


def _store_faces(
    store: Store,
    image_id: int,
    new: list[tuple[FaceRecord, list[int]]],
    also: Callable[[Session], None],
    actor: str,
    embedder: str,
) -> list[int]:
    faces = [face for face, _ in new]
    consents_of = {id(face): consents for face, consents in new}
    crops = store.crops
    written: list[int] = []
    source_id = -1

    def write_crops(new_faces: list[tuple[int, FaceRecord]]) -> None:
        written.extend(face_id for face_id, _ in new_faces)
        crops.begin(written)
        for face_id, face in new_faces:
            crops.write(face_id, face.crop_jpeg, source_id=source_id)

    with store.catalog.session() as session:
        source_id = int(session.scalar(select(ImageRow.source_id).where(ImageRow.id == image_id)) or -1)
    try:
        ids = store.catalog.add_faces(
            image_id,
            faces,
            detector=store.settings.detector,
            embedder=embedder,
            model_sha256=store.model_sha256,
            crop_path_for=crops.relative_path,
            audit_as=audit.record(
                actor, "consent.faces", {"consent_ids": sorted({c for _, cs in new for c in cs})}
            ),
            before_commit=write_crops,
            links=lambda session, new_faces: link(
                session, [(f, consents_of[id(face)]) for f, face in new_faces]
            ),
            also=also,
        )
    except BaseException:
        for face_id in written:
            crops.delete(face_id)
        raise
    finally:
        crops.settle()
    store.index.add(
        np.asarray(ids, dtype=np.int64),
        np.vstack([f.embedding for f in faces]).astype(np.float32),
        sources=np.full(len(ids), source_id, dtype=np.int64),
    )
    return ids


def withdraw(store: Store, eraser: Eraser, consent_id: int, *, actor: str) -> ErasureReceipt | None:
    """Erase the faces a consent matched (the photos stay), then delete its template and contact."""
    with store.catalog.session() as session:
        row = session.get(ConsentRow, consent_id)
        if row is None:
            raise NotFoundError(f"no consent {consent_id}")
        if row.withdrawn_at is not None:
            raise ConflictError(f"consent {consent_id} was already withdrawn")
        source_id = row.source_id
        face_ids = list(
            session.scalars(select(ConsentFaceRow.face_id).where(ConsentFaceRow.consent_id == consent_id))
        )
    receipt = eraser.erase(face_ids, reason=CONSENT_WITHDRAWN, actor=actor) if face_ids else None
    at = now_utc()
    with store.catalog.session() as session, session.begin():
        row = session.get(ConsentRow, consent_id)
        if row is None:
            raise NotFoundError(f"no consent {consent_id}")
        row.withdrawn_at, row.withdrawn_by = at, actor
        row.template, row.contact = None, None
        row.scan_state = "done"
        row.erasure_job_id = receipt.job_id if receipt else None
        session.execute(delete(ConsentFaceRow).where(ConsentFaceRow.consent_id == consent_id))
        audit.append(
            session,
            actor=actor,
            action="consent.withdraw",
            details={
                "consent_id": consent_id,
                "source_id": source_id,
                "erased_faces": len(receipt.erased_faces) if receipt else 0,
                "erasure_job_id": receipt.job_id if receipt else None,
            },
            at=at,
        )
    store.catalog.checkpoint()  # the template's and the contact's bytes leave the file
    log.info("consent %d withdrawn: %d faces erased", consent_id, len(face_ids))
    return receipt
