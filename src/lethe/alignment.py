"""Landmarks (dlib 5-point) and the aligned face chip the embedder expects."""

from __future__ import annotations

import dlib
import numpy as np

from lethe.errors import ModelError
from lethe.models import dlib_model_path
from lethe.types import Box, Landmarks5, RGBImage


class Landmarker:
    """dlib's 5-point shape predictor (eye corners and nose base), about 1 ms per face."""

    def __init__(self) -> None:
        path = dlib_model_path("shape5")
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load {path.name}: {exc}") from exc

    def shape(self, image: RGBImage, box: Box) -> dlib.full_object_detection:
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        return self._predictor(image, rect)


def landmarks_of(shape: dlib.full_object_detection) -> Landmarks5:
    return tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(shape.num_parts))


def face_chip(image: RGBImage, shape: dlib.full_object_detection, size: int, padding: float) -> RGBImage:
    """The face rotated, scaled and cropped to the canonical ``size`` x ``size`` chip."""
    chip: RGBImage = np.asarray(dlib.get_face_chip(image, shape, size=size, padding=padding), dtype=np.uint8)
    return chip


def sharpness(chip: RGBImage) -> float:
    """Variance of a 4-neighbour Laplacian on the grey chip: low for blurred faces."""
    grey = chip.astype(np.float32).mean(axis=2)
    lap = -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    return float(lap.var())


def quality_score(box: Box, chip: RGBImage) -> float:
    """A 0..1 quality: the product of a size term (full at 112 px) and a sharpness term."""
    size_term = min(1.0, min(box.width, box.height) / 112.0)
    sharp_term = min(1.0, sharpness(chip) / 200.0)
    return round(size_term * sharp_term, 4)
