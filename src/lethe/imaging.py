"""Safe image decoding: untrusted bytes in, an EXIF-oriented 8-bit RGB array out (or an ImageError).

Only JPEG, PNG, WebP, GIF (first frame), BMP, TIFF and Netpbm greymaps and pixmaps (PGM and PPM:
``P2``, ``P3``, ``P5``, ``P6``, used by classic face data sets) are accepted; PIL is never allowed to
try any other plugin, nor the other Netpbm variants (bitmaps, float and arbitrary maps). The pixel
count is checked from the header before any pixel data is decoded (the same limits for every
format), so a decompression bomb costs a header parse, not gigabytes of memory. Every third-party
failure is mapped to :class:`~lethe.errors.ImageError` (or
:class:`~lethe.errors.ImageTooLargeError`) with a short reason.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from lethe.errors import ConfigError, ImageError, ImageTooLargeError
from lethe.types import RGBImage

SUPPORTED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM"})

_OPEN_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM")
#: The Netpbm variants accepted (PIL opens them all as "PPM"): plain and raw PGM and PPM.
NETPBM_MAGIC: frozenset[bytes] = frozenset({b"P2", b"P3", b"P5", b"P6"})
#: PIL names of formats that are variants of a supported one (a multi-picture JPEG opens as "MPO").
_FORMAT_ALIASES: dict[str, str] = {"MPO": "JPEG"}
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    *((magic, "PPM") for magic in sorted(NETPBM_MAGIC)),
)
_ORIENTATION_TAG = 0x0112
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A decoded image: HxWx3 uint8 C-contiguous pixels with EXIF orientation already applied."""

    pixels: RGBImage
    width: int
    height: int
    format: str


def _sniff(data: bytes) -> str | None:
    """Return the supported format the magic bytes claim, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def _apply_orientation(im: Image.Image) -> Image.Image:
    """Rotate/flip per the EXIF (or XMP) orientation; unreadable metadata leaves the image as it is."""
    try:
        orientation = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # broken EXIF must never cost us the image
        return im
    method = _TRANSPOSE.get(orientation)
    return im.transpose(method) if method is not None else im


def _over_white(rgba: npt.NDArray[np.uint8], premultiplied: bool = False) -> RGBImage:
    """Composite an HxWx(C+1) colour+alpha array over white and return HxWx3 uint8 RGB."""
    colour = rgba[..., :-1].astype(np.uint32)
    alpha = rgba[..., -1:].astype(np.uint32)
    if premultiplied:
        out = np.minimum(colour + (255 - alpha), 255)
    else:
        out = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return out.astype(np.uint8)


def _to_uint8_grey(im: Image.Image) -> RGBImage:
    """Scale a high-bit-depth single-band image (I;16*, I, F) to 8-bit grey RGB."""
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        grey = (arr.astype(np.uint16) >> 8).astype(np.uint8)
    else:
        with np.errstate(invalid="ignore"):  # a signalling NaN in a float image: zeroed just below
            values = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if im.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scaled = values * 255.0  # float images in 0..1
        elif lo >= 0.0 and hi <= 65535.0:
            scaled = values / 257.0 if im.mode == "I" else values  # 16-bit data held in a 32-bit band
        else:
            scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _to_rgb(im: Image.Image) -> RGBImage:
    """Convert any PIL mode to HxWx3 uint8 RGB; transparency is composited over white."""
    mode = im.mode
    if mode in ("La", "RGBa"):
        return _over_white(np.asarray(im), premultiplied=True)
    if mode.startswith("I") or mode == "F":
        return _to_uint8_grey(im)
    if mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        return _over_white(np.asarray(im.convert("RGBA")))
    if mode != "RGB":
        im = im.convert("RGB")
    return _rgb_array(im)


#: Large photos are copied out of PIL this many pixels at a time.
STRIP_PIXELS = 1 << 20


def _rgb_array(im: Image.Image) -> RGBImage:
    """An RGB image's pixels as an array, copied in strips of rows: ``np.asarray`` goes through
    ``tobytes``, which holds a second whole copy at its peak (137 MB more for a 48 MP photo)."""
    width, height = im.size
    if width * height <= STRIP_PIXELS:
        return np.asarray(im, dtype=np.uint8)
    out = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows):
        out[top : top + rows] = np.asarray(im.crop((0, top, width, min(height, top + rows))), dtype=np.uint8)
    return out


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int = 64 * 1024 * 1024) -> DecodedImage:
    """Decode untrusted image bytes into EXIF-oriented 8-bit RGB.

    Raises :class:`ImageTooLargeError` when ``data`` is over ``max_bytes`` or the header's
    ``width * height`` is over ``max_pixels`` (checked before pixels are decoded; PIL's own
    decompression-bomb guard is mapped to the same error), and :class:`ImageError` for anything
    that is not a readable JPEG/PNG/WebP/GIF/BMP/TIFF/PGM/PPM. :class:`ConfigError` for a ``max_pixels``
    below 1 (the setting ``max_image_pixels`` is validated too, so only a caller of this function
    can pass one).
    """
    if max_pixels < 1:
        raise ConfigError(f"max_pixels must be at least 1, got {max_pixels}")
    if not data:
        raise ImageError("empty file")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"file is {len(data)} bytes, over the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # PIL's notes on broken metadata it skipped
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_OPEN_FORMATS) as im:
                fmt = _FORMAT_ALIASES.get(im.format or "", im.format or "")
                if fmt not in SUPPORTED_FORMATS:
                    raise ImageError(f"unsupported image format {fmt or 'unknown'}")
                if fmt == "PPM" and data[:2] not in NETPBM_MAGIC:
                    raise ImageError(
                        f"unsupported Netpbm variant {data[:2].decode('ascii', 'replace')} "
                        "(only PGM and PPM: P2, P3, P5, P6)"
                    )
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise ImageError(f"degenerate image size {width}x{height}")
                if width * height > max_pixels:
                    raise ImageTooLargeError(
                        f"image is {width}x{height} = {width * height} pixels, "
                        f"over the limit of {max_pixels} pixels"
                    )
                im.load()  # first frame only: multi-frame GIF/TIFF/WebP are never seeked
                pixels = np.ascontiguousarray(_to_rgb(_apply_orientation(im)), dtype=np.uint8)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(
            f"image too large to decode safely: {exc} (limit {max_pixels} pixels)"
        ) from exc
    except UnidentifiedImageError as exc:
        claimed = _sniff(data)
        reason = f"corrupt {claimed} header" if claimed else "not an image (unrecognised format)"
        raise ImageError(reason) from exc
    except MemoryError as exc:
        raise ImageTooLargeError("image needs more memory than is available to decode") from exc
    except Exception as exc:  # PIL plugins raise OSError, ValueError, SyntaxError, struct.error, ...
        raise ImageError(f"corrupt or truncated image: {exc or type(exc).__name__}"[:200]) from exc
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageError(f"degenerate decoded image of shape {pixels.shape}")
    return DecodedImage(pixels=pixels, width=int(pixels.shape[1]), height=int(pixels.shape[0]), format=fmt)
