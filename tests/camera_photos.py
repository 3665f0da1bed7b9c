"""A camera-size photo set built on any machine from the shared real photos (tests and ``bench/``).

What is synthetic, plainly: no photo here came out of a camera. Each is a real no-face photo of the
shared fixtures (giraffe, horses, eagle, dogs) enlarged to 12 or 24 MP as the background, with real
LFW faces pasted onto it, each cut from its LFW photo with a margin and scaled so the face is
40-200 px wide; or a real fixture group photo enlarged to camera size. Where each face is comes from
the detector at the LFW photo's native size (the face nearest its centre), mapped through the
scale and offset of the paste; ``manifest.json`` lists every photo and its labelled faces (box in
the upright photo's pixels, the LFW person, the source file). A photo may carry an EXIF orientation:
its pixels are then stored turned and the boxes are those of the photo as shown.
"""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lethe.detection.scan import iou
from lethe.types import Box, RGBImage

#: Backgrounds: real fixture photos with no face in them.
BACKGROUNDS = ("no_face/giraffe.jpg", "no_face/horses.jpg", "no_face/eagle.jpg", "no_face/dogs.jpg")
#: Camera frames: 24 MP (6000x4000) and 12 MP (4000x3000).
FRAMES = ((6000, 4000), (4000, 3000))
#: Face widths, px of the camera photo (log-uniform between these).
FACE_PX = (40, 200)
#: The LFW face is cut with this much of its box around it on every side.
MARGIN = 0.6
#: EXIF orientation tag, and the PIL transpose that stores the pixels so a viewer shows them upright.
ORIENTATION_TAG = 0x0112
STORE_TURNED = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}

#: Where a detector finds faces in a photo at its own size.
FindBoxes = Callable[[RGBImage], list[Box]]


@dataclass(frozen=True)
class LabelledFace:
    box: tuple[int, int, int, int]
    person: str
    source: str


@dataclass
class CameraPhoto:
    file: str
    width: int
    height: int
    orientation: int
    kind: str  # "canvas" (LFW faces on an enlarged background) or "enlarged" (a group photo)
    faces: list[LabelledFace] = field(default_factory=list)


@dataclass(frozen=True)
class LfwFace:
    path: Path
    person: str
    box: Box  # at the LFW photo's own size


def central_faces(lfw_dir: Path, find: FindBoxes, count: int, seed: int) -> list[LfwFace]:
    """``count`` LFW photos (seeded) with the face nearest their centre, as ``find`` sees it."""
    paths = sorted(lfw_dir.glob("*/*.jpg"))
    random.Random(seed).shuffle(paths)
    faces: list[LfwFace] = []
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        boxes = find(pixels)
        if not boxes:
            continue
        h, w = pixels.shape[:2]
        box = min(boxes, key=lambda b: math.hypot((b.left + b.right - w) / 2, (b.top + b.bottom - h) / 2))
        faces.append(LfwFace(path, path.parent.name, box))
        if len(faces) == count:
            break
    return faces


def paste_faces(
    canvas: Image.Image,
    faces: Sequence[LfwFace],
    rng: random.Random,
    *,
    places: Sequence[tuple[int, int]] | None = None,
    widths: Sequence[int] | None = None,
) -> list[LabelledFace]:
    """Paste each face onto ``canvas`` (at ``places``, face centres, or at random free spots) at
    ``widths`` px (or log-uniform in FACE_PX); the labelled boxes in canvas pixels."""
    taken: list[Box] = []
    labelled: list[LabelledFace] = []
    for i, face in enumerate(faces):
        width = widths[i] if widths else round(math.exp(rng.uniform(*map(math.log, FACE_PX))))
        scale = width / face.box.width
        source = Image.open(face.path).convert("RGB")
        pad_x, pad_y = MARGIN * face.box.width, MARGIN * face.box.height
        cut = (
            max(0, round(face.box.left - pad_x)),
            max(0, round(face.box.top - pad_y)),
            min(source.width, round(face.box.right + pad_x)),
            min(source.height, round(face.box.bottom + pad_y)),
        )
        piece = source.crop(cut)
        piece = piece.resize(
            (max(1, round(piece.width * scale)), max(1, round(piece.height * scale))),
            Image.Resampling.LANCZOS,
        )
        for _ in range(200):
            if places:
                cx, cy = places[i]
                left = round(cx - (face.box.left + face.box.right) / 2 * scale + cut[0] * scale)
                top = round(cy - (face.box.top + face.box.bottom) / 2 * scale + cut[1] * scale)
            else:
                left = rng.randrange(0, canvas.width - piece.width)
                top = rng.randrange(0, canvas.height - piece.height)
            spot = Box(left, top, left + piece.width, top + piece.height)
            if places or all(_apart(spot, other) for other in taken):
                break
        else:
            continue  # no free spot: the canvas is full
        taken.append(spot)
        canvas.paste(piece, (left, top))
        box = Box(
            round(left + (face.box.left - cut[0]) * scale),
            round(top + (face.box.top - cut[1]) * scale),
            round(left + (face.box.right - cut[0]) * scale),
            round(top + (face.box.bottom - cut[1]) * scale),
        )
        labelled.append(LabelledFace((box.left, box.top, box.right, box.bottom), face.person, str(face.path)))
    return labelled


