"""One contract for every face detector (YuNet, dlib's HOG), run on the shared photo fixtures with
the real models, each detector built as the product builds it (``build_detector``); then what only
one of them does (YuNet's landmarks and score threshold, HOG's lack of landmarks) and how the two
agree. Moved here from test_models.py, which keeps the model-file tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lethe.config import Settings
from lethe.detection import Detector
from lethe.detection.yunet import YuNetDetector
from lethe.errors import ModelError
from lethe.imaging import decode_image
from lethe.pipeline import build_detector
from lethe.types import Box, Detection, RGBImage

DETECTORS = ("yunet", "hog")


@pytest.fixture(scope="module")
def load(fixtures_dir: Path) -> Callable[[str], RGBImage]:
    cache: dict[str, RGBImage] = {}

    def _load(rel: str) -> RGBImage:
        if rel not in cache:
            cache[rel] = decode_image((fixtures_dir / rel).read_bytes(), max_pixels=50_000_000).pixels
        return cache[rel]

    return _load


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    """Each detector built once per module, shared by the contract and the cross-detector tests."""
    return {}


def get_detector(detectors: dict[str, Detector], setting: str) -> Detector:
    if setting not in detectors:
        detectors[setting] = build_detector(Settings(detector=setting))  # type: ignore[arg-type]
    return detectors[setting]


@pytest.fixture(scope="module", params=DETECTORS)
def setting(request: pytest.FixtureRequest) -> str:
    if request.param == "yunet":
        request.getfixturevalue("yunet_model")  # skips, saying why, without the shared model
    return str(request.param)


@pytest.fixture(scope="module")
def detector(setting: str, detectors: dict[str, Detector]) -> Detector:
    return get_detector(detectors, setting)


@pytest.fixture(scope="module")
def yunet(yunet_model: Path, detectors: dict[str, Detector]) -> Detector:
    return get_detector(detectors, "yunet")


@pytest.fixture(scope="module")
def detections() -> dict[str, dict[str, list[Detection]]]:
    """What each detector found in each fixture photo (detector -> path -> detections)."""
    return {}


def find_all(
    detections: dict[str, dict[str, list[Detection]]],
    detector: Detector,
    expected_faces: list[dict[str, str]],
    load: Callable[[str], RGBImage],
) -> dict[str, list[Detection]]:
    if detector.name not in detections:
        detections[detector.name] = {
            row["path"]: detector.detect(load(row["path"])) for row in expected_faces
        }
    return detections[detector.name]


@pytest.fixture(scope="module")
def found(
    detector: Detector,
    detections: dict[str, dict[str, list[Detection]]],
    expected_faces: list[dict[str, str]],
    load: Callable[[str], RGBImage],
) -> dict[str, list[Detection]]:
    """What the detector finds in every fixture photo (one pass, shared by the tests)."""
    return find_all(detections, detector, expected_faces, load)


def rows_under(expected_faces: list[dict[str, str]], folder: str) -> list[dict[str, str]]:
    rows = [r for r in expected_faces if r["path"].startswith(folder + "/")]
    assert rows, f"no fixture rows under {folder}/"
    return rows


def counts_under(
    found: dict[str, list[Detection]], expected_faces: list[dict[str, str]], folder: str
) -> dict[str, int]:
    return {r["path"]: len(found[r["path"]]) for r in rows_under(expected_faces, folder)}


def iou(a: Box, b: Box) -> float:
    inter = Box(max(a.left, b.left), max(a.top, b.top), min(a.right, b.right), min(a.bottom, b.bottom))
    overlap = inter.area if inter.width > 0 and inter.height > 0 else 0
    return overlap / (a.area + b.area - overlap)


# --- the contract, for every detector ---------------------------------------------------------


def test_satisfies_the_detector_protocol(detector: Detector, setting: str) -> None:
    assert isinstance(detector, Detector)
    assert detector.name == setting
    assert detector.detect(np.zeros((64, 64, 3), dtype=np.uint8)) == []  # a black image: nobody


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (1, 2), (3, 3), (19, 64), (64, 19)])
def test_an_image_too_small_for_a_face_of_the_minimum_size_has_none(
    detector: Detector, size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(size))
    for _ in range(20):  # a degenerate input once gave OpenCV's YuNet rows of infinities
        assert detector.detect(rng.integers(0, 256, (*size, 3), dtype=np.uint8)) == []


def test_every_box_is_inside_the_image_with_positive_size(
    detector: Detector,
    found: dict[str, list[Detection]],
    load: Callable[[str], RGBImage],
    setting: str,
) -> None:
    min_side = Settings(detector=setting).min_face_px  # type: ignore[arg-type]
    boxes = 0
    for path, detections in found.items():
        height, width = load(path).shape[:2]
        for det in detections:
            box = det.box
            assert 0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height, (path, box)
            assert min(box.width, box.height) >= min_side, (path, box)
            assert math.isfinite(det.score), (path, det)
            boxes += 1
    assert boxes >= 25  # 19 identity photos + 7 faces in the group photos


def test_detect_is_deterministic(
    detector: Detector, found: dict[str, list[Detection]], load: Callable[[str], RGBImage]
) -> None:
    # the group photos, one person's seven photos (240 px to 2333 px high) and the dogs
    paths = [p for p in found if p.startswith(("group_labelled/", "identities/barack_obama/"))]
    paths.append("no_face/dogs.jpg")
    assert len(paths) == 11
    again = {path: detector.detect(load(path)) for path in paths}
    assert again == {path: found[path] for path in paths}  # boxes, scores and landmarks, exactly


def test_exactly_one_face_in_every_identity_photo(
    found: dict[str, list[Detection]], expected_faces: list[dict[str, str]]
) -> None:
    counts = counts_under(found, expected_faces, "identities")
    assert len(counts) == 19
    assert counts == dict.fromkeys(counts, 1)


def test_group_photos_give_their_expected_counts(
    found: dict[str, list[Detection]], expected_faces: list[dict[str, str]]
) -> None:
    # Both detectors agree with faces_expected on every group photo (kit_with_rose 2,
    # obama_and_biden 3 with the child, two_people 2); neither finds the person cut off at the right
    # edge of obama_and_biden.jpg, and YuNet at its default 0.8 no longer counts the raised hand.
    counts = counts_under(found, expected_faces, "group_labelled")
    expected = {r["path"]: int(r["faces_expected"]) for r in rows_under(expected_faces, "group_labelled")}
    assert counts == expected


def test_no_face_in_the_no_face_photos(
    found: dict[str, list[Detection]], expected_faces: list[dict[str, str]]
) -> None:
    # dogs.jpg included: YuNet's dog faces (0.65, 0.77) are below its default min score of 0.8.
    counts = counts_under(found, expected_faces, "no_face")
    assert len(counts) == 6
    assert counts == dict.fromkeys(counts, 0)


def test_scores_are_in_the_detectors_range(detector: Detector, found: dict[str, list[Detection]]) -> None:
    scores = [d.score for detections in found.values() for d in detections]
    if isinstance(detector, YuNetDetector):
        assert all(0.8 <= s <= 1.0 for s in scores), scores  # YuNet's default min score: 0.8
    else:
        assert all(s >= -0.2 for s in scores), scores  # HOG's SVM margin, default threshold -0.2


# --- landmarks: YuNet gives five per face, HOG none ----------------------------------------


def test_landmarks_follow_the_detector(detector: Detector, found: dict[str, list[Detection]]) -> None:
    faces = [(path, d) for path, detections in found.items() for d in detections]
    assert faces
    if detector.name == "hog":
        assert [path for path, d in faces if d.landmarks is not None] == []
        return
    wrong: list[str] = []
    for path, det in faces:
        assert det.landmarks is not None and len(det.landmarks) == 5, path
        points = np.asarray(det.landmarks, dtype=np.float64)
        assert points.shape == (5, 2) and np.isfinite(points).all(), path
        box = det.box
        inside = (
            (box.left <= points[:, 0]).all()
            and (points[:, 0] <= box.right).all()
            and (box.top <= points[:, 1]).all()
            and (points[:, 1] <= box.bottom).all()
        )
        right_eye, left_eye, nose, mouth_right, mouth_left = points
        eyes_y = max(right_eye[1], left_eye[1])
        ordered = (
            right_eye[0] < left_eye[0]  # the person's right eye is on the image's left
            and mouth_right[0] < mouth_left[0]
            and right_eye[0] < nose[0] < left_eye[0]
            and eyes_y < nose[1] < min(mouth_right[1], mouth_left[1])  # eyes, then nose, then mouth
        )
        if not (inside and ordered):
            wrong.append(f"{path}: box {box.as_list()}, points {points.round(1).tolist()}")
    assert wrong == []


# --- YuNet only -------------------------------------------------------------------------------


def test_yunet_default_min_score_drops_the_dog_faces(
    yunet: Detector, load: Callable[[str], RGBImage], yunet_model: Path
) -> None:
    """dogs.jpg: YuNet takes two dog faces for faces at 0.65 and 0.77 (expected_faces.csv); the
    default min score of 0.8 drops both."""
    image = load("no_face/dogs.jpg")
    lenient = YuNetDetector(yunet_model, min_score=0.6).detect(image)
    assert sorted(round(d.score, 2) for d in lenient) == [0.65, 0.77]
    assert yunet.detect(image) == []


def test_yunet_at_0_9_matches_the_fixture_table_where_it_agrees_with_faces_expected(
    expected_faces: list[dict[str, str]], load: Callable[[str], RGBImage], yunet_model: Path
) -> None:
    strict = YuNetDetector(yunet_model, min_score=0.9)
    rows = [
        r
        for r in expected_faces
        if r["yunet_faces_score_ge_0_9"].isdigit() and r["yunet_faces_score_ge_0_9"] == r["faces_expected"]
    ]
    assert len(rows) >= 20
    counts = {r["path"]: len(strict.detect(load(r["path"]))) for r in rows}
    assert counts == {r["path"]: int(r["faces_expected"]) for r in rows}


@pytest.mark.parametrize("release", ["yunet_model", "yunet_int8bq_model"])
def test_yunet_decodes_as_opencvs_face_detector_does(
    expected_faces: list[dict[str, str]],
    load: Callable[[str], RGBImage],
    release: str,
    request: pytest.FixtureRequest,
) -> None:
    """YuNet runs on ONNX Runtime with Lethe's own decoding; on every fixture photo (shrunk to
    the whole pass's size where larger) its faces are OpenCV's FaceDetectorYN rows on the same
    pixels (BGR input, same thresholds): same count and order, boxes and landmarks within 0.01 px,
    scores within 1e-4. Both pinned releases: fp32, and int8bq (whose weights Lethe dequantizes
    once; ONNX Runtime refused to run that file as it ships)."""
    import cv2

    yunet_model: Path = request.getfixturevalue(release)

    ours = YuNetDetector(yunet_model)
    reference = cv2.FaceDetectorYN.create(str(yunet_model), "", (320, 320), 0.8, 0.3, 5000)
    compared = 0
    for path in sorted({r["path"] for r in expected_faces}):
        image = load(path)
        height, width = image.shape[:2]
        if max(height, width) > 1024:
            factor = 1024 / max(height, width)
            width, height = round(width * factor), round(height * factor)
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        reference.setInputSize((width, height))
        _, rows = reference.detect(np.ascontiguousarray(image[:, :, ::-1]))
        rows = np.zeros((0, 15), np.float32) if rows is None else rows
        found = ours._pass(image)
        assert len(found) == len(rows), path
        for face, row in zip(found, sorted(rows, key=lambda r: -r[14]), strict=True):
            x, y, w, h = (float(v) for v in row[:4])
            corners = [face.left, face.top, face.right, face.bottom]
            np.testing.assert_allclose(corners, [x, y, x + w, y + h], atol=0.01, err_msg=path)
            assert face.landmarks is not None
            np.testing.assert_allclose(np.ravel(face.landmarks), row[4:14], atol=0.01, err_msg=path)
            assert abs(face.score - float(row[14])) < 1e-4, path
            compared += 1
    assert compared >= 26  # every face YuNet finds in the identity and group photos


def test_yunet_drops_rows_that_are_not_finite(yunet: Detector) -> None:
    """CI once saw OpenCV's YuNet return a row of infinities for a 1x1 photo, and the ingest
    stopped on it; a network output that decodes to inf or NaN is not a face."""
    assert isinstance(yunet, YuNetDetector)
    real = yunet._session
    good = [0.5, 0.5, 1.6, 1.6]  # a box of exp(1.6) * 8 = 40 px centred on the first cell
    boxes = [good, [np.inf] * 4, [np.nan, 0.5, 1.6, 1.6], [0.5, 0.5, 1e9, 1.6]]

    class Garbage:
        def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            out: list[np.ndarray] = []
            for name in names:
                kind, stride = name.split("_")
                n = (64 // int(stride)) ** 2
                width = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}[kind]
                array = np.zeros((1, n, width), np.float32)
                if stride == "8":
                    if kind in ("cls", "obj"):
                        array[0, : len(boxes)] = 1.0
                    elif kind == "bbox":
                        array[0, : len(boxes)] = boxes
                out.append(array)
            return out

    yunet._session = Garbage()  # type: ignore[assignment]
    try:
        found = yunet.detect(np.zeros((64, 64, 3), np.uint8))
    finally:
        yunet._session = real
    assert [d.box for d in found] == [Box(0, 0, 24, 24)]  # -15.8..23.8 clipped to the photo


def test_yunet_refuses_a_file_that_is_not_an_onnx_model(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"this is not a neural network")
    with pytest.raises(ModelError, match="cannot load YuNet model"):
        YuNetDetector(bogus)


# --- both detectors -------------------------------------------------------------------------


def test_hog_and_yunet_boxes_agree_on_every_face(
    expected_faces: list[dict[str, str]],
    load: Callable[[str], RGBImage],
    detectors: dict[str, Detector],
    detections: dict[str, dict[str, list[Detection]]],
    yunet: Detector,
) -> None:
    """Both detectors report boxes in full-resolution coordinates, so each HOG face overlaps a YuNet face."""
    by_yunet = find_all(detections, yunet, expected_faces, load)
    by_hog = find_all(detections, get_detector(detectors, "hog"), expected_faces, load)
    worst: dict[str, float] = {}
    for path, hog_faces in by_hog.items():
        yunet_boxes = [d.box for d in by_yunet[path]]
        for det in hog_faces:
            best = max((iou(det.box, b) for b in yunet_boxes), default=0.0)
            worst[path] = min(best, worst.get(path, 1.0))
    assert len(worst) >= 20
    assert {p: v for p, v in worst.items() if v < 0.4} == {}
