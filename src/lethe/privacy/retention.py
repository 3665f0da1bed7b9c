"""Retention: faces kept longer than their source allows are erased, and the probes of matched
searches kept past the log retention (``LETHE_LOG_RETENTION_DAYS``) are deleted (command and
scheduled job)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow

if TYPE_CHECKING:
    from lethe.privacy.gate import Gate


class Retention:
    """Faces kept past their source's retention, found and erased."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.store = gate.store

    def expired_faces(self, now: datetime | None = None) -> list[int]:
        """Faces whose photo was ingested longer ago than its source's retention period."""
        now = now or now_utc()
        expired: list[int] = []
        with self.store.catalog.session() as session:
            for source in session.scalars(select(SourceRow)):
                cutoff = now - timedelta(days=source.retention_days)
                expired.extend(
                    session.scalars(
                        select(FaceRow.id)
                        .join(ImageRow, FaceRow.image_id == ImageRow.id)
                        .where(ImageRow.source_id == source.id, ImageRow.ingested_at < cutoff)
                    )
                )
        return sorted(expired)

    def purge(self, *, actor: str = "system", now: datetime | None = None) -> dict[str, object]:
        """Erase every expired face (physically, with a receipt and audit entries) and delete the
        search probes past the log retention (audited ``probe.expired``)."""
        probes = self.gate.expire_search_probes(actor=actor, now=now)
        faces = self.expired_faces(now)
        if not faces:
            return {"erased_faces": 0, "erased_images": 0, "expired_probes": probes}
        receipt = self.gate.erase(faces, reason="retention", actor=actor)
        return {
            "erased_faces": len(receipt.erased_faces),
            "erased_images": len(receipt.erased_images),
            "job_id": receipt.job_id,
            "expired_probes": probes,
        }