def _apart(a: Box, b: Box) -> bool:
    return a.right <= b.left or b.right <= a.left or a.bottom <= b.top or b.bottom <= a.top


def background(fixtures_dir: Path, name: str, size: tuple[int, int]) -> Image.Image:
    """A real no-face photo enlarged (and cropped to the frame's shape) to ``size``."""
    photo = Image.open(fixtures_dir / name).convert("RGB")
    target = size[0] / size[1]
    if photo.width / photo.height > target:
        w = round(photo.height * target)
        photo = photo.crop(((photo.width - w) // 2, 0, (photo.width - w) // 2 + w, photo.height))
    else:
        h = round(photo.width / target)
        photo = photo.crop((0, (photo.height - h) // 2, photo.width, (photo.height - h) // 2 + h))
    return photo.resize(size, Image.Resampling.BICUBIC)


def save(photo: Image.Image, path: Path, orientation: int = 1, quality: int = 90) -> None:
    """Save as a camera would: JPEG, with the pixels stored turned for an EXIF ``orientation``."""
    exif = Image.Exif()
    if orientation != 1:
        photo = photo.transpose(STORE_TURNED[orientation])
        exif[ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    path.write_bytes(buffer.getvalue())


def build(
    fixtures_dir: Path,
    lfw_dir: Path,
    out_dir: Path,
    find: FindBoxes,
    *,
    canvases: int = 8,
    faces_per_canvas: int = 16,
    seed: int = 0,
) -> list[CameraPhoto]:
    """The set: ``canvases`` photos of LFW faces (24 and 12 MP in turn, every third with EXIF
    orientation 6) and the three fixture group photos enlarged to 12 MP (one with orientation 8);
    written with ``manifest.json`` into ``out_dir``. The same arguments give the same files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool = central_faces(lfw_dir, find, canvases * faces_per_canvas, seed)
    photos: list[CameraPhoto] = []
    for i in range(canvases):
        size = FRAMES[i % len(FRAMES)]
        canvas = background(fixtures_dir, BACKGROUNDS[i % len(BACKGROUNDS)], size)
        faces = paste_faces(canvas, pool[i * faces_per_canvas : (i + 1) * faces_per_canvas], rng)
        orientation = 6 if i % 3 == 2 else 1
        photo = CameraPhoto(f"canvas-{i:02d}.jpg", size[0], size[1], orientation, "canvas", faces)
        save(canvas, out_dir / photo.file, orientation)
        photos.append(photo)
    for j, name in enumerate(("two_people.jpg", "obama_and_biden.jpg", "kit_with_rose.jpg")):
        source = Image.open(fixtures_dir / "group_labelled" / name).convert("RGB")
        scale = math.sqrt(12_000_000 / (source.width * source.height))
        size = (round(source.width * scale), round(source.height * scale))
        boxes = find(np.asarray(source))
        faces = [
            LabelledFace(
                tuple(round(v * scale) for v in (b.left, b.top, b.right, b.bottom)),  # type: ignore[arg-type]
                "",
                f"fixtures/group_labelled/{name}",
            )
            for b in boxes
        ]
        orientation = 8 if j == 1 else 1
        photo = CameraPhoto(f"enlarged-{name}", size[0], size[1], orientation, "enlarged", faces)
        save(source.resize(size, Image.Resampling.BICUBIC), out_dir / photo.file, orientation)
        photos.append(photo)
    (out_dir / "manifest.json").write_text(
        json.dumps({"seed": seed, "photos": [asdict(p) for p in photos]}, indent=1)
    )
    return photos


def load_manifest(out_dir: Path) -> list[CameraPhoto]:
    data = json.loads((out_dir / "manifest.json").read_text())
    photos = []
    for p in data["photos"]:
        faces = [LabelledFace(tuple(f["box"]), f["person"], f["source"]) for f in p.pop("faces")]
        photos.append(CameraPhoto(**p, faces=faces))
    return photos


def match(
    labelled: Sequence[LabelledFace], found: Sequence[Box], min_iou: float = 0.3
) -> tuple[int, int, int]:
    """(labelled faces found, detections of no labelled face, labelled faces found more than once)
    by box overlap (IoU >= ``min_iou``)."""
    hits = [0] * len(labelled)
    spare = 0
    for box in found:
        best = max(range(len(labelled)), key=lambda i: iou(box, Box(*labelled[i].box)), default=None)
        if best is None or iou(box, Box(*labelled[best].box)) < min_iou:
            spare += 1
        else:
            hits[best] += 1
    return sum(h > 0 for h in hits), spare, sum(h > 1 for h in hits)
