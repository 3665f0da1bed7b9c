"""Tests for lethe.imaging.decode_image: formats, orientation, colour modes, bombs and garbage."""

from __future__ import annotations

import io
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from lethe.errors import ConfigError, ImageError, ImageTooLargeError
from lethe.imaging import SUPPORTED_FORMATS, DecodedImage, decode_image

BIG = 10_000_000
RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def two_tone(w: int = 40, h: int = 30) -> Image.Image:
    """Left half red, right half blue."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = RED
    arr[:, w // 2 :] = BLUE
    return Image.fromarray(arr)


def close(pixel: np.ndarray, expected: tuple[int, ...], tol: int) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(expected)) <= tol))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def forged_png(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose IHDR claims width x height 8-bit grey, with whatever IDAT payload is given."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def real_bomb_png(side: int) -> bytes:
    """A valid 1-bit side x side all-black PNG built row by row: a few KB on disk, side**2 pixels."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row * 500) for _ in range(side // 500)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "kw", "tol"),
    [
        ("JPEG", {"quality": 95}, 40),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("WEBP", {"quality": 90}, 40),
        ("GIF", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_lzw"}, 0),
    ],
)
def test_each_format_round_trips(fmt: str, kw: dict[str, object], tol: int) -> None:
    out = decode_image(encode(two_tone(), fmt, **kw), max_pixels=BIG)
    assert isinstance(out, DecodedImage)
    assert out.format == fmt and fmt in SUPPORTED_FORMATS
    assert (out.width, out.height) == (40, 30)
    assert out.pixels.shape == (30, 40, 3)
    assert out.pixels.dtype == np.uint8 and out.pixels.flags.c_contiguous
    assert close(out.pixels[15, 5], RED, tol)
    assert close(out.pixels[15, 35], BLUE, tol)


def test_supported_formats_exact() -> None:
    assert frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM"}) == SUPPORTED_FORMATS


def test_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (8, 6), c) for c in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    out = decode_image(data, max_pixels=BIG)
    assert out.format == "GIF"
    assert np.all(out.pixels == np.array(RED, np.uint8))


def test_multipage_tiff_gives_first_page() -> None:
    pages = [Image.new("RGB", (5, 5), c) for c in (GREEN, RED)]
    out = decode_image(encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]), max_pixels=BIG)
    assert np.all(out.pixels == np.array(GREEN, np.uint8))


def test_mpo_reports_jpeg() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, BLUE)]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    out = decode_image(data, max_pixels=BIG)
    assert out.format == "JPEG"
    assert close(out.pixels[4, 4], RED, 10)


# ---------------------------------------------------------------- orientation


