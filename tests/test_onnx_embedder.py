"""The ONNX conversion of dlib's face ResNet: same vectors as dlib, cached safely, clear errors."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lethe.alignment import Landmarker, face_chip
from lethe.detection import DlibHogDetector
from lethe.embedding import DlibResnetEmbedder, Embedder, dlib_onnx
from lethe.embedding.dlib_format import Affine, Conv, DlibReader, output_shapes, parse_face_resnet
from lethe.embedding.dlib_onnx import convert
from lethe.embedding.onnx_resnet import OnnxResnetEmbedder
from lethe.errors import ConfigError, ModelError
from lethe.imaging import decode_image
from lethe.models import dlib_model_path
from lethe.types import RGBImage

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
MIN_COSINE = 0.9999


@pytest.fixture(scope="session")
def fixture_chips(fixtures_dir: Path) -> list[RGBImage]:
    """Every face the HOG pipeline finds in the photo fixtures, as 150x150 chips (26 today)."""
    detector, landmarker = DlibHogDetector(), Landmarker()
    chips: list[RGBImage] = []
    for path in sorted(p for p in fixtures_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        pixels = decode_image(path.read_bytes(), max_pixels=60_000_000).pixels
        for det in detector.detect(pixels):
            chips.append(face_chip(pixels, landmarker.shape(pixels, det.box), 150, 0.25))
    return chips


@pytest.fixture(scope="session")
def dlib_vectors(fixture_chips: list[RGBImage]) -> np.ndarray:
    return DlibResnetEmbedder().embed(fixture_chips)


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.fixture(scope="session")
def onnx_embedder(onnx_cache: Path) -> OnnxResnetEmbedder:
    return OnnxResnetEmbedder(onnx_cache)


def test_same_vectors_as_dlib_on_every_fixture_face(
    fixture_chips: list[RGBImage], dlib_vectors: np.ndarray, onnx_embedder: OnnxResnetEmbedder
) -> None:
    assert len(fixture_chips) >= 20, "the fixtures should yield about 26 faces"
    vectors = onnx_embedder.embed(fixture_chips)
    assert vectors.shape == (len(fixture_chips), 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * dlib_vectors, axis=1)
    assert cosines.min() >= MIN_COSINE, f"cosines to dlib: min {cosines.min():.7f}, per face {cosines}"


def test_batched_equals_one_at_a_time(
    fixture_chips: list[RGBImage], onnx_embedder: OnnxResnetEmbedder, onnx_cache: Path
) -> None:
    batched = onnx_embedder.embed(fixture_chips)  # batch_size 32: one batch
    small_batches = OnnxResnetEmbedder(onnx_cache, batch_size=3).embed(fixture_chips)
    single = np.concatenate([onnx_embedder.embed([chip]) for chip in fixture_chips])
    np.testing.assert_allclose(small_batches, batched, atol=1e-5)
    np.testing.assert_allclose(single, batched, atol=1e-5)


def test_embedder_contract(onnx_embedder: OnnxResnetEmbedder) -> None:
    assert isinstance(onnx_embedder, Embedder)
    assert (onnx_embedder.name, onnx_embedder.dim) == ("dlib-resnet-onnx", 128)
    assert (onnx_embedder.chip_size, onnx_embedder.chip_padding) == (150, 0.25)
    assert onnx_embedder.embed([]).shape == (0, 128)
    with pytest.raises(ModelError):
        onnx_embedder.embed([np.zeros((112, 112, 3), dtype=np.uint8)])
    with pytest.raises(ModelError):
        onnx_embedder.embed([np.zeros((150, 150, 3), dtype=np.float32)])


@pytest.mark.parametrize("settings", [{"threads": 0}, {"batch_size": 0}])
def test_runtime_settings_below_one_are_refused(settings: dict[str, int], onnx_cache: Path) -> None:
    with pytest.raises(ConfigError, match="must be >= 1"):
        OnnxResnetEmbedder(onnx_cache, **settings)


def test_conversion_is_cached_and_reused(onnx_embedder: OnnxResnetEmbedder, onnx_cache: Path) -> None:
    model = onnx_embedder.model_path
    sidecar = model.with_name(model.name + ".sha256")
    assert model.parent == onnx_cache and sidecar.is_file()
    source_sha = hashlib.sha256(dlib_model_path("resnet").read_bytes()).hexdigest()
    assert source_sha[:16] in model.name
    assert sidecar.read_text().split()[0] == hashlib.sha256(model.read_bytes()).hexdigest()
    before = (model.stat().st_mtime_ns, sidecar.stat().st_mtime_ns)
    again = OnnxResnetEmbedder(onnx_cache, threads=2)
    assert again.model_path == model
    assert (model.stat().st_mtime_ns, sidecar.stat().st_mtime_ns) == before
    assert sorted(p.name for p in onnx_cache.iterdir()) == sorted([model.name, sidecar.name])


def test_corrupted_or_unrecorded_cache_is_rebuilt(
    onnx_embedder: OnnxResnetEmbedder, fixture_chips: list[RGBImage], tmp_path: Path
) -> None:
    good = onnx_embedder.model_path.read_bytes()
    model = tmp_path / onnx_embedder.model_path.name
    sidecar = model.with_name(model.name + ".sha256")
    model.write_bytes(good)
    sidecar.write_bytes(onnx_embedder.model_path.with_name(model.name + ".sha256").read_bytes())

    corrupted = bytearray(good)
    corrupted[len(good) // 2 : len(good) // 2 + 64] = bytes(64)  # zero some weights: still loadable
    model.write_bytes(bytes(corrupted))
    old = model.stat().st_mtime_ns - 10**9
    os.utime(model, ns=(old, old))
    rebuilt = OnnxResnetEmbedder(tmp_path)
    assert model.read_bytes() == good and model.stat().st_mtime_ns != old
    np.testing.assert_allclose(rebuilt.embed(fixture_chips[:2]), onnx_embedder.embed(fixture_chips[:2]))

    sidecar.unlink()  # a model without a recorded hash is not trusted either
    OnnxResnetEmbedder(tmp_path)
    assert sidecar.read_text().split()[0] == hashlib.sha256(good).hexdigest()


def _dat_bytes() -> bytes:
    return dlib_model_path("resnet").read_bytes()


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d[: len(d) // 2], id="truncated"),
        pytest.param(lambda d: d[:-1], id="one-byte-short"),
        pytest.param(lambda d: d + b"\x00", id="trailing-byte"),
        pytest.param(lambda d: b"", id="empty"),
        pytest.param(lambda d: np.random.default_rng(1).bytes(4096), id="garbage"),
        pytest.param(lambda d: d.replace(b"loss_metric_2", b"loss_metric_9", 1), id="wrong-version"),
        pytest.param(lambda d: d.replace(b"\x05con_4", b"\x05con_9", 1), id="unknown-layer-version"),
    ],
)
def test_bad_dat_files_give_model_error(mutate: Callable[[bytes], bytes], tmp_path: Path) -> None:
    data = mutate(_dat_bytes())
    with pytest.raises(ModelError):
        parse_face_resnet(data, "bad.dat")
    bad = tmp_path / "bad.dat"
    bad.write_bytes(data)
    with pytest.raises(ModelError):
        convert(bad, tmp_path / "out.onnx")
    with pytest.raises(ModelError):
        OnnxResnetEmbedder(tmp_path / "cache", dat_path=bad)
    assert not (tmp_path / "out.onnx").exists()


def test_parsed_network_has_the_expected_shape() -> None:
    net = parse_face_resnet(_dat_bytes())
    assert net.input.mean == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert (net.input.rows, net.input.cols) == (150, 150)
    convs = [layer for layer in net.layers if isinstance(layer, Conv)]
    assert len(convs) == 29
    assert convs[0].filters.shape == (32, 3, 7, 7) and convs[0].padding == (0, 0)
    assert convs[-1].filters.shape == (256, 256, 3, 3)
    shapes = output_shapes(net)
    assert (256, 3, 3) in shapes and (256, 4, 4) in shapes  # alevel1: 3x3 block + 4x4 pooled shortcut
    assert shapes[-1] == (128, 1, 1)


def test_a_conversion_that_disagrees_with_dlib_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = dlib_onnx._folded_conv

    def off_by_a_little(conv: Conv, affine: Affine | None) -> tuple[np.ndarray, np.ndarray]:
        filters, bias = real(conv, affine)
        return filters, bias + 0.05

    monkeypatch.setattr(dlib_onnx, "_folded_conv", off_by_a_little)
    with pytest.raises(ModelError, match="does not reproduce dlib"):
        OnnxResnetEmbedder(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_reader_decodes_dlib_integers_floats_and_tensors() -> None:
    parts = [
        b"\x00",  # int 0
        b"\x01\x02",  # int 2
        b"\x81\x1c",  # int -28
        b"\x02\x80\x12",  # int 4736
        b"\x03\x0a\xd7\xa3\x81\x1c",  # float_details 0xa3d70a * 2**-28 = 0.04f
        b"\x00\x02\x00\x7d",  # float_details with exponent 32000: +inf
        b"\x01\x01" + b"\x01\x01" * 3 + b"\x01\x02",  # tensor version 1, shape (1, 1, 1, 2) ...
        b"\x01\x01\x81\x01" + b"\x81\x03\x00",  # ... holding 1 * 2**-1 and -3 * 2**0
        b"1",  # bool true
        b"\x01\x03abc",  # string "abc"
    ]
    r = DlibReader(b"".join(parts))
    assert [r.read_int() for _ in range(4)] == [0, 2, -28, 4736]
    assert np.float32(r.read_float()) == np.float32(0.04)
    assert r.read_float() == float("inf")
    np.testing.assert_array_equal(r.read_tensor(), np.array([[[[0.5, -3.0]]]], dtype=np.float32))
    assert r.read_bool() is True and r.read_string() == "abc" and r.remaining == 0

    for bad_int in (b"\x09" + bytes(9), b"\x70", b"\x02\x01"):  # 9 bytes, reserved bits, truncated
        with pytest.raises(ModelError):
            DlibReader(bad_int).read_int()
    with pytest.raises(ModelError):
        DlibReader(b"\x05ab").read_string()
    with pytest.raises(ModelError):
        DlibReader(b"x").read_bool()
