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
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.calibration import calibration_file, implied
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.errors import ImageError, NotFoundError
from lethe.ingest.roots import never_ingested
from lethe.model_ids import model_name
from lethe.privacy import access_pdf, access_photos, access_words, audit, portability
from lethe.privacy.pages import render
from lethe.privacy.photos import held_photo
from lethe.privacy.signatures import sign_file
from lethe.storage import atomic_write, private_dir
from lethe.types import Box

if TYPE_CHECKING:
    from lethe.pipeline import FacePipeline
    from lethe.privacy.requests import RequestView
    from lethe.store import Store


#: The kind an access copy's ``export.json`` is signed as (lethe.privacy.signatures).
EXPORT_KIND = "access-export"


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


def write_export(
    store: Store,
    request: RequestView,
    face_ids: Sequence[int],
    pipeline: Callable[[], FacePipeline] | None = None,
) -> tuple[Path, int]:
    """Write ``export.json``, ``index.html``, the face crops and the access copies of the photos
    (``photos/``, every other face blurred: :mod:`lethe.privacy.access_photos`); returns (folder,
    faces listed). With ``pipeline`` every photo's faces are also detected again, in memory, so that
    faces the catalog does not hold are blurred too. Nothing is listed until the requester's
    identity is verified."""
    from lethe.privacy.requests.records import verified  # the requests package imports this module

    folder = private_dir(exports_root(store) / f"request-{request.id}-{request.ref}")
    crops = private_dir(folder / "crops")
    private_dir(folder / "photos")
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
        mine = {face.id for face, _, _ in rows}
        others = _other_boxes(session, {image.id for _, image, _ in rows}, mine)
        by_face = audit.entries_for_faces(session, sorted(mine))
        roles = access_words.roles_of(session, [e for es in by_face.values() for e in es])
        every = [e for es in by_face.values() for e in es]
        shown = access_words.recipients(session, by_face, access_words.use_exports(session, every))
    templates = store.catalog.face_templates(sorted(mine), any_model=True) if mine else {}
    numbers: dict[int, int] = {}
    for _, image, _ in rows:
        numbers.setdefault(image.id, len(numbers) + 1)
    blurred: dict[int, list[Box]] = {}  # photo number -> the other faces blurred (portability too)
    photos = _write_photos(store, folder, rows, others, numbers, pipeline, blurred)
    items = []
    for face, image, source in rows:
        crop_name = f"{face.id}.jpg"
        atomic_write(crops / crop_name, store.crop_jpeg(face.id), durable=False)
        retention_until = image.ingested_at + timedelta(days=source.retention_days)
        template = templates.get(face.id)
        items.append(
            {
                "face_id": face.id,
                "crop": f"crops/{crop_name}",
                "photo": photos[image.id]["file"],
                "photo_number": numbers[image.id],
                "image": image.uri,
                "source_url": image.source_url,
                "captured_at": image.captured_at.isoformat() if image.captured_at else None,
                "captured": access_words.long_date(image.captured_at),
                "ingested_at": image.ingested_at.isoformat(),
                "collected": access_words.long_date(image.ingested_at),
                "box": [face.box_left, face.box_top, face.box_right, face.box_bottom],
                "source": source.name,
                "lawful_basis": source.lawful_basis,
                "lawful_basis_words": access_words.basis_words(source.lawful_basis, source.legal_reference),
                "art9_condition": source.art9_condition,
                "art9_words": access_words.art9_words(source.art9_condition),
                "purpose": source.purpose,
                "jurisdiction": source.jurisdiction,
                "complaint_to": access_words.authority(source.jurisdiction),
                "retention_until": retention_until.isoformat(),
                "kept_until": access_words.long_date(retention_until),
                "searches": [
                    {
                        "at": e.at.isoformat(),
                        "date": access_words.long_date(e.at),
                        # The role, never the user's name (the staff are not the data subject's data).
                        "operator": roles[e.seq],
                        "who": access_words.ROLE_WORDS[roles[e.seq]],
                        "purpose": e.details.get("purpose"),
                    }
                    for e in by_face.get(face.id, [])
                    if e.action == "search"
                ],
                "template": None
                if template is None
                else {
                    "what": "your biometric template: the numbers the face recognition model computed "
                    "from your face in this photo; searches compare these",
                    "model": model_name(face.model_sha256),
                    "model_sha256": face.model_sha256,
                    "length": len(template),
                    "values": [float(v) for v in template],
                },
            }
        )
    document: dict[str, Any] = {
        "request": {
            "id": request.id,
            "ref": request.ref,
            "received_at": request.received_at.isoformat(),
            "received": access_words.long_date(request.received_at),
        },
        "generated_at": now_utc().isoformat(),
        "generated": access_words.long_date(now_utc()),
        "dates_note": "Dates are given in Coordinated Universal Time (UTC).",
        "controller_note": "Every photo in which Lethe found your face, and every search that returned it.",
        "faces": items,
        "photos": [photos[i] for i in sorted(numbers, key=numbers.__getitem__)],
        "categories": access_words.CATEGORIES,
        "recipients": shown,
        "automated_processing": access_words.score_words(_calibration(store)),
        "rights": access_words.rights(sorted({source.jurisdiction for _, _, source in rows})),
        "source_of_data": "The photos come from the sources named with each photo (where the controller "
        "collected them); the face boxes, crops and templates were computed from them by Lethe.",
    }
    document["portability"] = portability.write_archive(store, folder, document, blurred)  # Art. 20
    document["pdf"] = access_pdf.write_pdf(folder, document)  # the same copy; never fails the export
    atomic_write(folder / "export.json", json.dumps(document, indent=2).encode())
    # Signed, so the person can check the copy with the published key (lethe.privacy.signatures).
    sign_file(store.keyring, EXPORT_KIND, folder / "export.json", at=now_utc())
    page = render("access.html", **document)
    atomic_write(folder / "index.html", page.encode())
    return folder, len(items)


