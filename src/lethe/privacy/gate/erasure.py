"""Physical erasure of faces: planned first, then executed idempotently, resumed after a crash.

1. *Plan*: an ``erasure_job`` row with the face ids is committed (with an audit entry) before
   anything is deleted.
2. *Execute*, in one catalog transaction: delete the face rows; delete each photo left with no face
   and keep only its hash as a tombstone (so re-ingesting the folder does not bring it back); audit.
   Then delete the crop files, remove the vectors and rewrite the index file, and purge the catalog
   (:meth:`~lethe.catalog.Catalog.checkpoint`): SQLite runs with ``secure_delete`` and its
   write-ahead log is checkpointed and truncated; PostgreSQL's tables are rewritten (``VACUUM FULL``).
3. *Complete*: the job gets its receipt (counts, ids, photo hashes, timestamps), signed with the
   installation's document key (:func:`signed_receipt`) so the person can check theirs.

A tombstone keeps its photo out of every source, not only the one it was erased from. The only way
back is :func:`lift`, an admin's audited override (``lethe erasure lift``, ``POST
/api/erasures/lift``): it deletes the tombstones of one photo hash, or those of one erasure job
together with its request's erasure suppression (:mod:`lethe.privacy.objections`).

Every step tolerates having run before, so :meth:`Eraser.resume` simply executes pending jobs again
when the engine opens. Run it through :class:`lethe.privacy.gate.Gate`, which holds the write lock.
A face that was erased can never come back: its row, crop and vector are gone and the index is
checked against the catalog on every open.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select

from lethe.catalog.privacy_tables import ErasedImageRow, ErasureJobRow, SuppressionRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow, FaceRow, ImageRow
from lethe.errors import CatalogError, ConflictError, InputError, NotFoundError
from lethe.privacy import audit, recipient_notices, signatures
from lethe.privacy.gate.enrolment import CONSENT_WITHDRAWN, unlink_faces
from lethe.privacy.objections import ERASURE

if TYPE_CHECKING:
    from lethe.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    job_id: int
    reason: str
    erased_faces: list[int]
    erased_images: list[int]
    image_sha256: list[str]
    crops_deleted: int
    vectors_removed: int
    planned_at: datetime
    completed_at: datetime
    #: The Ed25519 signature record over the rest (lethe.privacy.signatures); None on a receipt
    #: made before receipts were signed.
    signature: dict[str, str] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "reason": self.reason,
            "erased_faces": self.erased_faces,
            "erased_images": self.erased_images,
            "image_sha256": self.image_sha256,
            "crops_deleted": self.crops_deleted,
            "vectors_removed": self.vectors_removed,
            "planned_at": self.planned_at.isoformat(),
            "completed_at": self.completed_at.isoformat(),
            "signature": self.signature,
        }


class Eraser:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.catalog = store.catalog

    def plan(
        self,
        face_ids: Sequence[int],
        *,
        reason: str,
        actor: str,
        request_id: int | None = None,
        order_id: int | None = None,
    ) -> int:
        ids = sorted({int(f) for f in face_ids})
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            job = ErasureJobRow(
                reason=reason,
                request_id=request_id,
                order_id=order_id,
                actor=actor,
                face_ids=json.dumps(ids),
                state="planned",
                created_at=at,
            )
            session.add(job)
            session.flush()
            details = {
                "job_id": job.id,
                "reason": reason,
                "faces": len(ids),
                "request_id": request_id,
                "order_id": order_id,
            }
            audit.append(session, actor=actor, action="erasure.planned", details=details, at=at)
            return job.id

    def erase(
        self, face_ids: Sequence[int], *, reason: str, actor: str, **links: int | None
    ) -> ErasureReceipt:
        """Plan and execute in one call (the plan is durable before anything is deleted)."""
        return self.execute(self.plan(face_ids, reason=reason, actor=actor, **links))

    def execute(self, job_id: int) -> ErasureReceipt:
        with self.catalog.session() as session:
            job = session.get(ErasureJobRow, job_id)
            if job is None:
                raise NotFoundError(f"no erasure job {job_id}")
            if job.state == "done" and job.receipt:
                return _receipt(json.loads(job.receipt))
            ids: list[int] = json.loads(job.face_ids)
            planned_at, reason, actor = job.created_at, job.reason, job.actor
        faces, images, hashes = self._delete_rows(job_id, ids, actor, keep_photos=reason == CONSENT_WITHDRAWN)
        if len(faces) < len(ids):
            # A run killed after its rows were deleted: the receipt still lists what the job erased.
            faces, images, hashes = self._with_earlier_rows(job_id, faces, images, hashes)
        crops = sum(self.store.crops.delete(f) for f in ids)
        delete_exports_with(self.store, ids)
        removed = self.store.index.remove(np.asarray(ids, dtype=np.int64))
        self.store.index.save()
        self.catalog.checkpoint()
        receipt = ErasureReceipt(
            job_id=job_id,
            reason=reason,
            erased_faces=faces,
            erased_images=images,
            image_sha256=hashes,
            crops_deleted=crops,
            vectors_removed=removed,
            planned_at=planned_at,
            completed_at=now_utc(),
        )
        receipt = signed_receipt(self.store, receipt)
        with self.catalog.session() as session, session.begin():
            row = session.get(ErasureJobRow, job_id)
            if row is None:
                raise CatalogError(f"erasure job {job_id} vanished while it ran")
            row.state, row.completed_at = "done", receipt.completed_at
            row.receipt = json.dumps(receipt.as_dict())
            details = {
                "job_id": job_id,
                "faces": len(faces),
                "images": len(images),
                "vectors_removed": removed,
            }
            audit.append(
                session, actor=actor, action="erasure.done", details=details, at=receipt.completed_at
            )
        log.info("erasure job %d: %d faces, %d photos", job_id, len(faces), len(images))
        return receipt

    def _delete_rows(
        self, job_id: int, ids: list[int], actor: str, *, keep_photos: bool = False
    ) -> tuple[list[int], list[int], list[str]]:
        """Delete faces and the photos they leave empty, in one transaction. Returns what existed.
        ``keep_photos`` (a withdrawn consent): the photos stay, with no tombstone, for the other
        people enrolled in their source; only the person's faces go."""
        if not ids:
            return [], [], []
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            faces = session.scalars(select(FaceRow).where(FaceRow.id.in_(ids))).all()
            face_ids = sorted(f.id for f in faces)
            image_ids = sorted({f.image_id for f in faces})
            # Art. 19 / 17(2): the recipients of these faces to notify, in the erasure's transaction.
            recipient_notices.on_erasure(
                self.store, session, job_id=job_id, face_ids=face_ids, actor=actor, at=at
            )
            for face in faces:
                session.delete(face)
            unlink_faces(session, face_ids)
            session.flush()
            emptied: list[int] = []
            hashes: list[str] = []
            for image_id in [] if keep_photos else image_ids:
                left = session.scalar(select(func.count(FaceRow.id)).where(FaceRow.image_id == image_id))
                if left:
                    continue
                image = session.get(ImageRow, image_id)
                if image is None:
                    continue
                emptied.append(image.id)
                hashes.append(image.sha256)
                if session.get(ErasedImageRow, (image.source_id, image.sha256)) is None:
                    session.add(ErasedImageRow(source_id=image.source_id, sha256=image.sha256, erased_at=at))
                session.delete(image)
            if face_ids:
                details = {
                    "job_id": job_id,
                    "face_ids": face_ids,
                    "image_ids": emptied,
                    "image_sha256": hashes,
                }
                audit.append(session, actor=actor, action="erasure.rows", details=details, at=at)
        return face_ids, emptied, hashes

    def _with_earlier_rows(
        self, job_id: int, faces: list[int], images: list[int], hashes: list[str]
    ) -> tuple[list[int], list[int], list[str]]:
        """Add what earlier, interrupted runs of the job deleted (their ``erasure.rows`` entries
        are committed with the deletion itself)."""
        all_faces = set(faces)
        all_images = dict(zip(images, hashes, strict=True))
        with self.catalog.session() as session:
            for text in session.scalars(
                select(AuditEntryRow.details).where(AuditEntryRow.action == "erasure.rows")
            ):
                details = json.loads(text)
                if details.get("job_id") != job_id:
                    continue
                all_faces.update(details.get("face_ids", []))
                earlier = details.get("image_sha256") or [None] * len(details.get("image_ids", []))
                for image_id, sha in zip(details.get("image_ids", []), earlier, strict=True):
                    all_images.setdefault(image_id, sha)
        ordered = sorted(all_images)
        return sorted(all_faces), ordered, [all_images[i] or "" for i in ordered]

    def pending(self) -> list[int]:
        with self.catalog.session() as session:
            return list(session.scalars(select(ErasureJobRow.id).where(ErasureJobRow.state == "planned")))

    def resume(self) -> list[ErasureReceipt]:
        """Finish every erasure that a crash interrupted."""
        return [self.execute(job_id) for job_id in self.pending()]

    def receipt(self, job_id: int) -> ErasureReceipt | None:
        with self.catalog.session() as session:
            job = session.get(ErasureJobRow, job_id)
            return _receipt(json.loads(job.receipt)) if job and job.receipt else None