def marked() -> Image.Image:
    """40 wide x 20 tall, blue, with a red top-left 10x10 marker."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:] = BLUE
    arr[:10, :10] = RED
    return Image.fromarray(arr)


def jpeg_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return encode(marked(), "JPEG", quality=95, exif=exif.tobytes())


def test_orientation_1_untouched() -> None:
    out = decode_image(jpeg_with_orientation(1), max_pixels=BIG)
    assert out.pixels.shape == (20, 40, 3)
    assert close(out.pixels[3, 3], RED, 40)


def test_orientation_6_rotates_clockwise() -> None:
    out = decode_image(jpeg_with_orientation(6), max_pixels=BIG)
    assert (out.width, out.height) == (20, 40)
    assert out.pixels.shape == (40, 20, 3)
    assert close(out.pixels[3, 16], RED, 40)  # top-left marker moves to top-right
    assert close(out.pixels[3, 3], BLUE, 40)
    assert close(out.pixels[36, 3], BLUE, 40)


def test_orientation_8_rotates_counter_clockwise() -> None:
    out = decode_image(jpeg_with_orientation(8), max_pixels=BIG)
    assert out.pixels.shape == (40, 20, 3)
    assert close(out.pixels[36, 3], RED, 40)  # top-left marker moves to bottom-left
    assert close(out.pixels[3, 3], BLUE, 40)
    assert close(out.pixels[3, 16], BLUE, 40)


def test_orientation_out_of_range_ignored() -> None:
    out = decode_image(jpeg_with_orientation(42), max_pixels=BIG)
    assert out.pixels.shape == (20, 40, 3)


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00garbage-garbage-garbage",
        b"Exif\x00\x00II*\x00" + struct.pack("<I", 0xFFFFFF00),
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01",
        # Orientation stored as an ASCII string pointing past the end of the block
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00"
        + struct.pack("<HHII", 0x0112, 2, 4, 0x1000)
        + b"\0" * 4,
    ],
)
def test_broken_exif_tolerated(exif: bytes) -> None:
    data = encode(marked(), "JPEG", quality=95, exif=exif)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = decode_image(data, max_pixels=BIG)
    assert out.pixels.shape == (20, 40, 3)
    assert close(out.pixels[3, 3], RED, 40)


def test_exif_reader_exception_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Image.Image) -> Image.Exif:
        raise SyntaxError("broken EXIF")

    monkeypatch.setattr(Image.Image, "getexif", boom)
    out = decode_image(jpeg_with_orientation(6), max_pixels=BIG)
    assert out.pixels.shape == (20, 40, 3)  # un-rotated, but decoded


# ---------------------------------------------------------------- colour modes


def test_rgba_transparent_becomes_white() -> None:
    arr = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    arr[0, 0] = (255, 0, 0, 255)  # opaque red
    arr[0, 1] = (0, 0, 0, 128)  # half-transparent black
    out = decode_image(encode(Image.fromarray(arr, "RGBA"), "PNG"), max_pixels=BIG)
    assert tuple(out.pixels[3, 3]) == WHITE
    assert tuple(out.pixels[0, 0]) == RED
    assert close(out.pixels[0, 1], (127, 127, 127), 2)


def test_rgba_webp_transparent_becomes_white() -> None:
    data = encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "WEBP", lossless=True)
    assert np.all(decode_image(data, max_pixels=BIG).pixels == 255)


def test_la_transparent_becomes_white() -> None:
    out = decode_image(encode(Image.new("LA", (3, 3), (10, 0)), "PNG"), max_pixels=BIG)
    assert np.all(out.pixels == 255)


def test_palette_with_transparency_becomes_white() -> None:
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((1, 1), 1)
    out = decode_image(encode(im, "PNG", transparency=0), max_pixels=BIG)
    assert tuple(out.pixels[0, 0]) == WHITE
    assert tuple(out.pixels[1, 1]) == RED


def test_gif_transparency_becomes_white() -> None:
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((2, 2), 1)
    out = decode_image(encode(im, "GIF", transparency=0), max_pixels=BIG)
    assert tuple(out.pixels[0, 0]) == WHITE
    assert tuple(out.pixels[2, 2]) == BLUE


def test_palette_opaque() -> None:
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 255, 0] + [0] * 765)
    out = decode_image(encode(im, "PNG"), max_pixels=BIG)
    assert np.all(out.pixels == np.array(GREEN, np.uint8))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF"])
def test_grey_l(fmt: str) -> None:
    out = decode_image(encode(Image.new("L", (5, 5), 100), fmt), max_pixels=BIG)
    assert out.pixels.shape == (5, 5, 3)
    assert close(out.pixels[2, 2], (100, 100, 100), 2)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_bilevel_1(fmt: str) -> None:
    im = Image.new("1", (8, 8), 0)
    im.putpixel((0, 0), 1)
    out = decode_image(encode(im, fmt), max_pixels=BIG)
    assert tuple(out.pixels[0, 0]) == WHITE
    assert tuple(out.pixels[7, 7]) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk(fmt: str) -> None:
    im = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    data = encode(im, fmt)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = decode_image(data, max_pixels=BIG)
    assert close(out.pixels[4, 4], RED, 20)


def test_ycbcr_tiff_like_jpeg() -> None:
    im = Image.new("RGB", (8, 8), GREEN).convert("YCbCr")
    out = decode_image(encode(im, "JPEG", quality=95), max_pixels=BIG)
    assert close(out.pixels[4, 4], GREEN, 20)


def test_png_16bit_scaled_not_clipped() -> None:
    arr = np.array([[0, 32768, 65535, 256]], dtype=np.uint16)
    data = encode(Image.fromarray(arr), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = decode_image(data, max_pixels=BIG)
    assert out.pixels.shape == (1, 4, 3)
    assert out.pixels[0, 0, 0] == 0
    assert abs(int(out.pixels[0, 1, 0]) - 128) <= 1
    assert out.pixels[0, 2, 0] == 255
    assert out.pixels[0, 3, 0] == 1
    assert np.all(out.pixels[..., 0] == out.pixels[..., 2])


def test_tiff_16bit_big_endian() -> None:
    im = Image.frombytes("I;16B", (2, 1), b"\x80\x00\xff\xff")
    out = decode_image(encode(im, "TIFF"), max_pixels=BIG)
    assert abs(int(out.pixels[0, 0, 0]) - 128) <= 1
    assert out.pixels[0, 1, 0] == 255


def test_tiff_float_0_to_1() -> None:
    im = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    out = decode_image(encode(im, "TIFF"), max_pixels=BIG)
    assert list(out.pixels[0, :, 1]) == [0, 128, 255]


def test_tiff_float_with_a_signalling_nan_decodes_quietly() -> None:
    # found by the fuzz target: casting a signalling NaN raised numpy's "invalid value" warning
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    values.view(np.uint32)[0, 0] = 0x7F800001
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = decode_image(encode(Image.fromarray(values), "TIFF"), max_pixels=BIG)
    assert list(out.pixels[0, :, 1]) == [0, 128, 255]


def test_tiff_int32_16bit_range() -> None:
    im = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    out = decode_image(encode(im, "TIFF"), max_pixels=BIG)
    assert list(out.pixels[0, :, 0]) == [0, 255]


# ---------------------------------------------------------------- size limits


def test_max_pixels_boundary_exact() -> None:
    data = encode(Image.new("RGB", (10, 10), RED), "PNG")
    assert decode_image(data, max_pixels=100).pixels.shape == (10, 10, 3)
    with pytest.raises(ImageTooLargeError, match="10x10"):
        decode_image(data, max_pixels=99)


def test_max_pixels_checked_on_stored_not_rotated_size() -> None:
    data = jpeg_with_orientation(6)
    assert decode_image(data, max_pixels=800).pixels.shape == (40, 20, 3)
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=799)


def watch_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every start of pixel decoding: PIL's ``ImageFile.load`` and its decoder factory (which
    every codec goes through). Both still do their work."""
    started: list[str] = []
    load, getdecoder = ImageFile.ImageFile.load, Image._getdecoder

    def watched_load(self: ImageFile.ImageFile) -> object:
        started.append("load")
        return load(self)

    def watched_getdecoder(*args: object, **kwargs: object) -> object:
        started.append("decoder")
        return getdecoder(*args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", watched_load)
    monkeypatch.setattr(Image, "_getdecoder", watched_getdecoder)
    return started


def test_real_pixel_bomb_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = real_bomb_png(9_000)  # 81 Mpx (under PIL's own guard, so our header check is what stops it)
    assert len(data) < 100_000
    assert Image.open(io.BytesIO(data)).size == (9_000, 9_000)
    decoding = watch_decoding(monkeypatch)
    decode_image(encode(Image.new("1", (8, 8)), "PNG"), max_pixels=BIG)
    assert {"load", "decoder"} <= set(decoding)  # the probe sees a decode when there is one
    decoding.clear()
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(data, max_pixels=1_000_000)
    assert decoding == [], "pixel data was decoded before the pixel limit was checked"
    assert "9000x9000" in str(info.value) and "1000000" in str(info.value)


def test_bomb_over_pil_guard_names_size_and_limit() -> None:
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(real_bomb_png(10_000), max_pixels=1_000_000)
    assert "100000000" in str(info.value) and "1000000 pixels" in str(info.value)


def test_forged_header_bomb_refused() -> None:
    data = forged_png(5_000, 5_000, zlib.compress(b"\x00" * 100))  # header claims 25 Mpx, body is tiny
    with pytest.raises(ImageTooLargeError, match="5000x5000"):
        decode_image(data, max_pixels=BIG)


def test_pil_decompression_bomb_error_mapped() -> None:
    data = forged_png(50_000, 50_000, zlib.compress(b"\x00" * 100))  # 2.5 Gpx: PIL's hard limit trips first
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=10**12)


