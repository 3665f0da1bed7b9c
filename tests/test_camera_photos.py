"""Small faces in camera-size photos (12-24 MP): found, once each, upright, in bounded memory, and
listed when such a photo is the probe of a search. The photos are built by ``camera_photos`` from
the shared LFW and fixture photos (what is synthetic is said there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import camera_photos as cp
import numpy as np
import pytest
from PIL import Image

from lethe.detection.scan import tile_plan
from lethe.detection.yunet import YuNetDetector
from lethe.engine import Lethe
from lethe.imaging import decode_image
from lethe.types import Box, RGBImage

from conftest import consent_source, make_settings

MAX_PIXELS = 50_000_000


@pytest.fixture(scope="module")
def yunet(yunet_model: Path) -> YuNetDetector:
    return YuNetDetector(yunet_model)


@pytest.fixture(scope="module")
def find(yunet: YuNetDetector) -> Callable[[RGBImage], list[Box]]:
    return lambda pixels: [d.box for d in yunet.detect(pixels)]


@pytest.fixture(scope="module")
def camera_set(
    tmp_path_factory: pytest.TempPathFactory,
    fixtures_dir: Path,
    lfw_dir: Path,
    find: Callable[[RGBImage], list[Box]],
) -> tuple[Path, list[cp.CameraPhoto]]:
    """Three canvases (24 MP, 12 MP, 24 MP stored turned with EXIF orientation 6) and the three
    group photos enlarged to 12 MP."""
    out = tmp_path_factory.mktemp("camera")
    return out, cp.build(fixtures_dir, lfw_dir, out, find, canvases=3, faces_per_canvas=12)


def detect_file(detector: YuNetDetector, path: Path) -> tuple[RGBImage, list[Box]]:
    pixels = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS).pixels
    return pixels, [d.box for d in detector.detect(pixels)]


def test_the_set_is_the_same_each_time_it_is_built(
    camera_set: tuple[Path, list[cp.CameraPhoto]],
    tmp_path: Path,
    fixtures_dir: Path,
    lfw_dir: Path,
    find: Callable[[RGBImage], list[Box]],
) -> None:
    out, photos = camera_set
    again = cp.build(fixtures_dir, lfw_dir, tmp_path, find, canvases=1, faces_per_canvas=12)
    assert (tmp_path / again[0].file).read_bytes() == (out / photos[0].file).read_bytes()
    assert cp.load_manifest(out) == photos
    assert [(p.width * p.height) // 1_000_000 for p in photos[:3]] == [24, 12, 24]
    widths = [f.box[2] - f.box[0] for p in photos if p.kind == "canvas" for f in p.faces]
    assert len(widths) == 36 and min(widths) >= 38 and max(widths) <= 202


def test_every_small_face_of_a_camera_photo_is_found_once(
    camera_set: tuple[Path, list[cp.CameraPhoto]], yunet: YuNetDetector, yunet_model: Path
) -> None:
    out, photos = camera_set
    whole_only = YuNetDetector(yunet_model, small_face_px=10**6)  # no tile pass: the old behaviour
    found = duplicates = spare = labelled = old_found = 0
    for photo in photos:
        pixels, boxes = detect_file(yunet, out / photo.file)
        assert pixels.shape[:2] == (photo.height, photo.width)  # upright, EXIF applied
        hits, extra, twice = cp.match(photo.faces, boxes)
        found, spare, duplicates, labelled = (
            found + hits,
            spare + extra,
            duplicates + twice,
            labelled + len(photo.faces),
        )
        old_found += cp.match(photo.faces, [d.box for d in whole_only.detect(pixels)])[0]
    assert labelled == 36 + 7
    assert found == labelled  # all of them (at least 95% is the benchmark's target)
    assert duplicates == 0 and spare == 0
    assert old_found < labelled - 10  # the whole-photo pass alone misses many of the small ones


def test_faces_across_tile_seams_are_found_once_each(
    fixtures_dir: Path,
    lfw_dir: Path,
    find: Callable[[RGBImage], list[Box]],
    yunet: YuNetDetector,
    tmp_path: Path,
) -> None:
    """Faces centred on the seams between tiles, where two tiles overlap, and on a corner where
    four do: each is one detection, whole."""
    width, height = 6000, 4000
    tiles = tile_plan(
        width, height, max_side_px=1024, small_face_px=40, smallest_px=YuNetDetector.smallest_face_px
    )
    assert len(tiles) > 4
    seams_x = sorted({t.left for t in tiles if t.left > 0})
    seams_y = sorted({t.top for t in tiles if t.top > 0})
    overlap_x = [t.right for t in tiles if t.top == 0][0] - seams_x[0]
    places = [(x + overlap_x // 2, 300 + 500 * i) for i, x in enumerate(seams_x)]  # in the overlap
    places += [(x + 3, 2600) for x in seams_x]  # just inside the next tile: cut in the first
    places += [(seams_x[0] + overlap_x // 2, seams_y[0] + overlap_x // 2)]  # where four tiles meet
    faces = cp.central_faces(lfw_dir, find, len(places), seed=7)
    canvas = cp.background(fixtures_dir, cp.BACKGROUNDS[1], (width, height))
    widths = [40 + (160 * i) // max(1, len(places) - 1) for i in range(len(places))]
    labelled = cp.paste_faces(canvas, faces, cp.random.Random(0), places=places, widths=widths)
    cp.save(canvas, tmp_path / "seams.jpg")
    _, boxes = detect_file(yunet, tmp_path / "seams.jpg")
    assert cp.match(labelled, boxes) == (len(labelled), 0, 0)
    assert len(boxes) == len(labelled)


def test_an_exif_turned_camera_photo_gives_upright_boxes(
    camera_set: tuple[Path, list[cp.CameraPhoto]], yunet: YuNetDetector
) -> None:
    out, photos = camera_set
    turned = [p for p in photos if p.orientation != 1]
    assert {p.orientation for p in turned} == {6, 8}
    for photo in turned:
        stored = Image.open(out / photo.file)
        assert stored.size == (photo.height, photo.width)  # the pixels are stored turned
        _, boxes = detect_file(yunet, out / photo.file)
        assert cp.match(photo.faces, boxes) == (len(photo.faces), 0, 0)


MEASURE = """
import json, sys
from pathlib import Path
import numpy as np
import cv2  # noqa: F401 - the tile pass imports it on first use: load it before the measurement
from lethe.detection.yunet import YuNetDetector

