"""Reading uploaded photos: how many one request may carry, the size limit (413) and content
sniffing, never trusting file names. A file that is not a usable image raises the error tree's
``ImageError`` / ``ImageTooLargeError``, which ``lethe.api.errors`` maps to 415 / 413 like any other.

The public portal's uploads cost bounded memory, CPU and disk (security review, finding 7), through
:class:`PortalUploads`: a smaller size and pixel limit per photo (``LETHE_PORTAL_MAX_PHOTO_BYTES``,
``LETHE_PORTAL_MAX_IMAGE_PIXELS``; the pixel count is read from the header before any pixel is
decoded), at most ``LETHE_PORTAL_CONCURRENT_SUBMISSIONS`` submissions read and decoded at once (one
more: 503 at once, never a queue), and a budget for the photos that open portal requests hold in the
catalog together (``LETHE_PORTAL_PENDING_MAX_BYTES``; past it: 503 until requests are handled or
expire). The rate limits (per address and for everyone together) are the portal limiter's
(:mod:`lethe.http.ratelimit`).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager

from fastapi import Request, UploadFile
from sqlalchemy import func, select
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser

from lethe.catalog import Catalog
from lethe.catalog.privacy_tables import RequestProbeBlobRow, RequestProbeRow, RequestRow
from lethe.config import Settings
from lethe.errors import ImageError, ImageTooLargeError, InputError
from lethe.http.errors import ApiError
from lethe.imaging import decode_image

#: Seconds a client told "busy" or "full" is asked to wait.
PORTAL_RETRY_AFTER_S = 60

#: Photos one ingest upload may carry (``POST /api/ingest/upload``, the ingest page).
MAX_UPLOAD_PHOTOS = 500
#: Photos of themselves a data subject may send with a portal request (the portal page too).
MAX_PORTAL_PHOTOS = 5
#: Photos of the requester a data-protection officer may attach to a request recorded by hand.
MAX_REQUEST_PHOTOS = 10

#: The image formats every upload may be, in words (messages).
IMAGE_KINDS = "JPEG, PNG, WebP, GIF, BMP, TIFF, PGM or PPM"

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "PPM": "image/x-portable-anymap",
}


def read_upload(
    upload: UploadFile, settings: Settings, *, what: str = "photo", most_bytes: int | None = None
) -> bytes:
    """The bytes of one uploaded file; 413 when over the limit, ``InputError`` when empty."""
    limit = min(settings.max_upload_bytes, settings.max_image_bytes, most_bytes or settings.max_image_bytes)
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the {what} is over the limit of {limit} bytes")
    if not data:
        raise InputError(f"the {what} is an empty file")
    return data


def image_type(
    data: bytes, settings: Settings, *, what: str = "photo", most_pixels: int | None = None
) -> str:
    """The media type of an image, found by decoding its content (not its name or declared type);
    ``ImageError`` when it is not a supported image, ``ImageTooLargeError`` when it has too many
    pixels (read from the header, before decoding), each naming ``what``."""
    pixels = min(settings.max_image_pixels, most_pixels or settings.max_image_pixels)
    try:
        image = decode_image(data, max_pixels=pixels, max_bytes=settings.max_image_bytes)
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(f"the {what} is too large: {exc}") from exc
    except ImageError as exc:
        raise ImageError(f"the {what}: {exc}") from exc
    return MEDIA_TYPES.get(image.format, "application/octet-stream")


def read_photos(
    uploads: list[UploadFile],
    settings: Settings,
    *,
    most: int,
    most_bytes: int | None = None,
    most_pixels: int | None = None,
) -> list[bytes]:
    """Read and check every uploaded photo (1..``most``), each within ``most_bytes`` and
    ``most_pixels`` when given (and the service's limits always)."""
    if not uploads:
        raise InputError("at least one photo is needed")
    if len(uploads) > most:
        raise InputError(f"at most {most} photos at once")
    photos = []
    for number, upload in enumerate(uploads, start=1):
        what = f"photo {number}" if len(uploads) > 1 else "photo"
        data = read_upload(upload, settings, what=what, most_bytes=most_bytes)
        image_type(data, settings, what=what, most_pixels=most_pixels)
        photos.append(data)
    return photos


#: Bytes a public form may carry besides its one photo: field values, part headers, boundaries.
FORM_OVERHEAD_BYTES = 64 * 1024


def keep_uploads_in_memory(limit: int) -> None:
    """Make every multipart file part of a form stay in memory: Starlette spools a part over 1 MB
    to a temporary file in the system's temporary folder, where a requester's or a searcher's photo
    would outlive its request on disk (unlinked, not overwritten). The body limit middleware already
    caps a request at ``limit`` bytes (``LETHE_MAX_UPLOAD_BYTES``), so the spool threshold above it
    costs no more memory than the body itself. Process-wide (a class attribute of Starlette's
    parser); it only ever rises."""
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limit + 1)