def test_pil_decompression_bomb_warning_mapped_and_filters_restored() -> None:
    data = real_bomb_png(10_000)  # 100 Mpx: over PIL's warning threshold, under its hard limit
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < 10_000**2
    before = list(warnings.filters)
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=10**12)
    assert list(warnings.filters) == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_over_max_bytes() -> None:
    data = encode(Image.new("RGB", (10, 10)), "PNG")
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_image(data, max_pixels=BIG, max_bytes=len(data) - 1)
    assert decode_image(data, max_pixels=BIG, max_bytes=len(data)).width == 10


def test_bad_max_pixels_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        decode_image(b"x", max_pixels=0)


@pytest.mark.parametrize("command", [["index", "stats"], ["serve"]])
def test_a_pixel_limit_below_one_is_one_readable_line_from_the_cli(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The setting behind ``max_pixels`` is validated when settings load, so the command line and
    the service (``lethe serve``) refuse it with one line and exit status 2, never a traceback."""
    from typer.testing import CliRunner

    from lethe.cli import app

    monkeypatch.setenv("LETHE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LETHE_MAX_IMAGE_PIXELS", "0")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] != []
    assert "LETHE_MAX_IMAGE_PIXELS" in result.output
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------- garbage in


def truncated(fmt: str) -> bytes:
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    return data[: len(data) // 2]


GARBAGE = {
    "empty": b"",
    "random": random.Random(7).randbytes(4096),
    "text": b"hello, this is plainly a text file\n" * 10,
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10" fill="red"/></svg>',
    "ico_not_allowed": encode(Image.new("RGB", (16, 16)), "ICO"),
    "pbm_bitmap_not_allowed": b"P1\n2 2\n0 1 1 0\n",
    "pfm_float_map_not_allowed": b"Pf\n2 1\n-1.0\n" + b"\x00" * 8,
    "truncated_jpeg": truncated("JPEG"),
    "truncated_png": truncated("PNG"),
    "png_magic_only": b"\x89PNG\r\n\x1a\n",
    "png_magic_garbage": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    "jpeg_magic_only": b"\xff\xd8\xff",
    "zero_width_png": forged_png(0, 10, zlib.compress(b"")),
    "png_bad_idat": forged_png(4, 4, b"not zlib at all"),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_raises_image_error(name: str) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(GARBAGE[name], max_pixels=BIG)
    assert str(info.value).strip()


def test_messages_are_specific() -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", max_pixels=BIG)
    with pytest.raises(ImageError, match="unrecognised format"):
        decode_image(GARBAGE["pdf"], max_pixels=BIG)
    with pytest.raises(ImageError, match="truncated"):
        decode_image(GARBAGE["truncated_jpeg"], max_pixels=BIG)
    with pytest.raises(ImageError, match="corrupt PNG"):
        decode_image(GARBAGE["png_magic_garbage"], max_pixels=BIG)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_mutated_files_never_leak_foreign_exceptions(fmt: str) -> None:
    rng = random.Random(fmt)
    base = bytearray(encode(two_tone(16, 12), fmt))
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = decode_image(bytes(data), max_pixels=100_000)
        except ImageError as exc:
            assert str(exc)
        else:
            assert out.pixels.ndim == 3 and out.pixels.shape[2] == 3 and out.pixels.dtype == np.uint8


@pytest.mark.parametrize(
    "exc",
    [
        OSError("x"),
        ValueError("x"),
        SyntaxError("x"),
        struct.error("x"),
        EOFError(),
        IndexError("x"),
        KeyError("x"),
    ],
)
def test_foreign_decoder_exceptions_are_mapped(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    def fail(self: Image.Image) -> None:
        raise exc

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    with pytest.raises(ImageError, match="corrupt or truncated") as info:
        decode_image(encode(Image.new("RGB", (4, 4)), "PNG"), max_pixels=BIG)
    assert info.value.__cause__ is exc


def test_memory_error_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: Image.Image) -> None:
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    with pytest.raises(ImageTooLargeError):
        decode_image(encode(Image.new("RGB", (4, 4)), "PNG"), max_pixels=BIG)


# --- Netpbm (PGM / PPM), as classic face data sets ship them ----------------------------------


def netpbm_files(rgb: np.ndarray) -> dict[str, bytes]:
    """The photo as raw PPM (P6) and PGM (P5) written by Pillow, and as plain PPM (P3) and PGM (P2)
    written here by the Netpbm rules (ASCII numbers, a comment in the header)."""
    height, width, _ = rgb.shape
    grey = np.asarray(Image.fromarray(rgb).convert("L"))

    def plain(magic: bytes, values: np.ndarray) -> bytes:
        body = b"\n".join(b" ".join(b"%d" % v for v in row) for row in values.reshape(height, -1))
        return magic + b"\n# made from a fixture photo\n%d %d\n255\n" % (width, height) + body + b"\n"

    return {
        "P6": encode(Image.fromarray(rgb), "PPM"),
        "P5": encode(Image.fromarray(grey), "PPM"),
        "P3": plain(b"P3", rgb),
        "P2": plain(b"P2", grey),
    }


@pytest.fixture(scope="module")
def face_photo(fixtures_dir: Path) -> np.ndarray:
    jpeg = (fixtures_dir / "identities" / "barack_obama" / "obama-240p.jpg").read_bytes()
    return decode_image(jpeg, max_pixels=BIG).pixels


@pytest.mark.parametrize("magic", ["P2", "P3", "P5", "P6"])
def test_netpbm_photos_decode_to_the_same_pixels(face_photo: np.ndarray, magic: str) -> None:
    data = netpbm_files(face_photo)[magic]
    assert data.startswith(magic.encode())

    out = decode_image(data, max_pixels=BIG)

    assert out.format == "PPM"
    assert (out.height, out.width) == face_photo.shape[:2]
    if magic in ("P3", "P6"):
        assert np.array_equal(out.pixels, face_photo)
    else:  # a greymap comes back as grey RGB
        grey = np.asarray(Image.fromarray(face_photo).convert("L"))
        assert np.array_equal(out.pixels, np.repeat(grey[..., None], 3, axis=-1))


@pytest.mark.parametrize("magic", ["P2", "P5"])
def test_netpbm_obeys_the_pixel_limit_before_decoding(
    face_photo: np.ndarray, magic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = netpbm_files(face_photo)[magic]
    height, width = face_photo.shape[:2]
    decoding = watch_decoding(monkeypatch)
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        decode_image(data, max_pixels=width * height - 1)
    assert decoding == []
    assert decode_image(data, max_pixels=width * height).width == width


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("truncated raw pixmap", b"P6\n40 30\n255\n" + b"\x80" * 100, "truncated"),
        ("truncated plain greymap", b"P2\n4 3\n255\n1 2 3\n", "corrupt or truncated"),
        ("value over maxval", b"P2\n2 1\n255\n1 999\n", "corrupt or truncated"),
        ("header only", b"P6\n", "corrupt or truncated"),
        ("negative width", b"P6\n-4 3\n255\n", "corrupt PPM header"),
        ("endless number", b"P3\n1 1\n255\n" + b"9" * 5000 + b" 0 0\n", "corrupt or truncated"),
        ("bitmap", b"P4\n8 1\n\xff", "unsupported Netpbm variant P4"),
    ],
)
def test_hostile_netpbm_is_refused_with_a_clear_error(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_image(data, max_pixels=BIG)


def test_netpbm_bomb_header_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    decoding = watch_decoding(monkeypatch)
    with pytest.raises(ImageTooLargeError):
        decode_image(b"P5\n4000000 4000000\n255\n" + b"\x00" * 64, max_pixels=BIG)
    assert decoding == []