def status(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field + ":"))
    return int(line.split()[1]) / 1024

detector = YuNetDetector(Path(sys.argv[1]))
detector.detect(np.zeros((600, 800, 3), np.uint8))
pixels = np.load(sys.argv[2])
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
faces = detector.detect(pixels)
growth = status("VmHWM") - before
print(json.dumps({"pixels_mb": pixels.nbytes / 2**20, "growth_mb": growth, "faces": len(faces)}))
"""


def test_detection_memory_beyond_the_photo_does_not_grow_with_its_size(
    fixtures_dir: Path, yunet_model: Path, tmp_path: Path
) -> None:
    """Tiles are cut and scaled one at a time: detecting faces in a 48 MP photo needs no more
    memory beyond its pixels than in a 12 MP one (each measured in a fresh process)."""
    growth: dict[int, dict[str, float]] = {}
    for size in ((4000, 3000), (8000, 6000)):
        path = tmp_path / f"{size[0]}.npy"
        np.save(path, np.asarray(cp.background(fixtures_dir, cp.BACKGROUNDS[0], size)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_")}
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(yunet_model), str(path)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        growth[size[0]] = json.loads(out.stdout.strip().splitlines()[-1])
    small, large = growth[4000], growth[8000]
    assert large["pixels_mb"] == pytest.approx(4 * small["pixels_mb"])
    assert large["growth_mb"] < small["growth_mb"] + 32, growth  # no buffer the size of the photo
    assert large["growth_mb"] < 96, growth  # one tile and the detector's own buffers


def test_a_camera_photo_as_probe_lists_every_face_and_searches_the_one_chosen(
    camera_set: tuple[Path, list[cp.CameraPhoto]], lfw_dir: Path, tmp_path: Path
) -> None:
    out, photos = camera_set
    photo = photos[1]  # 12 MP, twelve faces 40-200 px wide
    # the smallest face whose person has another LFW photo: that photo is the gallery
    smallest, other = min(
        (
            (face, sorted(p for p in (lfw_dir / face.person).glob("*.jpg") if str(p) != face.source))
            for face in photo.faces
        ),
        key=lambda pair: (not pair[1], pair[0].box[2] - pair[0].box[0]),
    )
    assert other, "no face of this photo has a person with a second LFW photo"
    others = other
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    (gallery / others[0].name).write_bytes(others[0].read_bytes())
    with Lethe(make_settings(tmp_path / "data")) as engine:
        engine.add_source(consent_source())
        assert engine.ingest("events", gallery).faces >= 1
        probe = (out / photo.file).read_bytes()
        first = engine.search(probe, purpose="find my photos")
        assert cp.match(photo.faces, first.probe_faces) == (len(photo.faces), 0, 0)
        chosen = next(i for i, box in enumerate(first.probe_faces) if cp.iou(box, Box(*smallest.box)) >= 0.3)
        result = engine.search(probe, purpose="find my photos", face=chosen)
    assert result.used_face == chosen
    assert [Path(m.image).name for m in result.matches] == [others[0].name], (
        smallest.person,
        smallest.box,
        [round(m.score, 3) for m in result.matches],
    )
    assert np.isfinite(result.matches[0].score)