async def in_memory_form(request: Request, most_bytes: int, *, max_fields: int = 8) -> FormData:
    """A multipart form with at most one file, read whole into memory and never onto disk.

    Starlette's own form parsing spools a file part over 1 MB to a temporary file. Here the body is
    read first, up to ``most_bytes`` (413 past it, before any of it is parsed or decoded; at once
    when ``Content-Length`` says so), then parsed with a spool larger than the whole body, so no
    part can roll over to disk. The caller closes the form (``await form.close()``)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > most_bytes:
        raise ApiError(413, "payload_too_large", f"the form is over the limit of {most_bytes} bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InputError("send the form as multipart/form-data")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > most_bytes:
            raise ApiError(413, "payload_too_large", f"the form is over the limit of {most_bytes} bytes")
        chunks.append(chunk)

    async def body() -> AsyncGenerator[bytes, None]:
        while chunks:
            yield chunks.pop(0)

    parser = MultiPartParser(request.headers, body(), max_files=1, max_fields=max_fields, max_part_size=8192)
    parser.spool_max_size = size + 1  # larger than any part: every file stays in memory
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InputError(f"the form cannot be read: {exc.message}") from exc


def pending_portal_bytes(catalog: Catalog) -> int:
    """Bytes of the photos that portal requests hold in the catalog now (a request's photos are
    deleted when it closes or expires, so every stored one is pending)."""
    with catalog.session() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(func.length(RequestProbeBlobRow.photo)), 0))
            .join(RequestProbeRow, RequestProbeRow.id == RequestProbeBlobRow.probe_id)
            .join(RequestRow, RequestRow.id == RequestProbeRow.request_id)
            .where(RequestRow.channel == "portal")
        )
    return int(total or 0)


class PortalUploads:
    """What one public portal submission may cost (see the module). The portal route reads its
    photos through :meth:`submission` and stores the request inside it::

        with state.portal_uploads.submission(photos) as blobs:
            view = state.engine.requests.open(kind=..., photos=blobs, ...)

    The slot is held until the request is stored, so at most ``concurrent`` submissions can pass the
    budget check before their bytes show in the catalog: the budget is exceeded by at most that many
    submissions' photos."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._slots = threading.BoundedSemaphore(settings.portal_concurrent_submissions)

    @contextmanager
    def submission(self, uploads: list[UploadFile], *, kept: bool = True) -> Iterator[list[bytes]]:
        """The photos, read and checked while holding a slot; 503 when every slot is taken or the
        pending photos' budget would be exceeded; 413/415/422 for the photos themselves. ``kept=False``:
        the photos are never stored (a guest's selfie, :mod:`lethe.privacy.guests`), so the budget
        of stored photos does not apply; every other limit does."""
        if not self._slots.acquire(blocking=False):
            raise _unavailable("portal_busy", "too many requests are being submitted right now")
        try:
            photos = read_photos(
                uploads,
                self.settings,
                most=MAX_PORTAL_PHOTOS,
                most_bytes=self.settings.portal_max_photo_bytes,
                most_pixels=self.settings.portal_max_image_pixels,
            )
            size = sum(len(p) for p in photos)
            if kept and pending_portal_bytes(self.catalog) + size > self.settings.portal_pending_max_bytes:
                raise _unavailable("portal_full", "the portal holds as many photos as it may")
            yield photos
        finally:
            self._slots.release()


def _unavailable(code: str, why: str) -> ApiError:
    return ApiError(
        503,
        code,
        f"{why}; please try again later",
        headers={"Retry-After": str(PORTAL_RETRY_AFTER_S)},
    )
