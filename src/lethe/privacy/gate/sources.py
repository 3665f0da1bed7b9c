"""A deleted source's personal data erased: every face (rows, templates, crops, vectors) through the
erasure path with its receipt, then what the erasure leaves of the source: its remaining photo rows
(photos kept for enrolled people), the hashes of its photos with no face, the tombstones this
deletion made, its consents' sealed templates and contact addresses; last, its data key shredded.

A source deletion is not a data subject's erasure: the tombstones it made are dropped, so the same
photos may be registered again under another source with a lawful basis (a tombstone from an earlier
erasure request stays, and keeps its photo out as before). Called by :meth:`Gate.delete_source`
under the write lock.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from lethe.catalog.consent_tables import ConsentFaceRow, ConsentRow
from lethe.catalog.privacy_tables import ErasedImageRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FacelessImageRow, FaceRow, ImageRow
from lethe.privacy import audit

if TYPE_CHECKING:
    from lethe.privacy.gate.erasure import Eraser, ErasureReceipt
    from lethe.store import Store

log = logging.getLogger(__name__)

#: The erasure job's reason when a source is deleted.
SOURCE_DELETED = "source deleted"


def delete_source(store: Store, eraser: Eraser, source_id: int, *, actor: str) -> ErasureReceipt:
    """Erase every face of the source, then its other photo records and consent secrets, and shred
    its key. Idempotent: run again after a crash, it erases what is left."""
    with store.catalog.session() as session:
        face_ids = list(
            session.scalars(
                select(FaceRow.id)
                .join(ImageRow, FaceRow.image_id == ImageRow.id)
                .where(ImageRow.source_id == source_id)
            )
        )
    receipt = eraser.erase(face_ids, reason=SOURCE_DELETED, actor=actor)
    at = now_utc()
    with store.catalog.session() as session, session.begin():
        photos = session.scalars(select(ImageRow).where(ImageRow.source_id == source_id)).all()
        for photo in photos:  # photos with no face left that the erasure kept (enrolled sources)
            session.delete(photo)
        faceless = list(
            session.scalars(select(FacelessImageRow.sha256).where(FacelessImageRow.source_id == source_id))
        )
        session.execute(delete(FacelessImageRow).where(FacelessImageRow.source_id == source_id))
        made = set(receipt.image_sha256)
        dropped = [
            t
            for t in session.scalars(select(ErasedImageRow).where(ErasedImageRow.source_id == source_id))
            if t.sha256 in made
        ]
        for tombstone in dropped:
            session.delete(tombstone)
        consents = session.scalars(select(ConsentRow).where(ConsentRow.source_id == source_id)).all()
        closed = 0
        for consent in consents:
            if consent.template is None and consent.contact is None and consent.withdrawn_at is not None:
                continue
            closed += 1
            consent.template, consent.contact, consent.scan_state = None, None, "done"
            if consent.withdrawn_at is None:
                consent.withdrawn_at, consent.withdrawn_by = at, actor
        if consents:
            session.execute(
                delete(ConsentFaceRow).where(ConsentFaceRow.consent_id.in_([c.id for c in consents]))
            )
        audit.append(
            session,
            actor=actor,
            action="source.purge",
            details={
                "source_id": source_id,
                "erasure_job_id": receipt.job_id,
                "faces": len(receipt.erased_faces),
                "photos": len(receipt.erased_images) + len(photos),
                "faceless_photos": len(faceless),
                "tombstones_dropped": len(dropped),
                "consents_closed": closed,
            },
            at=at,
        )
    store.keyring.shred(source_id)
    store.catalog.checkpoint()  # the deleted rows' bytes leave the catalog's files
    log.info("source %d deleted: %d faces erased", source_id, len(receipt.erased_faces))
    return receipt
