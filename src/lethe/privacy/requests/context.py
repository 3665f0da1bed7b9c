"""Where a request's faces are: each face's photo (its id and name) and source, grouped by photo.
The preview of a run shows the DPO what it will act on (:meth:`SubjectRequests.preview`); the
outcome keeps what it did (``acted_on``: photo id, source and number of faces, never a photo's name,
which an erasure deletes with the photo)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.tables import FaceRow, ImageRow, SourceRow


def photo_name(uri: str) -> str:
    """The photo's file name, as its operator knows it (no folder of the server)."""
    name = uri.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if name.startswith("upload:") else name


def where(session: Session, face_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Photo id, photo name, source page and source of each face that still exists."""
    wanted = sorted({int(f) for f in face_ids})
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(FaceRow.id, ImageRow.id, ImageRow.uri, ImageRow.source_url, SourceRow.name)
            .join(ImageRow, FaceRow.image_id == ImageRow.id)
            .join(SourceRow, ImageRow.source_id == SourceRow.id)
            .where(FaceRow.id.in_(wanted[start : start + 500]))
        ).all()
        for face_id, image_id, uri, url, source in rows:
            found[int(face_id)] = {
                "photo_id": int(image_id), "photo": photo_name(uri), "source_url": url, "source": source,
            }  # fmt: skip
    return found


def by_photo(session: Session, scores: Mapping[int, float]) -> list[dict[str, Any]]:
    """The faces of ``scores`` (face id -> similarity) grouped by photo, the best photo first, each
    with its name, source and faces (id and score, best first)."""
    places = where(session, scores)
    photos: dict[int, dict[str, Any]] = {}
    for face_id, score in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
        place = places.get(face_id)
        if place is None:
            continue
        photo = photos.setdefault(place["photo_id"], place | {"faces": []})
        photo["faces"].append({"face_id": face_id, "score": round(float(score), 6)})
    return list(photos.values())


def acted_on(groups: list[dict[str, Any]], earlier: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """What an outcome keeps of the faces a run acted on: per photo its id, source and number of
    faces, added to what ``earlier`` runs of the request did (an erasure's second run acts on other
    faces than its first)."""
    kept: dict[int, dict[str, Any]] = {int(g["photo_id"]): dict(g) for g in earlier}
    for group in groups:
        photo = kept.setdefault(
            int(group["photo_id"]), {"photo_id": group["photo_id"], "source": group["source"], "faces": 0}
        )
        photo["faces"] = int(photo["faces"]) + len(group["faces"])
    return list(kept.values())


def named(session: Session, acted: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An outcome's ``acted_on`` with each photo's name where the photo is still held (``None``
    once erased)."""
    rows = [dict(a) for a in acted]
    ids = [int(r["photo_id"]) for r in rows]
    names = {
        int(i): photo_name(uri)
        for i, uri in session.execute(select(ImageRow.id, ImageRow.uri).where(ImageRow.id.in_(ids)))
    }
    return [r | {"photo": names.get(int(r["photo_id"]))} for r in rows]
