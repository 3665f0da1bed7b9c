"""Reading uploaded photos: size limit (413) and content sniffing (415), never trusting file names."""

from __future__ import annotations

from fastapi import UploadFile

from lethe.api.errors import ApiError
from lethe.config import Settings
from lethe.errors import ImageError, ImageTooLargeError
from lethe.imaging import decode_image

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


def read_upload(upload: UploadFile, settings: Settings, *, what: str = "photo") -> bytes:
    """The bytes of one uploaded file; 413 when over the limit, 422 when empty."""
    limit = min(settings.max_upload_bytes, settings.max_image_bytes)
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the {what} is over the limit of {limit} bytes")
    if not data:
        raise ApiError(422, "invalid_input", f"the {what} is an empty file")
    return data


def image_type(data: bytes, settings: Settings, *, what: str = "photo") -> str:
    """The media type of an image, found by decoding its content (not its name or declared type);
    415 when it is not a supported image, 413 when it has too many pixels."""
    try:
        image = decode_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
    except ImageTooLargeError as exc:
        raise ApiError(413, "image_too_large", f"the {what} is too large: {exc}") from exc
    except ImageError as exc:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the {what} is not a supported image (JPEG, PNG, WebP, GIF, BMP or TIFF): {exc}",
        ) from exc
    return MEDIA_TYPES.get(image.format, "application/octet-stream")


def read_photos(uploads: list[UploadFile], settings: Settings, *, most: int) -> list[bytes]:
    """Read and check every uploaded photo (1..``most``)."""
    if not uploads:
        raise ApiError(422, "invalid_input", "at least one photo is needed")
    if len(uploads) > most:
        raise ApiError(422, "invalid_input", f"at most {most} photos at once")
    photos = []
    for number, upload in enumerate(uploads, start=1):
        what = f"photo {number}" if len(uploads) > 1 else "photo"
        data = read_upload(upload, settings, what=what)
        image_type(data, settings, what=what)
        photos.append(data)
    return photos
