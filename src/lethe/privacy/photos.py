"""A matched photo, shown to the user whose search found its face (the newcomer review, issue 20:
"find my photos" needs the photo, not only a 150 px crop).

Lethe keeps a photo's faces (crops and templates) and where the photo was (its path or URL), never
the photo itself. :func:`matched_photo` reads the photo again from the path it was ingested from,
and only when the file there is still the one ingested (its sha256); an uploaded photo (deleted
after its run), an erased face (no row left), a moved or changed file, or a path inside Lethe's
own folders give :class:`~lethe.errors.NotFoundError`. The photo is decoded with the usual limits
and re-encoded as a JPEG with the face's box drawn on it: no metadata of the original (EXIF, GPS)
goes out. Each view is audited (``photo.view``: the face and the photo's ids).

Who may see it is the HTTP layer's rule (a signed link given to the user by their search, for an
hour, like a crop's: :class:`lethe.http.state.CropLinks`).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from lethe.catalog.tables import ImageRow
from lethe.errors import NotFoundError
from lethe.imaging import DecodedImage, decode_image
from lethe.ingest.inputs import is_inside
from lethe.privacy import audit
from lethe.store import Store

#: The longest side of a matched photo as served (larger ones are scaled down).
PHOTO_MAX_SIDE_PX = 2048
#: The box's colour (an orange that stands out on skin and on most backgrounds).
BOX_COLOUR = (245, 163, 0)


def matched_photo(store: Store, face_id: int, *, actor: str, forbidden: Sequence[Path]) -> bytes:
    """The photo of ``face_id`` as a JPEG with the face's box drawn (see the module); nothing is read
    inside ``forbidden`` (Lethe's own folders)."""
    info = store.catalog.faces([face_id]).get(face_id)
    if info is None:
        raise NotFoundError(f"no face {face_id}: erased, or never stored")
    with store.catalog.session() as session:
        row = session.get(ImageRow, info.image_id)
        sha256 = row.sha256 if row is not None else None
    if sha256 is None:
        raise NotFoundError("the photo's path is not a file on this server")
    image = held_photo(store, info.image_uri, sha256, forbidden=forbidden)
    picture = Image.fromarray(image.pixels)
    box = info.box
    side = max(image.width, image.height)
    scale = min(1.0, PHOTO_MAX_SIDE_PX / side)
    if scale < 1.0:
        picture = picture.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    line = max(2, round(max(picture.size) / 250))
    ImageDraw.Draw(picture).rectangle(
        [box.left * scale, box.top * scale, box.right * scale, box.bottom * scale],
        outline=BOX_COLOUR,
        width=line,
    )
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=88)
    store.catalog.record(
        audit.record(actor, "photo.view", {"face_id": face_id, "image_id": info.image_id}, [face_id])
    )
    return out.getvalue()


def held_photo(store: Store, uri: str, sha256: str, *, forbidden: Sequence[Path]) -> DecodedImage:
    """The photo ingested from ``uri``, decoded with the usual limits, read again from that path only
    while the file there is still the one ingested (``sha256``); :class:`NotFoundError` saying why
    otherwise (an uploaded photo, a moved or changed file, a path inside ``forbidden``)."""
    if uri.startswith("upload:"):
        raise NotFoundError("this photo was uploaded: Lethe kept its faces, not the photo")
    path = Path(uri)
    if not path.is_absolute():
        raise NotFoundError("the photo's path is not a file on this server")
    data = _read(path, store.settings.max_image_bytes, forbidden)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise NotFoundError("the file at the photo's path has changed since it was ingested")
    return decode_image(
        data, max_pixels=store.settings.max_image_pixels, max_bytes=store.settings.max_image_bytes
    )


def _read(path: Path, limit: int, forbidden: Sequence[Path]) -> bytes:
    """The file's bytes (a regular file, not inside ``forbidden``, at most ``limit`` bytes)."""
    try:
        resolved = path.resolve(strict=True)
        if is_inside(resolved, forbidden):
            raise NotFoundError("the photo's path is inside Lethe's own folders")
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            if not os.path.isfile(resolved):
                raise NotFoundError("the photo's path is not a regular file")
            data = handle.read(limit + 1)
    except (OSError, RuntimeError, ValueError) as exc:
        raise NotFoundError("the photo is no longer at the path it was ingested from") from exc
    if len(data) > limit:
        raise NotFoundError("the file at the photo's path is over the size limit")
    return data
