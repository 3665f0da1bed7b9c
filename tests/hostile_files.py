"""A generated corpus of malformed and hostile image files: the same bytes on every run.

Used by ``tests/test_hostile_ingest.py`` (a small slice, in the default suite), by
``bench/hostile_ingest.py`` (the whole corpus, >= 1,000 files, through the real engine) and as the
seed corpus of the fuzz target ``tests/fuzz/fuzz_decode.py``.

Every file says what a correct ingest does with it:

* ``ok``: a usable image; it must be ingested, ``size`` (width, height after EXIF orientation) and,
  where known, ``faces`` must be right;
* ``error``: it must be refused with a reason that matches ``reason`` (a regular expression);
* ``either``: damaged in a way where decoding may or may not succeed (a cut after the last scan, a
  mutated byte); refused with a clear reason, or ingested with the right ``size`` when it is known.

A "clear" reason (:data:`CLEAR_REASON`) is one short line that names what is wrong with the file,
never ``internal error`` and never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from lethe.engine import Lethe

CATEGORIES = (
    "truncated",
    "corrupt",
    "bomb",
    "empty",
    "tiny",
    "extreme-side",
    "cmyk",
    "16-bit",
    "palette",
    "animated",
    "wrong-extension",
    "exif",
    "polyglot",
    "not-an-image",
    "mutated",
    "face",
)
#: What every refusal reason must look like: one short line naming the problem.
CLEAR_REASON = re.compile(
    r"^(?!internal error)(?!.*Traceback).*(empty|corrupt|truncated|not an image|unsupported|too large|"
    r"over the limit|pixels|degenerate|not a regular file|cannot read|header|file not found)",
    re.IGNORECASE,
)
EPOCH = time.gmtime(1_577_836_800)  # 2020-01-01: a fixed date for writers that stamp one (PDF)
TOO_LARGE = r"pixels|too large|over the limit"
NOT_IMAGE = r"not an image|corrupt|unsupported|header"
EMPTY = r"^empty file$"


@dataclass(frozen=True, slots=True)
class Hostile:
    name: str
    data: bytes
    category: str
    expect: str  # "ok" | "error" | "either"
    reason: str = ""  # regular expression a refusal must match (besides CLEAR_REASON)
    size: tuple[int, int] | None = None  # (width, height) of an ingested photo, when known
    faces: int | None = None  # faces an ingested photo must hold, when known


# -- building blocks -------------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **kw)
    return buffer.getvalue()


def scene(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """A deterministic picture: a gradient with a few coloured rectangles."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    arr = np.zeros((height, width, 3), np.uint8)
    arr[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    arr[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    arr[..., 2] = seed * 37 % 256
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(1, width + 1)), y0 + int(rng.integers(1, height + 1))
        arr[y0:y1, x0:x1] = rng.integers(0, 256, 3)
    return Image.fromarray(arr).convert(mode)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(width: int, height: int, depth: int, colour: int, rows: bytes, extra: bytes = b"") -> bytes:
    """A PNG from its raw, already filtered scanlines (each row starts with its filter byte)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


def png_16bit_rgb(width: int, height: int, seed: int, alpha: bool = False) -> bytes:
    channels = 4 if alpha else 3
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 65536, (height, width, channels), dtype=np.uint16).astype(">u2")
    rows = b"".join(b"\x00" + pixels[r].tobytes() for r in range(height))
    return raw_png(width, height, 16, 6 if alpha else 2, rows)


def bomb_png(side: int) -> bytes:
    """A valid 1-bit side x side all-black PNG: a few KB on disk, side**2 pixels."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row * 500) for _ in range(side // 500))
    body += compressor.compress(row * (side % 500)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


def forged_png(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, offset of the marker, length field) of each header segment up to the first scan."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        yield marker, at, length
        if marker == 0xDA:
            return
        at += 2 + length


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOFn) claiming width x height."""
    for marker, at, _ in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]
    raise ValueError("no SOF segment")


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """The JPEG with one more APP1 segment right after SOI."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def tiff_exif(
    entries: list[tuple[int, int, int, bytes]], next_ifd: int = 0, big_endian: bool = False
) -> bytes:
    """``Exif\\0\\0`` + a TIFF header + one IFD of (tag, type, count, 4-byte value) entries."""
    e = ">" if big_endian else "<"
    header = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8)
    ifd = struct.pack(e + "H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack(e + "HHI", tag, kind, count) + value.ljust(4, b"\x00")[:4]
    return b"Exif\x00\x00" + header + ifd + struct.pack(e + "I", next_ifd)


def short(value: int, big_endian: bool = False) -> bytes:
    return struct.pack(">H" if big_endian else "<H", value)


def gif_screen(width: int, height: int) -> bytes:
    """A GIF whose logical screen claims width x height around a 1x1 image."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00;"
    )


def bmp_header(width: int, height: int, bits: int = 24, compression: int = 0, colours: int = 0) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, compression, 0, 2835, 2835, colours, 0)
    body = b"\x00" * 64
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(body), 0, 0, 14 + len(info)) + info + body


def tiff_claiming(
    width: int,
    height: int,
    *,
    compression: int = 1,
    bits: int = 8,
    samples: int = 1,
    strip_offset: int = 8,
    next_ifd: int = 0,
) -> bytes:
    """A little-endian TIFF whose only IFD claims these values (its pixel data is whatever follows)."""
    entries = [
        (256, 4, 1, struct.pack("<I", width)),
        (257, 4, 1, struct.pack("<I", height)),
        (258, 3, 1, short(bits)),
        (259, 3, 1, short(compression)),
        (262, 3, 1, short(1)),
        (273, 4, 1, struct.pack("<I", strip_offset)),
        (277, 3, 1, short(samples)),
        (278, 4, 1, struct.pack("<I", height)),
        (279, 4, 1, struct.pack("<I", 64)),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", next_ifd) + b"\x00" * 64


def webp_vp8x(width: int, height: int) -> bytes:
    """A WebP extended header claiming a width x height canvas, with a tiny lossless bitstream."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    vp8l = encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True)[12:]
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mutate(data: bytes, rng: random.Random, edits: int) -> bytes:
    """Random byte-level damage, biased towards the header where parsers live."""
    out = bytearray(data)
    for _ in range(edits):
        if not out:
            break
        head = rng.random() < 0.6
        at = rng.randrange(min(len(out), 256)) if head else rng.randrange(len(out))
        action = rng.randrange(5)
        if action == 0:
            out[at] ^= 1 << rng.randrange(8)
        elif action == 1:
            out[at] = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE])
        elif action == 2:
            del out[at : at + rng.randint(1, 16)]
        elif action == 3:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            out[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
    return bytes(out)


# -- the categories --------------------------------------------------------------------------------

Entry = tuple[str, bytes, str, str, tuple[int, int] | None]  # label, data, expect, reason, size
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
ALL_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def _valid_files(seed: int) -> list[tuple[str, bytes, tuple[int, int]]]:
    """One valid file per format and a few variants: (format, bytes, size)."""
    w, h = 96 + seed % 7, 64 + seed % 5
    picture = scene(w, h, seed)
    return [
        ("JPEG", encode(picture, "JPEG", quality=90), (w, h)),
        ("JPEG", encode(picture, "JPEG", quality=75, progressive=True), (w, h)),
        ("PNG", encode(picture, "PNG"), (w, h)),
        ("PNG", encode(picture.convert("RGBA"), "PNG", optimize=True), (w, h)),
        ("GIF", encode(picture.convert("P"), "GIF"), (w, h)),
        ("WEBP", encode(picture, "WEBP", quality=80), (w, h)),
        ("WEBP", encode(picture, "WEBP", lossless=True), (w, h)),
        ("BMP", encode(picture, "BMP"), (w, h)),
        ("TIFF", encode(picture, "TIFF", compression="tiff_lzw"), (w, h)),
        ("TIFF", encode(picture, "TIFF", compression="jpeg"), (w, h)),
    ]


def truncated(scale: int) -> Iterator[Entry]:
    for seed, (fmt, data, size) in enumerate(_valid_files(3)):
        for n in range(scale * 4):
            cut = max(1, len(data) * (n + 1) // (scale * 4 + 1) + (seed * 7 + n) % 13 - 6)
            cut = min(cut, len(data) - 1)
            yield f"{fmt.lower()}-{seed}-cut{cut}", data[:cut], "either", "", size
        yield f"{fmt.lower()}-{seed}-header-only", data[:12], "error", NOT_IMAGE, None


def corrupt(scale: int) -> Iterator[Entry]:
    picture = scene(80, 60, 11)
    jpeg = encode(picture, "JPEG", quality=85)
    png = encode(picture, "PNG")
    segments = {marker: (at, length) for marker, at, length in jpeg_segments(jpeg)}
    sos = segments[0xDA][0]
    yield "jpeg-zero-size", patch_jpeg_size(jpeg, 0, 0), "error", NOT_IMAGE + "|degenerate", None
    yield "jpeg-zero-width", patch_jpeg_size(jpeg, 0, 60), "error", NOT_IMAGE + "|degenerate", None
    yield "jpeg-no-scan", jpeg[:sos] + b"\xff\xd9", "either", "", (80, 60)
    yield "jpeg-scan-garbage", jpeg[: sos + 20] + bytes(range(256)) * 4 + b"\xff\xd9", "either", "", (80, 60)
    dqt = segments[0xDB][0]
    yield "jpeg-dqt-length-0", jpeg[: dqt + 2] + b"\x00\x00" + jpeg[dqt + 4 :], "error", NOT_IMAGE, None
    yield "jpeg-dqt-length-1", jpeg[: dqt + 2] + b"\x00\x01" + jpeg[dqt + 4 :], "error", NOT_IMAGE, None
    yield "jpeg-dqt-huge", jpeg[: dqt + 2] + b"\xff\xff" + jpeg[dqt + 4 :], "error", NOT_IMAGE, None
    dht = segments[0xC4][0]
    yield "jpeg-dht-zeroed", jpeg[: dht + 4] + b"\x00" * 40 + jpeg[dht + 44 :], "either", "", (80, 60)
    yield "jpeg-dht-ff", jpeg[: dht + 5] + b"\xff" * 16 + jpeg[dht + 21 :], "either", "", (80, 60)
    sof = segments[0xC0][0]
    yield "jpeg-sof-9-components", jpeg[: sof + 9] + b"\x09" + jpeg[sof + 10 :], "error", NOT_IMAGE, None
    yield "jpeg-sof-precision-12", jpeg[: sof + 4] + b"\x0c" + jpeg[sof + 5 :], "either", "", (80, 60)
    yield "jpeg-sof-sampling-0", jpeg[: sof + 11] + b"\x00" + jpeg[sof + 12 :], "error", NOT_IMAGE, None
    yield "jpeg-double-soi", jpeg[:2] + jpeg, "either", "", (80, 60)
    yield "jpeg-only-soi-eoi", b"\xff\xd8\xff\xd9", "error", NOT_IMAGE, None
    yield "jpeg-soi-then-zeros", b"\xff\xd8\xff" + b"\x00" * 1000, "error", NOT_IMAGE, None
    yield "jpeg-soi-then-ff", b"\xff\xd8" + b"\xff" * 5000, "error", NOT_IMAGE, None
    yield "jpeg-rst-storm", jpeg[: sos + 14] + b"\xff\xd0\xff\xd3" * 300 + b"\xff\xd9", "either", "", (80, 60)
    # PNG
    ihdr_end = 8 + 8 + 13 + 4
    body = png[ihdr_end:]
    yield "png-bad-ihdr-crc", png[: ihdr_end - 4] + b"\x00\x00\x00\x00" + body, "either", "", (80, 60)
    for depth, colour, label in [
        (3, 0, "depth-3"),
        (8, 5, "colour-5"),
        (16, 3, "palette-16bit"),
        (8, 7, "colour-7"),
        (0, 0, "depth-0"),
    ]:
        ihdr = struct.pack(">IIBBBBB", 80, 60, depth, colour, 0, 0, 0)
        yield f"png-{label}", png[:8] + png_chunk(b"IHDR", ihdr) + body, "error", NOT_IMAGE, None
    for field, label in [(10, "compression-1"), (11, "filter-1"), (12, "interlace-2")]:
        ihdr = bytearray(struct.pack(">IIBBBBB", 80, 60, 8, 2, 0, 0, 0))
        ihdr[field] = 1 if field < 12 else 2
        yield f"png-{label}", png[:8] + png_chunk(b"IHDR", bytes(ihdr)) + body, "either", "", (80, 60)
    head = png[:ihdr_end]
    rows = b"".join(b"\x00" + bytes(240) for _ in range(60))
    yield (
        "png-idat-not-zlib",
        head + png_chunk(b"IDAT", b"\x00" * 500) + png_chunk(b"IEND", b""),
        "error",
        NOT_IMAGE,
        None,
    )
    yield (
        "png-idat-short",
        head + png_chunk(b"IDAT", zlib.compress(rows[:100])) + png_chunk(b"IEND", b""),
        "error",
        NOT_IMAGE,
        None,
    )
    yield (
        "png-idat-long",
        head + png_chunk(b"IDAT", zlib.compress(rows * 50)) + png_chunk(b"IEND", b""),
        "either",
        "",
        (80, 60),
    )
    yield (
        "png-bad-filter",
        head + png_chunk(b"IDAT", zlib.compress(b"\x09" * len(rows))) + png_chunk(b"IEND", b""),
        "error",
        NOT_IMAGE,
        None,
    )
    yield "png-no-idat", head + png_chunk(b"IEND", b""), "error", NOT_IMAGE, None
    yield "png-no-iend", png[:-12], "either", "", (80, 60)
    yield (
        "png-chunk-length-2g",
        head + struct.pack(">I", 0x7FFFFFFF) + b"IDAT" + b"\x00" * 64,
        "error",
        NOT_IMAGE,
        None,
    )
    yield "png-palette-missing", raw_png(4, 4, 8, 3, b"\x00\x00\x01\x02\x03" * 4), "either", "", (4, 4)
    yield (
        "png-trns-too-long",
        raw_png(
            4,
            4,
            8,
            3,
            b"\x00\x00\x01\x02\x03" * 4,
            png_chunk(b"PLTE", b"\x00" * 12) + png_chunk(b"tRNS", b"\x00" * 300),
        ),
        "either",
        "",
        (4, 4),
    )
    yield (
        "png-palette-index-out-of-range",
        raw_png(4, 4, 8, 3, b"\x00\xff\xfe\xfd\xfc" * 4, png_chunk(b"PLTE", b"\x10" * 6)),
        "either",
        "",
        (4, 4),
    )
    text_bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 20_000_000))
    yield "png-ztxt-bomb", png[:ihdr_end] + text_bomb + body, "either", "", (80, 60)
    iccp_bomb = png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"\x00" * 20_000_000))
    yield "png-iccp-bomb", png[:ihdr_end] + iccp_bomb + body, "either", "", (80, 60)
    yield (
        "png-many-chunks",
        png[:ihdr_end] + png_chunk(b"tEXt", b"k\x00v") * 5000 + body,
        "either",
        "",
        (80, 60),
    )
    # GIF, BMP, TIFF, WebP
    gif = encode(picture.convert("P"), "GIF")
    yield "gif-lzw-size-12", gif[:-20] + b"\x0c" + gif[-19:], "either", "", (80, 60)
    yield "gif-no-trailer", gif[:-1], "either", "", (80, 60)
    yield "gif-no-image", gif[: 13 + 768] + b";", "either", "", None
    yield (
        "gif-frame-outside-screen",
        gif_screen(2, 2)[:-14]
        + b"\x2c"
        + struct.pack("<HHHHB", 60000, 60000, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00;",
        "either",
        "",
        None,
    )
    for bits in (0, 7, 33, 64):
        yield f"bmp-bits-{bits}", bmp_header(16, 16, bits=bits), "error", NOT_IMAGE, None
    yield "bmp-zero-width", bmp_header(0, 16), "error", NOT_IMAGE + "|degenerate", None
    yield "bmp-rle8-garbage", bmp_header(16, 16, bits=8, compression=1, colours=2), "either", "", (16, 16)
    yield "bmp-palette-huge", bmp_header(16, 16, bits=8, colours=0xFFFFFFFF), "error", NOT_IMAGE, None
    yield "bmp-negative-width", bmp_header(-16, 16), "error", NOT_IMAGE + "|degenerate|" + TOO_LARGE, None
    yield "bmp-top-down", bmp_header(16, -16), "either", "", (16, 16)
    yield "tiff-strip-out-of-file", tiff_claiming(16, 16, strip_offset=10_000_000), "either", "", (16, 16)
    yield "tiff-compression-unknown", tiff_claiming(16, 16, compression=50000), "error", NOT_IMAGE, None
    yield "tiff-bits-3", tiff_claiming(16, 16, bits=3), "error", NOT_IMAGE, None
    yield "tiff-samples-0", tiff_claiming(16, 16, samples=0), "error", NOT_IMAGE, None
    yield "tiff-samples-200", tiff_claiming(16, 16, samples=200), "error", NOT_IMAGE, None
    yield "tiff-ifd-loop", tiff_claiming(16, 16, next_ifd=8), "either", "", (16, 16)
    yield (
        "tiff-ifd-out-of-file",
        b"II*\x00" + struct.pack("<I", 0xFFFFFF00) + b"\x00" * 32,
        "error",
        NOT_IMAGE,
        None,
    )
    yield "tiff-zero-size", tiff_claiming(0, 0), "error", NOT_IMAGE + "|degenerate", None
    yield "tiff-jpeg-compression-garbage", tiff_claiming(16, 16, compression=7), "error", NOT_IMAGE, None
    webp = encode(picture, "WEBP", quality=80)
    yield "webp-riff-size-huge", webp[:4] + b"\xff\xff\xff\x7f" + webp[8:], "either", "", (80, 60)
    yield "webp-vp8-cut", webp[: len(webp) // 2], "error", NOT_IMAGE, None
    yield "webp-vp8-zeroed", webp[:30] + b"\x00" * (len(webp) - 30), "either", "", None
    yield "webp-fourcc-wrong", webp[:12] + b"VP9 " + webp[16:], "error", NOT_IMAGE, None
    # byte flips at fixed positions in each valid file
    for fmt, data, _ in _valid_files(5):
        for n in range(scale * 2):
            at = (n * 7919 + 13) % len(data)
            out = bytearray(data)
            out[at] ^= 0xFF
            yield f"{fmt.lower()}-flip{at}", bytes(out), "either", "", None


def bombs(scale: int) -> Iterator[Entry]:
    for side in (7072, 8000, 10_000, 12_000, 16_000, 20_000)[: 2 + scale]:
        yield f"png-real-{side}x{side}", bomb_png(side), "error", TOO_LARGE, None
    sides = [
        (7072, 7072),
        (10_000, 10_000),
        (50_000, 50_000),
        (65_535, 65_535),
        (1_000_000, 1_000),
        (2**31 - 1, 2**31 - 1),
        (100_000, 600),
        (60_000, 900),
    ]
    for w, h in sides:
        yield f"png-forged-{w}x{h}", forged_png(w, h), "error", TOO_LARGE + "|" + NOT_IMAGE, None
        if w <= 65_535 and h <= 65_535:
            jpeg = encode(scene(16, 16, 1), "JPEG")
            yield f"jpeg-forged-{w}x{h}", patch_jpeg_size(jpeg, w, h), "error", TOO_LARGE, None
            yield f"gif-forged-{w}x{h}", gif_screen(w, h), "error", TOO_LARGE, None
        if w < 2**31 and h < 2**31:
            yield f"bmp-forged-{w}x{h}", bmp_header(w, h), "error", TOO_LARGE + "|" + NOT_IMAGE, None
            yield f"tiff-forged-{w}x{h}", tiff_claiming(w, h), "error", TOO_LARGE + "|" + NOT_IMAGE, None
        if w <= 16_384 and h <= 16_384:
            yield f"webp-forged-{w}x{h}", webp_vp8x(w, h), "error", TOO_LARGE + "|" + NOT_IMAGE, None
    for n in range(scale * 3):
        w, h = 7072 + n * 977, 7072 + n * 313
        yield f"png-forged-{w}x{h}-rgba16", forged_png(w, h, 16, 6), "error", TOO_LARGE, None


def empty(scale: int) -> Iterator[Entry]:
    for suffix in (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")[: 2 + scale * 2]:
        yield f"zero-bytes{suffix}", b"", "error", EMPTY, None


def tiny(scale: int) -> Iterator[Entry]:
    one = scene(1, 1, 2)
    for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"):
        for mode in ("RGB", "L", "P", "RGBA", "1", "LA", "CMYK", "I;16")[: 2 + scale * 2]:
            try:
                data = encode(one.convert(mode) if mode != "I;16" else Image.new("I;16", (1, 1), 300), fmt)
            except (OSError, ValueError, KeyError):
                continue  # the format cannot hold that mode
            yield f"{fmt.lower()}-1x1-{mode.replace(';', '')}", data, "ok", "", (1, 1)
    for w, h in ((2, 1), (1, 2), (3, 3))[:scale]:
        yield f"png-{w}x{h}", encode(scene(w, h, 3), "PNG"), "ok", "", (w, h)


def extreme_sides(scale: int) -> Iterator[Entry]:
    for w, h in ((50_000, 1), (1, 50_000), (50_000, 3), (3, 50_000), (50_000, 40), (40, 50_000))[: 2 + scale]:
        for fmt in ("PNG", "GIF", "BMP", "TIFF", "JPEG"):
            picture = Image.new("L", (w, h), 128) if fmt != "GIF" else Image.new("P", (w, h), 1)
            yield f"{fmt.lower()}-{w}x{h}", encode(picture, fmt), "ok", "", (w, h)


def cmyk(scale: int) -> Iterator[Entry]:
    for n in range(scale * 3):
        w, h = 40 + n * 3, 30 + n
        picture = scene(w, h, 20 + n, "CMYK")
        yield f"jpeg-cmyk-{n}", encode(picture, "JPEG", quality=80 + n % 15), "ok", "", (w, h)
        yield f"tiff-cmyk-{n}", encode(picture, "TIFF"), "ok", "", (w, h)
        yield f"jpeg-ycck-{n}", encode(scene(w, h, 40 + n).convert("YCbCr"), "JPEG"), "ok", "", (w, h)


def sixteen_bit(scale: int) -> Iterator[Entry]:
    for n in range(scale * 2):
        w, h = 30 + n, 20 + n
        grey = Image.fromarray(np.arange(w * h, dtype=np.uint16).reshape(h, w) * (n + 7))
        yield f"png-grey16-{n}", encode(grey, "PNG"), "ok", "", (w, h)
        yield f"tiff-grey16-{n}", encode(grey, "TIFF"), "ok", "", (w, h)
        yield f"png-rgb48-{n}", png_16bit_rgb(w, h, n), "ok", "", (w, h)
        yield f"png-rgba64-{n}", png_16bit_rgb(w, h, n, alpha=True), "ok", "", (w, h)
        floats = Image.fromarray(np.linspace(-5, 5, w * h, dtype=np.float32).reshape(h, w))
        yield f"tiff-float-{n}", encode(floats, "TIFF"), "ok", "", (w, h)
        ints = Image.fromarray(np.linspace(-(2**30), 2**30, w * h).astype(np.int32).reshape(h, w))
        yield f"tiff-int32-{n}", encode(ints, "TIFF"), "ok", "", (w, h)


def palette(scale: int) -> Iterator[Entry]:
    for n in range(scale * 2):
        w, h = 50 + n, 40 + n
        picture = scene(w, h, 60 + n)
        for colours in (2, 4, 16, 256):
            quantised = picture.quantize(colours)
            yield (
                f"png-p{colours}-{n}",
                encode(quantised, "PNG", bits=max(1, (colours - 1).bit_length())),
                "ok",
                "",
                (w, h),
            )
            yield f"png-p{colours}-trns-{n}", encode(quantised, "PNG", transparency=0), "ok", "", (w, h)
        yield f"gif-p-trns-{n}", encode(picture.quantize(64), "GIF", transparency=3), "ok", "", (w, h)
        yield f"bmp-p-{n}", encode(picture.quantize(200), "BMP"), "ok", "", (w, h)
        yield f"tiff-p-{n}", encode(picture.quantize(100), "TIFF"), "ok", "", (w, h)
        yield f"webp-from-p-{n}", encode(picture.quantize(16).convert("RGBA"), "WEBP"), "ok", "", (w, h)


def animated(scale: int) -> Iterator[Entry]:
    for n in range(scale * 2):
        w, h = 48 + n, 32 + n
        frames = [scene(w, h, 80 + n + k) for k in range(2 + n * 3)]
        palette = [f.quantize() for f in frames]
        gif = encode(
            palette[0], "GIF", save_all=True, append_images=palette[1:], duration=40, loop=0, disposal=2
        )
        yield f"gif-{len(frames)}frames", gif, "ok", "", (w, h)
        for label, fmt, timing in (
            ("apng", "PNG", 40),
            ("webp", "WEBP", 40),
            ("tiff", "TIFF", 0),
            ("mpo", "MPO", 0),
        ):
            extra = {"duration": timing} if timing else {}
            data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **extra)
            yield f"{label}-{len(frames)}frames", data, "ok", "", (w, h)
        # a later frame larger than the screen
        small = [scene(w, h, 1).quantize(), scene(w * 3, h * 3, 2).quantize()]
        gif = encode(small[0], "GIF", save_all=True, append_images=small[1:])
        yield f"gif-growing-frame-{n}", gif, "either", "", None


def wrong_extension(scale: int) -> Iterator[Entry]:
    for seed in range(scale):
        for number, suffix in enumerate(sorted(set(SUFFIX.values()))):
            for fmt, data, size in _valid_files(30 + seed * 10 + number):
                if suffix != SUFFIX[fmt]:
                    yield f"{fmt.lower()}-{seed}-as{suffix}", data, "ok", "", size


def exif(scale: int) -> Iterator[Entry]:
    w, h = 48, 32
    for n in range(scale):
        jpeg = encode(scene(w, h, 90 + n), "JPEG", quality=90)
        for orientation in range(0, 10):
            ok_size = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
            for big_endian in (False, True):
                payload = tiff_exif([(0x0112, 3, 1, short(orientation, big_endian))], big_endian=big_endian)
                label = f"jpeg-orientation{orientation}-{'mm' if big_endian else 'ii'}-{n}"
                yield label, with_app1(jpeg, payload), "ok", "", ok_size
        for value in (255, 65535, 0x8000):
            yield (
                f"jpeg-orientation{value}-{n}",
                with_app1(jpeg, tiff_exif([(0x0112, 3, 1, short(value))])),
                "ok",
                "",
                (w, h),
            )
        entries = [
            ("orientation-as-ascii", [(0x0112, 2, 4, b"6\x00\x00\x00")]),
            ("orientation-count-huge", [(0x0112, 3, 0xFFFFFFFF, short(6))]),
            ("orientation-long", [(0x0112, 4, 1, struct.pack("<I", 6))]),
            ("orientation-rational", [(0x0112, 5, 1, struct.pack("<I", 4000))]),
            ("entry-offset-out-of-file", [(0x010F, 2, 5000, struct.pack("<I", 0x7FFFFFF0))]),
            ("type-unknown", [(0x0112, 99, 1, short(6))]),
            ("exif-ifd-loop", [(0x8769, 4, 1, struct.pack("<I", 8))]),
            ("gps-ifd-out-of-file", [(0x8825, 4, 1, struct.pack("<I", 0xFFFFFFF0))]),
        ]
        for label, fields in entries:
            yield f"jpeg-exif-{label}-{n}", with_app1(jpeg, tiff_exif(fields)), "ok", "", None
        yield (
            f"jpeg-exif-next-ifd-loop-{n}",
            with_app1(jpeg, tiff_exif([(0x0112, 3, 1, short(1))], next_ifd=8)),
            "ok",
            "",
            (w, h),
        )
        yield f"jpeg-exif-header-only-{n}", with_app1(jpeg, b"Exif\x00\x00"), "ok", "", (w, h)
        yield f"jpeg-exif-not-tiff-{n}", with_app1(jpeg, b"Exif\x00\x00" + b"\xab" * 100), "ok", "", (w, h)
        comment = b"\x00" * 8 + bytes(range(256)) * 250
        big = (
            tiff_exif([(0x0112, 3, 1, short(6)), (0x9286, 7, len(comment), struct.pack("<I", 38))]) + comment
        )
        yield f"jpeg-exif-64k-{n}", with_app1(jpeg, big[:65_500]), "ok", "", (h, w)
        many = b"".join(
            b"\xff\xe1" + struct.pack(">H", 65_535) + b"Exif\x00\x00" + b"\x5a" * 65_527 for _ in range(8)
        )
        yield f"jpeg-exif-8x64k-{n}", jpeg[:2] + many + jpeg[2:], "ok", "", None
        xmp = (
            b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
        )
        yield f"jpeg-xmp-orientation-{n}", with_app1(jpeg, xmp), "ok", "", None
        yield (
            f"jpeg-xmp-garbage-{n}",
            with_app1(jpeg, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta " + b"<" * 3000),
            "ok",
            "",
            (w, h),
        )
        exif6 = Image.Exif()
        exif6[0x0112] = 6
        picture = scene(w, h, 95 + n)
        yield f"png-exif-orientation6-{n}", encode(picture, "PNG", exif=exif6.tobytes()), "ok", "", None
        yield f"webp-exif-orientation6-{n}", encode(picture, "WEBP", exif=exif6.tobytes()), "ok", "", None
        yield f"tiff-orientation6-{n}", encode(picture, "TIFF", exif=exif6.tobytes()), "ok", "", None


def polyglots(scale: int) -> Iterator[Entry]:
    picture = scene(64, 48, 100)
    jpeg, png = encode(picture, "JPEG"), encode(picture, "PNG")
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("evil.sh", (2020, 1, 1, 0, 0, 0)), "#!/bin/sh\necho pwned\n")
    archive_bytes = zip_buffer.getvalue()
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    php = b"<?php system($_GET['c']); ?>"
    for n in range(scale):
        yield f"jpeg-plus-zip-{n}", jpeg + archive_bytes * (n + 1), "ok", "", (64, 48)
        yield f"png-plus-html-{n}", png + html * (n + 1), "ok", "", (64, 48)
        yield f"jpeg-plus-pdf-{n}", jpeg + b"%PDF-1.4\n1 0 obj<<>>endobj\n" * (n + 1), "ok", "", (64, 48)
        com = b"\xff\xfe" + struct.pack(">H", len(php) + 2) + php
        yield f"jpeg-php-comment-{n}", jpeg[:2] + com * (n + 1) + jpeg[2:], "ok", "", (64, 48)
        text = png_chunk(b"tEXt", b"Comment\x00" + html * (n + 1))
        yield f"png-html-text-chunk-{n}", png[:33] + text + png[33:], "ok", "", (64, 48)
        gifar = encode(Image.new("P", (10799, 10 + n), 0), "GIF")  # the width field reads "/*"
        yield f"gif-js-{n}", gifar + b"*/=alert(1);//" * (n + 1), "ok", "", (10799, 10 + n)
        yield f"pdf-then-jpeg-{n}", b"%PDF-1.4\n%\xe2\xe3\n" * (n + 1) + jpeg, "error", NOT_IMAGE, None
        yield f"html-then-png-{n}", html * (n + 1) + png, "error", NOT_IMAGE, None
        yield f"jpeg-magic-then-html-{n}", b"\xff\xd8\xff\xe0" + html * (n + 1), "error", NOT_IMAGE, None
        yield f"png-magic-then-php-{n}", b"\x89PNG\r\n\x1a\n" + php * (n + 1), "error", NOT_IMAGE, None
        yield f"gif-magic-then-js-{n}", b"GIF89a" + b"=alert(1)" * (n + 1), "error", NOT_IMAGE, None
        svg = (
            b'<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,'
            + png.hex().encode()
            + b'"/></svg>'
        )
        yield f"svg-embedding-png-{n}", svg, "error", NOT_IMAGE, None


def not_images(scale: int) -> Iterator[Entry]:
    picture = scene(32, 24, 110)
    other = "ICO PCX TGA SGI QOI DDS MSP XBM PDF JPEG2000 AVIF BLP SPIDER EPS".split()  # noqa: SIM905
    for fmt in other:
        mode = {"MSP": "1", "XBM": "1", "SPIDER": "F", "EPS": "RGB"}.get(fmt, "RGB")
        try:
            fixed_dates = {"creationDate": EPOCH, "modDate": EPOCH} if fmt == "PDF" else {}
            data = encode(picture.convert(mode), fmt, **fixed_dates)
        except (OSError, ValueError, KeyError):
            continue  # that writer needs a tool this machine lacks (EPS: Ghostscript)
        yield f"{fmt.lower()}-file", data, "error", NOT_IMAGE, None
    fixed = {
        "text": b"just some words\n" * 10,
        "html": b"<!doctype html><html><body>hello</body></html>",
        "json": b'{"path": "../../etc/passwd"}',
        "xml-entity-bomb": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(b'<!ENTITY a%d "&a%d;&a%d;&a%d;">' % (i + 1, i, i, i) for i in range(9))
        + b"]><l>&a9;</l>",
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><circle r="5"/></svg>',
        "pdf": b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF",
        "zip": b"PK\x05\x06" + b"\x00" * 18,
        "gzip": zlib.compress(b"x" * 1000)[:2] + b"\x1f\x8b\x08\x00" + b"\x00" * 20,
        "elf": b"\x7fELF\x02\x01\x01" + b"\x00" * 57,
        "pe": b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00",
        "sqlite": b"SQLite format 3\x00" + b"\x00" * 84,
        "psd": b"8BPS\x00\x01" + b"\x00" * 6 + b"\x00\x03\x00\x00\x00\x10\x00\x00\x00\x10\x00\x08\x00\x03",
        "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
        "jxl": b"\xff\x0a" + b"\x00" * 30,
        "wmf": b"\xd7\xcd\xc6\x9a" + b"\x00" * 40,
        "eps-header": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        "riff-wave": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 20,
        "riff-webp-empty": b"RIFF\x04\x00\x00\x00WEBP",
        "bm-only": b"BM",
        "tiff-magic-only": b"II*\x00",
        "nul-bytes": b"\x00" * 4096,
        "ff-bytes": b"\xff" * 4096,
        "utf16-text": "not an image at all".encode("utf-16"),
        "shell": b"#!/bin/sh\nrm -rf / --no-preserve-root\n",
    }
    for label, data in fixed.items():
        yield label, data, "error", NOT_IMAGE, None
    rng = random.Random(1234)
    for n in range(scale * 15):
        size = rng.choice([1, 2, 3, 7, 64, 512, 4096, 65_536])
        yield f"random-{n}-{size}b", rng.randbytes(size), "error", NOT_IMAGE, None


def mutated(scale: int) -> Iterator[Entry]:
    bases = _valid_files(7)
    rng = random.Random(4321)
    for n in range(scale * 40):
        fmt, data, _ = bases[n % len(bases)]
        yield f"{fmt.lower()}-m{n}", mutate(data, rng, 1 + n % 6), "either", "", None


def face_variants(face: bytes) -> Iterator[tuple[str, bytes, str, tuple[int, int]]]:
    """A real one-face photo in hostile but valid encodings: each must still give exactly one face."""
    photo = Image.open(io.BytesIO(face)).convert("RGB")
    w, h = photo.size
    exif6 = Image.Exif()
    exif6[0x0112] = 6
    sideways = photo.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back upright
    yield "exif-orientation6.jpg", encode(sideways, "JPEG", quality=92, exif=exif6.tobytes()), "ok", (w, h)
    yield "cmyk.jpg", encode(photo.convert("CMYK"), "JPEG", quality=92), "ok", (w, h)
    yield "progressive.jpg", encode(photo, "JPEG", quality=90, progressive=True), "ok", (w, h)
    grey16 = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    yield "grey16.png", encode(grey16, "PNG"), "ok", (w, h)
    yield "palette.png", encode(photo.quantize(256), "PNG"), "ok", (w, h)
    yield "as-png.jpg", encode(photo, "PNG"), "ok", (w, h)
    yield "lossless.webp", encode(photo, "WEBP", lossless=True), "ok", (w, h)
    yield "zip-polyglot.jpg", face + b"PK\x05\x06" + b"\x00" * 18, "ok", (w, h)
    yield (
        "huge-exif.jpg",
        with_app1(face, tiff_exif([(0x0112, 3, 1, short(1))]) + b"\x00" * 60_000),
        "ok",
        (w, h),
    )
    yield (
        "animated.gif",
        encode(photo.quantize(), "GIF", save_all=True, append_images=[scene(w, h, 1).quantize()]),
        "ok",
        (w, h),
    )


# -- the corpus ------------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[int], Iterator[Entry]]] = {
    "truncated": truncated,
    "corrupt": corrupt,
    "bomb": bombs,
    "empty": empty,
    "tiny": tiny,
    "extreme-side": extreme_sides,
    "cmyk": cmyk,
    "16-bit": sixteen_bit,
    "palette": palette,
    "animated": animated,
    "wrong-extension": wrong_extension,
    "exif": exif,
    "polyglot": polyglots,
    "not-an-image": not_images,
    "mutated": mutated,
}
#: Files that must be ingested but go over the default pixel limit's memory cost on purpose (a real
#: 49-megapixel image just under LETHE_MAX_IMAGE_PIXELS): only in the full corpus.
BIG_VALID_SIDE = 7000


def _suffix(label: str) -> tuple[str, str]:
    """The label without the suffix it names, and the file suffix: the one the label ends with, else
    the one of the format it starts with, else one of the image suffixes (not-images must reach the
    decoder: a folder walk takes only image suffixes)."""
    explicit = Path(label).suffix
    if explicit in ALL_SUFFIXES:
        return label.removesuffix(explicit), explicit
    fmt = label.split("-")[0].upper()
    fmt = {"APNG": "PNG", "MPO": "JPEG"}.get(fmt, fmt)
    if fmt in SUFFIX:
        return label, SUFFIX[fmt]
    return label, ALL_SUFFIXES[zlib.crc32(label.encode()) % len(ALL_SUFFIXES)]


def corpus(scale: int = 5, face: bytes | None = None) -> list[Hostile]:
    """The corpus: ``scale`` 5 gives >= 1,000 files (the benchmark), 1 a few hundred, and
    :func:`small_corpus` a few dozen. Duplicate contents are dropped (first one kept)."""
    files: list[Hostile] = []
    seen: set[str] = set()

    def add(
        category: str,
        label: str,
        data: bytes,
        expect: str,
        reason: str,
        size: tuple[int, int] | None,
        faces: int | None = None,
    ) -> None:
        digest = hashlib.sha256(data).hexdigest()
        if data and digest in seen:
            return
        seen.add(digest)
        label, suffix = _suffix(label)
        name = f"{len(files):04d}-{category}-{re.sub(r'[^A-Za-z0-9_-]+', '_', label)}{suffix}"
        files.append(Hostile(name, data, category, expect, reason, size, faces))

    for category, generate in GENERATORS.items():
        for label, data, expect, reason, size in generate(scale):
            add(category, label, data, expect, reason, size)
    if scale >= 5:
        big = Image.new("1", (BIG_VALID_SIDE, BIG_VALID_SIDE), 1)
        add("bomb", "png-valid-49mp", encode(big, "PNG"), "ok", "", (BIG_VALID_SIDE, BIG_VALID_SIDE))
    if face is not None:
        for label, data, expect, size in face_variants(face):
            add("face", label, data, expect, "", size, faces=1)
    return files


def small_corpus(face: bytes | None = None) -> list[Hostile]:
    """A few files of every category (the default test suite's slice): every 12th of ``corpus(1)``,
    plus the first file of each category so none is missing."""
    everything = corpus(1, face)
    firsts = {f.category: f for f in reversed(everything)}
    picked = {f.name: f for i, f in enumerate(everything) if i % 12 == 0 or f.category == "face"}
    picked.update({f.name: f for f in firsts.values()})
    return sorted(picked.values(), key=lambda f: f.name)


def write(files: list[Hostile], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for item in files:
        (folder / item.name).write_bytes(item.data)
    return folder


def check(files: list[Hostile], outcome: dict[str, dict[str, object]]) -> list[str]:
    """What went wrong, one line per file: ``outcome`` maps each file name to ``{"error": reason}``
    or ``{"width": w, "height": h, "faces": n}``."""
    problems = []
    for item in files:
        got = outcome.get(item.name)
        if got is None:
            problems.append(f"{item.name}: neither ingested nor refused")
            continue
        reason = got.get("error")
        if isinstance(reason, str):
            if item.expect == "ok":
                problems.append(f"{item.name}: refused ({reason}) but it is a usable image")
            elif not CLEAR_REASON.search(reason) or len(reason) > 300 or "\n" in reason:
                problems.append(f"{item.name}: unclear reason {reason!r}")
            elif item.reason and not re.search(item.reason, reason, re.IGNORECASE):
                problems.append(f"{item.name}: reason {reason!r} does not match {item.reason!r}")
            continue
        if item.expect == "error":
            problems.append(f"{item.name}: ingested but must be refused ({item.reason})")
        size = (got.get("width"), got.get("height"))
        if item.size is not None and "width" in got and size != item.size:  # no row: no face, no size
            problems.append(
                f"{item.name}: ingested as {size[0]}x{size[1]}, expected {item.size[0]}x{item.size[1]}"
            )
        if item.faces is not None and got.get("faces") != item.faces:
            problems.append(f"{item.name}: {got.get('faces')} face(s), expected {item.faces}")
    return problems


def ingest_outcome(
    engine: Lethe, errors: list[dict[str, str]], files: list[Hostile]
) -> dict[str, dict[str, object]]:
    """What an ingest did with each file (by file name): its refusal reason from the report's
    ``errors``, the size and face count the catalog holds for it, or for a photo with no face (no
    row is stored: only its hash) ``{"faces": 0}``."""
    from sqlalchemy import func, select

    from lethe.catalog.tables import FacelessImageRow, FaceRow, ImageRow

    outcome: dict[str, dict[str, object]] = {Path(e["path"]).name: {"error": e["reason"]} for e in errors}
    with engine.catalog.session() as session:
        faceless = set(session.scalars(select(FacelessImageRow.sha256)))
        for item in files:
            if hashlib.sha256(item.data).hexdigest() in faceless:
                outcome.setdefault(item.name, {"faces": 0})
        faces = func.count(FaceRow.id)
        rows = session.execute(
            select(ImageRow.uri, ImageRow.width, ImageRow.height, faces)
            .outerjoin(FaceRow, FaceRow.image_id == ImageRow.id)
            .group_by(ImageRow.id)
        ).all()
    for uri, width, height, count in rows:
        outcome[Path(uri).name] = {"width": width, "height": height, "faces": int(count)}
    return outcome