def _other_boxes(session: Session, image_ids: set[int], mine: set[int]) -> dict[int, list[Box]]:
    """image id -> the boxes of the faces the catalog holds in it that are not ``mine``."""
    out: dict[int, list[Box]] = {i: [] for i in image_ids}
    if not image_ids:
        return out
    rows = session.execute(
        select(
            FaceRow.id,
            FaceRow.image_id,
            FaceRow.box_left,
            FaceRow.box_top,
            FaceRow.box_right,
            FaceRow.box_bottom,
        ).where(FaceRow.image_id.in_(sorted(image_ids)))
    ).all()
    for face_id, image_id, left, top, right, bottom in rows:
        if face_id not in mine:
            out[image_id].append(Box(left, top, right, bottom))
    return out


def _write_photos(
    store: Store,
    folder: Path,
    rows: Sequence[Any],
    others: dict[int, list[Box]],
    numbers: dict[int, int],
    pipeline: Callable[[], FacePipeline] | None,
    blurred: dict[int, list[Box]],
) -> dict[int, dict[str, Any]]:
    """image id -> what the export says of that photo; its access copy written to ``photos/`` when
    the photo is still at the path it was ingested from, unchanged (``blurred`` gets, per photo
    number, the other faces' boxes it blurred)."""
    forbidden = never_ingested(store.settings, [store.keyring.master_path])
    out: dict[int, dict[str, Any]] = {}
    for _, image, source in rows:
        if image.id in out:
            continue
        mine = [Box(f.box_left, f.box_top, f.box_right, f.box_bottom) for f, i, _ in rows if i.id == image.id]
        entry: dict[str, Any] = {
            "number": numbers[image.id],
            "file": None,
            "held_as": image.uri,
            "source": source.name,
            "source_url": image.source_url,
            "your_faces": len(mine),
            "others_blurred": 0,
            "note": None,
        }
        try:
            held = held_photo(store, image.uri, image.sha256, forbidden=forbidden)
        except (NotFoundError, ImageError) as exc:
            entry["note"] = (
                "This photo is no longer at the place it was collected from, or has changed since "
                f"({exc}); the small picture of your face is what we hold of it."
            )
            out[image.id] = entry
            continue
        blur = list(others.get(image.id, []))
        found_again = 0
        if pipeline is not None:
            extra = access_photos.others_found_again([d.box for d in pipeline().detect(held.pixels)], mine)
            found_again = sum(1 for b in extra if all(access_photos.iou(b, o) < 0.4 for o in blur))
            blur += extra
        name = f"photos/photo-{numbers[image.id]}.jpg"
        atomic_write(folder / name, access_photos.copy_jpeg(held.pixels, mine, blur), durable=False)
        blurred[numbers[image.id]] = blur
        entry["file"] = name
        entry["others_blurred"] = len(others.get(image.id, [])) + found_again
        out[image.id] = entry
    return out


def _calibration(store: Store) -> dict[str, Any]:
    settings = store.settings
    gallery = len(store.index)
    measured = implied(
        settings.match_threshold, gallery, calibration_file(settings.embedder, settings.embed_flip)
    )
    return {
        "match_threshold": settings.match_threshold,
        "erasure_automatic_threshold": settings.erasure_auto_threshold,
        "implied": measured.as_dict() if measured else None,
    }
