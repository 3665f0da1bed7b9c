"""SFace's prepared graph: repaired, folded, rewritten, checked against the shipped graph, cached
once per user with its sha256, rebuilt when the cache is wrong, and clear errors for bad files.
(What every embedder must do is in test_embedder_contract.py.)"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from lethe.arcface import arcface_chip
from lethe.config import Settings
from lethe.embedding import sface
from lethe.embedding.prepared import cpu_session
from lethe.embedding.sface import INPUT_NAME, SFaceEmbedder, drop_unused_inputs
from lethe.errors import ModelError
from lethe.imaging import decode_image
from lethe.model_ids import SFACE_SHA256
from lethe.pipeline import build_detector
from lethe.types import RGBImage, l2_normalise


@pytest.fixture(scope="module")
def chips(fixtures_dir: Path, yunet_model: Path) -> list[RGBImage]:
    """The ArcFace chip of every face YuNet finds in the group photos."""
    detector = build_detector(Settings(detector="yunet"))
    out = []
    for path in sorted((fixtures_dir / "group_labelled").iterdir()):
        pixels = decode_image(path.read_bytes(), max_pixels=60_000_000).pixels
        for det in detector.detect(pixels):
            assert det.landmarks is not None
            out.append(arcface_chip(pixels, det.landmarks, 112))
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sface_cache")


@pytest.fixture(scope="module")
def embedder(sface_model: Path, cache: Path) -> SFaceEmbedder:
    return SFaceEmbedder(sface_model, cache)


def test_the_shipped_graph_needs_the_repair(sface_model: Path) -> None:
    """Why repair 1 exists: ONNX Runtime will not run the file as shipped (inputs no node reads)."""
    shipped = onnx.load(str(sface_model))
    assert len(shipped.graph.input) > 100
    session = cpu_session(sface_model.read_bytes(), 1, "the shipped file")
    name = shipped.graph.input[0].name
    with pytest.raises(Exception, match="(?i)required inputs"):
        session.run(None, {name: np.zeros((1, 3, 112, 112), np.float32)})


def test_prepared_graph_gives_the_shipped_graphs_templates(
    sface_model: Path, embedder: SFaceEmbedder, chips: list[RGBImage]
) -> None:
    assert len(chips) >= 7
    repaired = drop_unused_inputs(onnx.load(str(sface_model)))
    reference = cpu_session(repaired.SerializeToString(), 1, "the repaired graph")
    name = repaired.graph.input[0].name
    expected = np.concatenate(
        [
            reference.run(None, {name: np.ascontiguousarray(c.transpose(2, 0, 1)[None], np.float32)})[0]
            for c in chips
        ]
    )
    np.testing.assert_allclose(embedder.embed(chips), l2_normalise(expected), atol=1e-4)


def test_prepared_graph_has_no_per_call_dequantization_and_no_prelu(embedder: SFaceEmbedder) -> None:
    graph = onnx.load(str(embedder.model_path)).graph
    ops = Counter(n.op_type for n in graph.node)
    assert ops["DequantizeLinear"] == 0 and ops["PRelu"] == 0
    assert [i.name for i in graph.input] == [INPUT_NAME]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [112, 112, 3]


def test_preparation_is_cached_once_and_reused(
    sface_model: Path, embedder: SFaceEmbedder, cache: Path
) -> None:
    model = embedder.model_path
    sidecar = model.with_name(model.name + ".sha256")
    assert model.parent == cache and SFACE_SHA256[:16] in model.name
    assert sidecar.read_text().split()[0] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert embedder.model_sha256 == SFACE_SHA256  # templates name the official file, not the derived one
    before = (model.stat().st_mtime_ns, sidecar.stat().st_mtime_ns)
    again = SFaceEmbedder(sface_model, cache, threads=2)
    assert again.model_path == model
    assert (model.stat().st_mtime_ns, sidecar.stat().st_mtime_ns) == before
    assert sorted(p.name for p in cache.iterdir()) == sorted([model.name, sidecar.name])


def test_a_corrupted_cache_is_prepared_again(
    sface_model: Path, embedder: SFaceEmbedder, chips: list[RGBImage], tmp_path: Path
) -> None:
    good = embedder.model_path.read_bytes()
    model = tmp_path / embedder.model_path.name
    model.write_bytes(good[: len(good) // 2] + bytes(64) + good[len(good) // 2 + 64 :])
    model.with_name(model.name + ".sha256").write_bytes(
        embedder.model_path.with_name(model.name + ".sha256").read_bytes()
    )
    old = model.stat().st_mtime_ns - 10**9
    os.utime(model, ns=(old, old))
    rebuilt = SFaceEmbedder(sface_model, tmp_path)
    assert hashlib.sha256(model.read_bytes()).hexdigest() == hashlib.sha256(good).hexdigest()
    np.testing.assert_allclose(rebuilt.embed(chips[:2]), embedder.embed(chips[:2]), atol=1e-6)


def test_a_file_that_is_not_onnx_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "sface.onnx"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match="not an ONNX model"):
        SFaceEmbedder(bad, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_preparation_that_changes_the_output_is_refused(
    sface_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sface.split_prelu

    def wrong(model: onnx.ModelProto) -> onnx.ModelProto:
        model = real(model)
        first = next(i for i in model.graph.initializer if i.name.endswith("_slope"))
        slope = onnx.numpy_helper.to_array(first) + 0.5
        first.CopyFrom(onnx.numpy_helper.from_array(slope.astype(np.float32), first.name))
        return model

    monkeypatch.setattr(sface, "split_prelu", wrong)
    with pytest.raises(ModelError, match="does not reproduce"):
        SFaceEmbedder(sface_model, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing cached that was not checked


def test_larger_batches_give_the_same_templates(
    sface_model: Path, embedder: SFaceEmbedder, cache: Path, chips: list[RGBImage]
) -> None:
    """The prepared graph takes any batch size (the default feeds one chip per call)."""
    assert embedder.batch_size == 1
    batched = SFaceEmbedder(sface_model, cache, batch_size=5).embed(chips)
    np.testing.assert_allclose(batched, embedder.embed(chips), atol=1e-5)
