"""One contract for every embedder (SFace, dlib's ResNet on dlib and on ONNX Runtime), on the
photo fixtures with the real models, each built as the product builds it (``build_embedder``) and fed
the chips the product makes for it (SFace: YuNet's landmarks, ArcFace template; dlib: HOG, 5-point
chip).

Golden vectors: ``tests/golden/embeddings-<model>.json`` holds the template of the largest face of
each identity photo, written by this module with ``WRITE_GOLDEN_VECTORS=1`` and checked by it
otherwise. A change in a model file, its preparation, the alignment or the detector's landmarks
moves them; so does a runtime upgrade that changes the arithmetic beyond rounding.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from lethe.alignment import Landmarker, face_chip
from lethe.arcface import arcface_chip
from lethe.config import Settings
from lethe.embedding import Embedder
from lethe.errors import ModelError
from lethe.imaging import decode_image
from lethe.model_ids import MODEL_NAMES, template_model
from lethe.pipeline import build_detector, build_embedder
from lethe.types import RGBImage

EMBEDDERS = ("sface", "onnx", "dlib")
GOLDEN = Path(__file__).parent / "golden"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
#: A recorded template and today's must agree this closely (cosine): rounding, not a new model.
GOLDEN_MIN_COSINE = 0.999


def _family(embedder: str) -> str:
    return "sface" if embedder == "sface" else "dlib"


@pytest.fixture(scope="module")
def identity_photos(fixtures_dir: Path) -> list[tuple[str, Path]]:
    """(person, photo) of every single-person fixture photo."""
    root = fixtures_dir / "identities"
    return sorted((p.parent.name, p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


@pytest.fixture(scope="module", params=EMBEDDERS)
def setting(request: pytest.FixtureRequest) -> str:
    if request.param == "sface":
        request.getfixturevalue("sface_model")  # skips, saying why, without the shared models
        request.getfixturevalue("yunet_model")
    return str(request.param)


@pytest.fixture(scope="module")
def embedder(setting: str) -> Embedder:
    return build_embedder(Settings(embedder=setting))  # type: ignore[arg-type]


_CHIPS: dict[str, list[tuple[str, str, RGBImage]]] = {}


@pytest.fixture(scope="module")
def chips(
    setting: str, identity_photos: list[tuple[str, Path]], fixtures_dir: Path
) -> list[tuple[str, str, RGBImage]]:
    """(person, photo, chip) of the largest face of each identity photo, aligned for the model."""
    family = _family(setting)
    if family not in _CHIPS:
        detector = build_detector(Settings(detector="yunet" if family == "sface" else "hog"))
        shapes = Landmarker("shape5")
        found = []
        for person, path in identity_photos:
            pixels = decode_image(path.read_bytes(), max_pixels=60_000_000).pixels
            dets = sorted(detector.detect(pixels), key=lambda d: d.box.area, reverse=True)
            if not dets:
                continue
            det = dets[0]
            if family == "sface":
                assert det.landmarks is not None
                chip = arcface_chip(pixels, det.landmarks, 112)
            else:
                chip = face_chip(pixels, shapes.shape(pixels, det.box), 150, 0.25)
            found.append((person, path.relative_to(fixtures_dir).as_posix(), chip))
        _CHIPS[family] = found
    return _CHIPS[family]


def test_it_is_an_embedder_that_names_its_model(setting: str, embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 128
    assert embedder.model_sha256 == template_model(setting)
    assert MODEL_NAMES[embedder.model_sha256] and embedder.model_id
    assert embedder.alignment == ("arcface" if setting == "sface" else "dlib")
    assert embedder.chip_size == (112 if setting == "sface" else 150)


def test_no_chips_give_an_empty_batch(embedder: Embedder) -> None:
    out = embedder.embed([])
    assert out.shape == (0, 128) and out.dtype == np.float32


def test_chips_of_the_wrong_size_or_type_are_refused(embedder: Embedder) -> None:
    size = embedder.chip_size
    for bad in (
        np.zeros((size + 1, size, 3), np.uint8),
        np.zeros((size, size), np.uint8),
        np.zeros((size, size, 3), np.float32),
        np.zeros((size, size, 4), np.uint8),
    ):
        with pytest.raises(ModelError, match="chips"):
            embedder.embed([bad])


def test_templates_are_unit_float32_and_finite(embedder: Embedder, chips: list) -> None:
    assert len(chips) >= 18, "the identity fixtures should give about 19 faces"
    vectors = embedder.embed([c for _, _, c in chips])
    assert vectors.shape == (len(chips), 128) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_batch_gives_what_one_at_a_time_gives(embedder: Embedder, chips: list) -> None:
    pixels = [c for _, _, c in chips]
    batched = embedder.embed(pixels)
    single = np.concatenate([embedder.embed([p]) for p in pixels])
    np.testing.assert_allclose(single, batched, atol=1e-5)


def test_the_same_chips_give_the_same_templates(embedder: Embedder, chips: list) -> None:
    pixels = [c for _, _, c in chips]
    np.testing.assert_array_equal(embedder.embed(pixels), embedder.embed(pixels))


def test_a_persons_own_photos_score_above_anyone_elses(embedder: Embedder, chips: list) -> None:
    """The behaviour every feature rests on, on the fixtures: each photo's nearest other photo is
    of the same person, and the weakest same-person pair beats the strongest cross-person one."""
    people = np.array([p for p, _, _ in chips])
    vectors = embedder.embed([c for _, _, c in chips])
    scores = vectors @ vectors.T
    same = people[:, None] == people[None, :]
    off = ~np.eye(len(people), dtype=bool)
    weakest_same = scores[same & off].min()
    strongest_other = scores[~same].max()
    assert weakest_same > strongest_other, (weakest_same, strongest_other)


def test_golden_vectors(setting: str, embedder: Embedder, chips: list) -> None:
    path = GOLDEN / f"embeddings-{_family(setting)}.json"
    vectors = embedder.embed([c for _, _, c in chips])
    now = {photo: v for (_, photo, _), v in zip(chips, vectors, strict=True)}
    if os.environ.get("WRITE_GOLDEN_VECTORS") == "1":
        GOLDEN.mkdir(exist_ok=True)
        record = {
            "model_sha256": embedder.model_sha256,
            "templates": {photo: [round(float(x), 6) for x in v] for photo, v in sorted(now.items())},
        }
        path.write_text(json.dumps(record, indent=1) + "\n")
    recorded = json.loads(path.read_text())
    assert recorded["model_sha256"] == embedder.model_sha256
    assert sorted(recorded["templates"]) == sorted(now)
    cosines = {
        photo: float(np.dot(np.asarray(v, np.float32), now[photo]))
        for photo, v in recorded["templates"].items()
    }
    assert min(cosines.values()) >= GOLDEN_MIN_COSINE, cosines
