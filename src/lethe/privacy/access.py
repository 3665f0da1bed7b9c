"""The access export (GDPR Art. 15): every photo of the person, where it came from, on what basis,
until when it is kept, and every search that returned it — as JSON and as a readable HTML page.

An export is written only for a request whose requester's identity was verified: for any other it
lists nothing (no face, no photo, no source URL), whatever faces it is given. A request's outcome
names its export by the folder's name inside the exports folder, never by a path of the server
(:func:`export_folder` finds it). A rejected request's export is deleted, and a DPO deletes one once
it is delivered (:func:`delete_export`)."""

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


def export_folder(store: Store, name: object) -> Path | None:
    """The folder an outcome's ``export`` names: a folder name inside the exports folder (or, as
    outcomes recorded before names were used held, an absolute path inside it). ``None`` for
    anything else (nothing outside the exports folder is ever read or deleted through it)."""
    if not isinstance(name, str) or not name:
        return None
    root = exports_root(store).resolve()
    given = Path(name)
    if not given.is_absolute() and (len(given.parts) != 1 or name in (".", "..")):
        return None
    path = (given if given.is_absolute() else root / given).resolve()
    return path if path.parent == root else None


def delete_export(store: Store, name: object) -> int | None:
    """Delete the export folder an outcome names (decrypted crops, the person's photo details):
    every file unlinked, the folder removed. The number of files deleted, or ``None`` when ``name``
    names no folder inside the exports folder."""
    path = export_folder(store, name)
    if path is None or not path.is_dir():
        return None
    files = sum(1 for p in path.rglob("*") if p.is_file() or p.is_symlink())
    shutil.rmtree(path)
    return files


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
