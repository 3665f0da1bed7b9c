"""Faces of every size in photos of every size: one pass over the whole photo, shrunk, and for a
large photo a second pass in tiles at the scale its small faces need.

A detector finds faces down to about ``smallest`` px at the scale it runs at (YuNet 24, HOG 80).
Shrunk to ``max_side_px`` for the whole pass, a 6000x4000 photo keeps only faces of about 140 px
and more. The tile pass looks at the photo at ``smallest / small_face_px`` of its size (never
enlarged), in tiles of ``max_side_px`` that overlap by more than the largest face the whole pass
may miss, so each such face lies whole inside at least one tile. A face cut by an inner tile edge
is dropped there (it is whole in a neighbour, or large enough for the whole pass); the same face
seen twice is kept once (boxes with IoU >= ``SAME_FACE_IOU``). Every tile is cut from the photo and
scaled on its own, so the extra memory is one tile, whatever the photo's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lethe.types import Box, Detection, Landmarks5, RGBImage

#: Two boxes with at least this intersection over union are one face seen twice.
SAME_FACE_IOU = 0.4
#: A tile's face whose box comes this close (tile px) to an inner tile edge is cut by it.
EDGE_PX = 2
#: Extra overlap beyond the largest face the whole pass may miss (faces are not square boxes).
OVERLAP_MARGIN = 1.25


@dataclass(frozen=True, slots=True)
class Found:
    """A face as a detector reports it at the scale it ran at: box corners, score, five points."""

    left: float
    top: float
    right: float
    bottom: float
    score: float
    landmarks: Landmarks5 | None = None


#: A detector's own pass: the faces in an image at that image's scale.
Pass = Callable[[RGBImage], list[Found]]


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile of the tile pass: its rectangle in the photo and the size it is scaled to."""

    left: int
    top: int
    right: int
    bottom: int
    width: int
    height: int


class TiledDetector:
    """What YuNet and HOG share: ``detect`` runs the detector's own ``_pass`` over the whole photo
    and, where needed, its tiles. Subclasses set the attributes and ``_pass``."""

    max_side_px: int
    min_face_px: int
    small_face_px: int
    #: Faces at least this wide (px at the scale the detector runs at) are found.
    smallest_face_px: int

    def detect(self, image: RGBImage) -> list[Detection]:
        return find_faces(
            self._pass,
            image,
            max_side_px=self.max_side_px,
            min_face_px=self.min_face_px,
            small_face_px=self.small_face_px,
            smallest_px=self.smallest_face_px,
        )

    def _pass(self, image: RGBImage) -> list[Found]:
        raise NotImplementedError