SHA256_HEX = frozenset("0123456789abcdef")


def lift(
    store: Store, *, actor: str, reason: str, job_id: int | None = None, sha256: str | None = None
) -> dict[str, object]:
    """The admin's override (see the module): exactly one of ``job_id`` (its photos' tombstones and
    its request's erasure suppression) or ``sha256`` (that photo's tombstones). Audited as
    ``erasure.lift`` with the reason kept off the chain; what was lifted is returned."""
    reason = reason.strip()
    if len(reason) < 10:
        raise InputError("an override of an erasure needs a stated reason (at least 10 characters)")
    if (job_id is None) == (sha256 is None):
        raise InputError("name either an erasure job or a photo's sha256")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if len(sha256) != 64 or not set(sha256) <= SHA256_HEX:
            raise InputError("a photo's sha256 is 64 hexadecimal digits")
    at = now_utc()
    with store.catalog.session() as session, session.begin():
        request_id: int | None = None
        if job_id is not None:
            job = session.get(ErasureJobRow, job_id)
            if job is None:
                raise NotFoundError(f"no erasure job {job_id}")
            if job.state != "done" or not job.receipt:
                raise ConflictError(f"erasure job {job_id} has not finished")
            hashes = sorted({h for h in json.loads(job.receipt)["image_sha256"] if h})
            request_id = job.request_id
        else:
            hashes = [str(sha256)]
        tombstones = session.scalars(select(ErasedImageRow).where(ErasedImageRow.sha256.in_(hashes))).all()
        suppressions = (
            session.scalars(
                select(SuppressionRow).where(
                    SuppressionRow.request_id == request_id,
                    SuppressionRow.scope == ERASURE,
                    SuppressionRow.withdrawn_at.is_(None),
                )
            ).all()
            if request_id is not None
            else []
        )
        if not tombstones and not suppressions:
            raise NotFoundError("nothing to lift: no tombstone or erasure suppression in force for it")
        for tombstone in tombstones:
            session.delete(tombstone)
        for row in suppressions:
            row.withdrawn_at, row.templates = at, None
        lifted: dict[str, object] = {
            "job_id": job_id,
            "request_id": request_id,
            "image_sha256": sorted({t.sha256 for t in tombstones}),
            "tombstones": len(tombstones),
            "suppression_ids": [r.id for r in suppressions],
        }
        audit.append(
            session, actor=actor, action="erasure.lift", details=lifted, at=at, texts={"note": reason}
        )
    store.catalog.checkpoint()
    log.warning(
        "erasure override: %d tombstone(s), %d suppression(s) lifted", len(tombstones), len(suppressions)
    )
    return lifted


