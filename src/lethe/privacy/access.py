"""The access export (GDPR Art. 15): every photo of the person, where it came from, on what basis,
until when it is kept, and every search that returned it — as JSON and as a readable HTML page.

An export is written only for a request whose requester's identity was verified: for any other it
lists nothing (no face, no photo, no source URL), whatever faces it is given. A rejected request's
export is deleted (:func:`delete_export`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.privacy import audit
from lethe.privacy.pages import render
from lethe.storage import atomic_write, private_dir

if TYPE_CHECKING:
    from lethe.privacy.requests import RequestView
    from lethe.store import Store


def exports_root(store: Store) -> Path:
    return store.settings.exports_dir or store.settings.data_dir / "exports"


def delete_export(store: Store, folder: str | Path) -> bool:
    """Delete an export folder (decrypted crops, the person's photo details) if it lies in the
    exports folder; whether one was deleted."""
    path = Path(folder).resolve()
    if not path.is_relative_to(exports_root(store).resolve()) or not path.is_dir():
        return False
    shutil.rmtree(path)
    return True


def write_export(store: Store, request: RequestView, face_ids: Sequence[int]) -> tuple[Path, int]:
    """Write ``export.json``, ``index.html`` and the face crops; returns (folder, faces listed).
    Nothing is listed until the requester's identity is verified."""
    from lethe.privacy.requests.records import verified  # the requests package imports this module

    folder = private_dir(exports_root(store) / f"request-{request.id}-{request.ref}")
    crops = private_dir(folder / "crops")
    with store.catalog.session() as session:
        if not verified(session, request.id, request.kind):
            face_ids = []
        rows = session.execute(
            select(FaceRow, ImageRow, SourceRow)
            .join(ImageRow, FaceRow.image_id == ImageRow.id)
            .join(SourceRow, ImageRow.source_id == SourceRow.id)
            .where(FaceRow.id.in_(list(face_ids)))
            .order_by(ImageRow.ingested_at, FaceRow.id)
        ).all()
        searches = audit.entries_for_faces(session, [f.id for f, _, _ in rows])
    items = []
    for face, image, source in rows:
        crop_name = f"{face.id}.jpg"
        atomic_write(crops / crop_name, store.crop_jpeg(face.id), durable=False)
        items.append(
            {
                "face_id": face.id,
                "crop": f"crops/{crop_name}",
                "image": image.uri,
                "source_url": image.source_url,
                "captured_at": image.captured_at.isoformat() if image.captured_at else None,
                "ingested_at": image.ingested_at.isoformat(),
                "box": [face.box_left, face.box_top, face.box_right, face.box_bottom],
                "source": source.name,
                "lawful_basis": source.lawful_basis,
                "art9_condition": source.art9_condition,
                "purpose": source.purpose,
                "jurisdiction": source.jurisdiction,
                "retention_until": (image.ingested_at + timedelta(days=source.retention_days)).isoformat(),
                "searches": [
                    {"at": e.at.isoformat(), "operator": e.actor, "purpose": e.details.get("purpose")}
                    for e in searches.get(face.id, [])
                ],
            }
        )
    document: dict[str, Any] = {
        "request": {"id": request.id, "ref": request.ref, "received_at": request.received_at.isoformat()},
        "generated_at": now_utc().isoformat(),
        "controller_note": "Every photo in which Lethe found your face, and every search that returned it.",
        "faces": items,
    }
    atomic_write(folder / "export.json", json.dumps(document, indent=2).encode())
    page = render(
        "access.html", request=document["request"], generated_at=document["generated_at"], faces=items
    )
    atomic_write(folder / "index.html", page.encode())
    return folder, len(items)
