"""Reading uploaded photos: how many one request may carry, the size limit (413) and content
sniffing, never trusting file names. A file that is not a usable image raises the error tree's
``ImageError`` / ``ImageTooLargeError``, which ``lethe.api.errors`` maps to 415 / 413 like any other."""

from __future__ import annotations

from fastapi import UploadFile

from lethe.config import Settings
from lethe.errors import ImageError, ImageTooLargeError, InputError
from lethe.http.errors import ApiError
from lethe.imaging import decode_image

#: Photos one ingest upload may carry (``POST /api/ingest/upload``, the ingest page).
MAX_UPLOAD_PHOTOS = 500
#: Photos of themselves a data subject may send with a portal request (the portal page too).
MAX_PORTAL_PHOTOS = 5
#: Photos of the requester a data-protection officer may attach to a request recorded by hand.
MAX_REQUEST_PHOTOS = 10

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


def read_upload(upload: UploadFile, settings: Settings, *, what: str = "photo") -> bytes:
    """The bytes of one uploaded file; 413 when over the limit, ``InputError`` when empty."""
    limit = min(settings.max_upload_bytes, settings.max_image_bytes)
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the {what} is over the limit of {limit} bytes")
    if not data:
        raise InputError(f"the {what} is an empty file")
    return data


def image_type(data: bytes, settings: Settings, *, what: str = "photo") -> str:
    """The media type of an image, found by decoding its content (not its name or declared type);
    ``ImageError`` when it is not a supported image, ``ImageTooLargeError`` when it has too many
    pixels, each naming ``what``."""
    try:
        image = decode_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(f"the {what} is too large: {exc}") from exc
    except ImageError as exc:
        raise ImageError(f"the {what}: {exc}") from exc
    return MEDIA_TYPES.get(image.format, "application/octet-stream")


def read_photos(uploads: list[UploadFile], settings: Settings, *, most: int) -> list[bytes]:
    """Read and check every uploaded photo (1..``most``)."""
    if not uploads:
        raise InputError("at least one photo is needed")
    if len(uploads) > most:
        raise InputError(f"at most {most} photos at once")
    photos = []
    for number, upload in enumerate(uploads, start=1):
        what = f"photo {number}" if len(uploads) > 1 else "photo"
        data = read_upload(upload, settings, what=what)
        image_type(data, settings, what=what)
        photos.append(data)
    return photos