def delete_exports_with(store: Store, face_ids: Sequence[int]) -> int:
    """Delete every access export that shows one of these faces (an export holds decrypted crops
    and photo details of one person; once that person is erased, it goes too)."""
    from lethe.privacy.access import exports_root

    wanted = {int(f) for f in face_ids}
    deleted = 0
    root = exports_root(store)
    if not wanted or not root.is_dir():
        return 0
    for manifest in root.glob("*/export.json"):
        try:
            listed = {int(item["face_id"]) for item in json.loads(manifest.read_text())["faces"]}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if listed & wanted:
            shutil.rmtree(manifest.parent, ignore_errors=True)
            deleted += 1
    return deleted


def _receipt(data: dict[str, object]) -> ErasureReceipt:
    return ErasureReceipt(
        job_id=int(data["job_id"]),  # type: ignore[call-overload]
        reason=str(data["reason"]),
        erased_faces=list(data["erased_faces"]),  # type: ignore[call-overload]
        erased_images=list(data["erased_images"]),  # type: ignore[call-overload]
        image_sha256=list(data["image_sha256"]),  # type: ignore[call-overload]
        crops_deleted=int(data["crops_deleted"]),  # type: ignore[call-overload]
        vectors_removed=int(data["vectors_removed"]),  # type: ignore[call-overload]
        planned_at=datetime.fromisoformat(str(data["planned_at"])),
        completed_at=datetime.fromisoformat(str(data["completed_at"])),
        signature=data.get("signature"),  # type: ignore[arg-type]
    )


#: The kind an erasure receipt is signed as (lethe.privacy.signatures).
RECEIPT_KIND = "erasure-receipt"


def signed_receipt(store: Store, receipt: ErasureReceipt) -> ErasureReceipt:
    """The receipt with its signature under the installation's document key, so that the person it
    was made for can check it with the published public key alone."""
    signed = signatures.sign_object(store.keyring, RECEIPT_KIND, receipt.as_dict(), at=receipt.completed_at)
    return replace(receipt, signature=signed["signature"])
