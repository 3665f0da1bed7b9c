"""The photos of an access copy (GDPR Art. 15(3); CJEU C-487/21): the whole photo held, with every
other person's face made unrecognisable and the requester's own face outlined.

**Whose face is blurred.** Every face of the photo that is *not* one of the requester's: the other
faces the catalog holds for that photo (their stored boxes), and every face the detector finds
again, in memory, when the copy is made (a face of a photo of an ``enrolled_only`` source is
discarded at ingest unless its person enrolled, and a face the detector once missed or that was
too small to keep was never stored either). A face found again counts as the requester's when its
box overlaps one of the requester's stored boxes (intersection over union at least
:data:`SAME_FACE_IOU`); every other one is blurred. Nothing found again is stored.

**How.** Each such face's box, grown by :data:`MARGIN` of its size on every side (hair, ears), is
pixelated to blocks of about a sixth of the face's width and then Gaussian-blurred, which leaves no
feature a face recogniser or a person could use (tests/test_access_copy.py checks both: the detail
is gone and the blurred face no longer matches its person at the match threshold). The margin never
reaches into the requester's own box; the other face's own box is blurred whole, even where it
overlaps the requester's.

**The requester's face** is outlined by a rectangle drawn just outside its box, so the pixels of the
face itself are the photo's. The result is scaled down to :data:`PHOTO_MAX_SIDE_PX` at most and
re-encoded as a JPEG with no metadata of the original (EXIF, GPS, comments)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lethe.privacy.photos import BOX_COLOUR, PHOTO_MAX_SIDE_PX
from lethe.types import Box, RGBImage

#: How far the blurred area reaches past another person's face box, as a share of its size.
MARGIN = 0.25
#: A face found again is the requester's when its box overlaps one of theirs at least this much.
SAME_FACE_IOU = 0.4
#: Blocks across a blurred face (fewer blocks: coarser).
BLOCKS_ACROSS = 6
JPEG_QUALITY = 90


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    inter = Box(max(a.left, b.left), max(a.top, b.top), min(a.right, b.right), min(a.bottom, b.bottom))
    overlap = inter.area if inter.width > 0 and inter.height > 0 else 0
    union = a.area + b.area - overlap
    return overlap / union if union > 0 else 0.0


def others_found_again(found: Sequence[Box], mine: Sequence[Box]) -> list[Box]:
    """The boxes of ``found`` (faces detected again) that are not the requester's."""
    return [box for box in found if all(iou(box, own) < SAME_FACE_IOU for own in mine)]


def _clip(box: Box, width: int, height: int) -> Box:
    return Box(
        min(max(box.left, 0), width),
        min(max(box.top, 0), height),
        min(max(box.right, 0), width),
        min(max(box.bottom, 0), height),
    )


def _grown(box: Box, share: float) -> Box:
    dx, dy = round(box.width * share), round(box.height * share)
    return Box(box.left - dx, box.top - dy, box.right + dx, box.bottom + dy)


def _blurred(region: Image.Image, face_width: int) -> Image.Image:
    """``region`` pixelated to blocks of about a sixth of the face's width, then blurred."""
    block = max(2, face_width // BLOCKS_ACROSS)
    small = region.resize(
        (max(1, region.width // block), max(1, region.height // block)), Image.Resampling.BOX
    )
    coarse = small.resize(region.size, Image.Resampling.NEAREST)
    return coarse.filter(ImageFilter.GaussianBlur(radius=max(2.0, block / 2)))


def redacted(pixels: RGBImage, mine: Sequence[Box], others: Sequence[Box]) -> RGBImage:
    """``pixels`` with every box of ``others`` blurred (see the module); ``mine`` keeps its pixels
    except where another face's own box overlaps it."""
    height, width = pixels.shape[:2]
    out = pixels.copy()
    keep = np.zeros((height, width), dtype=bool)
    for own in mine:
        c = _clip(own, width, height)
        keep[c.top : c.bottom, c.left : c.right] = True
    for face in others:
        face_box = _clip(face, width, height)
        area = _clip(_grown(face, MARGIN), width, height)
        if area.width <= 0 or area.height <= 0:
            continue
        region = Image.fromarray(np.ascontiguousarray(pixels[area.top : area.bottom, area.left : area.right]))
        blurred = np.asarray(_blurred(region, max(face_box.width, 1)), dtype=np.uint8)
        mask = ~keep[area.top : area.bottom, area.left : area.right]
        # The other face's own box is blurred whole, even where it overlaps the requester's.
        mask[
            max(face_box.top - area.top, 0) : max(face_box.bottom - area.top, 0),
            max(face_box.left - area.left, 0) : max(face_box.right - area.left, 0),
        ] = True
        target = out[area.top : area.bottom, area.left : area.right]
        target[mask] = blurred[mask]
    return out


def copy_jpeg(pixels: RGBImage, mine: Sequence[Box], others: Sequence[Box]) -> bytes:
    """The access copy of one photo: others blurred, the requester's faces outlined just outside
    their boxes, at most :data:`PHOTO_MAX_SIDE_PX` on its longest side, a JPEG without metadata."""
    picture = Image.fromarray(redacted(pixels, mine, others))
    line = max(2, round(max(picture.size) / 250))
    draw = ImageDraw.Draw(picture)
    for own in mine:
        outer = [own.left - line, own.top - line, own.right + line - 1, own.bottom + line - 1]
        draw.rectangle(outer, outline=BOX_COLOUR, width=line)
    side = max(picture.size)
    if side > PHOTO_MAX_SIDE_PX:
        scale = PHOTO_MAX_SIDE_PX / side
        picture = picture.resize(
            (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        )
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=JPEG_QUALITY)  # a new file: no EXIF, GPS or comment copied
    return out.getvalue()