def tile_plan(
    width: int, height: int, *, max_side_px: int, small_face_px: int, smallest_px: int
) -> list[Tile]:
    """The tiles that find faces of ``small_face_px`` and more in a ``width`` x ``height`` photo that
    the whole pass (at ``max_side_px``) would miss; none where the whole pass sees them already."""
    factor = max(width, height) / max_side_px
    scale = min(1.0, smallest_px / small_face_px)
    if factor <= 1.0 or scale * factor <= 1.0:
        return []
    side = max_side_px / scale  # a tile's side in photo px
    # The whole pass may miss faces up to smallest_px * factor wide: the overlap holds one whole.
    overlap_px = min(math.ceil(OVERLAP_MARGIN * smallest_px * factor + 2 * EDGE_PX / scale), int(side) // 2)
    xs = _spans(width, side, overlap_px)
    ys = _spans(height, side, overlap_px)
    return [
        Tile(x0, y0, x1, y1, max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        for y0, y1 in ys
        for x0, x1 in xs
    ]


def _spans(length: int, side: float, overlap: int) -> list[tuple[int, int]]:
    """Equal spans of at most ``side`` covering ``0..length``, neighbours sharing ``overlap``."""
    if length <= side:
        return [(0, length)]
    count = math.ceil((length - overlap) / (side - overlap))
    span = (length + (count - 1) * overlap) / count
    return [(round(i * (span - overlap)), round(i * (span - overlap) + span)) for i in range(count)]


def find_faces(
    detect: Pass,
    image: RGBImage,
    *,
    max_side_px: int,
    min_face_px: int,
    small_face_px: int,
    smallest_px: int,
) -> list[Detection]:
    """Every face of ``image`` at least ``min_face_px`` wide (photo px), in photo coordinates."""
    height, width = image.shape[:2]
    if min(height, width) < min_face_px:  # no face of the minimum size fits
        return []
    factor = max(height, width) / max_side_px
    if factor > 1:
        small = _resized(image, max(1, round(width / factor)), max(1, round(height / factor)))
    else:
        small, factor = image, 1.0
    whole = [(_from_whole(f, factor, width, height), f.right - f.left) for f in detect(small)]
    tiled: list[Detection] = []
    for tile in tile_plan(
        width, height, max_side_px=max_side_px, small_face_px=small_face_px, smallest_px=smallest_px
    ):
        region = image[tile.top : tile.bottom, tile.left : tile.right]
        pixels = _resized(region, tile.width, tile.height)
        tiled.extend(
            _from_tile(f, tile, width, height) for f in detect(pixels) if not _cut(f, tile, width, height)
        )
    return [d for d in _merge(whole, tiled, 2 * smallest_px) if min(d.box.width, d.box.height) >= min_face_px]


def _resized(pixels: RGBImage, width: int, height: int) -> RGBImage:
    """``pixels`` (a view of the photo, not copied) shrunk to ``width`` x ``height`` by area
    averaging: the only new buffer is the result."""
    import cv2  # only photos larger than the detector's input get here

    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)  # type: ignore[return-value]


def _from_whole(found: Found, factor: float, width: int, height: int) -> Detection:
    """A whole-pass face in photo coordinates (boxes rounded at the pass's scale, then scaled)."""
    box = Box(round(found.left), round(found.top), round(found.right), round(found.bottom)).scaled(factor)
    box = Box(max(0, box.left), max(0, box.top), min(width, box.right), min(height, box.bottom))
    points = None
    if found.landmarks is not None:
        points = tuple((x * factor, y * factor) for x, y in found.landmarks)
    return Detection(box=box, score=found.score, landmarks=points)


def _from_tile(found: Found, tile: Tile, width: int, height: int) -> Detection:
    """A tile's face in photo coordinates."""
    sx, sy = (tile.right - tile.left) / tile.width, (tile.bottom - tile.top) / tile.height
    box = Box(
        max(0, round(tile.left + found.left * sx)),
        max(0, round(tile.top + found.top * sy)),
        min(width, round(tile.left + found.right * sx)),
        min(height, round(tile.top + found.bottom * sy)),
    )
    points = None
    if found.landmarks is not None:
        points = tuple((tile.left + x * sx, tile.top + y * sy) for x, y in found.landmarks)
    return Detection(box=box, score=found.score, landmarks=points)


def _cut(found: Found, tile: Tile, width: int, height: int) -> bool:
    """Whether the face touches an edge of the tile that is not an edge of the photo."""
    return (
        (tile.left > 0 and found.left < EDGE_PX)
        or (tile.top > 0 and found.top < EDGE_PX)
        or (tile.right < width and found.right > tile.width - EDGE_PX)
        or (tile.bottom < height and found.bottom > tile.height - EDGE_PX)
    )


def _merge(whole: list[tuple[Detection, float]], tiled: list[Detection], sharp_px: int) -> list[Detection]:
    """One detection per face. Tiles overlap: of a face seen in two, the higher score stays. A face
    both passes saw stays as the whole pass saw it when it was at least ``sharp_px`` wide there
    (the same detection as for a photo too small for tiles), else as the tile saw it (finer)."""
    tiles: list[Detection] = []
    for det in sorted(tiled, key=lambda d: -d.score):
        if all(iou(det.box, other.box) < SAME_FACE_IOU for other in tiles):
            tiles.append(det)
    kept: list[Detection] = []
    for det, seen_px in whole:
        twins = [t for t in tiles if iou(det.box, t.box) >= SAME_FACE_IOU]
        if twins and seen_px < sharp_px:
            continue  # the tile's view of this face is kept instead
        tiles = [t for t in tiles if t not in twins]
        kept.append(det)
    return kept + tiles


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 where they do not overlap)."""
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.area + b.area - inter)
