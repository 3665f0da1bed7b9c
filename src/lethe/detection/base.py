"""The Detector protocol and the shared downscaling step."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from lethe.types import Detection, RGBImage


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB image; boxes are in the coordinates of the image given."""

    name: str

    def detect(self, image: RGBImage) -> list[Detection]: ...


def shrink_for_detection(image: RGBImage, max_side_px: int) -> tuple[RGBImage, float]:
    """Return the image shrunk so its longest side is at most ``max_side_px``, and the factor
    that maps coordinates in the shrunk image back to the original (>= 1)."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side_px:
        return image, 1.0
    scale = max_side_px / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    return small, longest / max_side_px
