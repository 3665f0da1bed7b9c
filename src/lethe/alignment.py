"""dlib's landmarks and face chip (for dlib's ResNet), and the chip quality score.

ArcFace-family embedders (SFace) align differently: :mod:`lethe.arcface`. Where the detector gives
no landmarks of its own (dlib's HOG), :func:`arcface_points` derives the five ArcFace points from
dlib's 68-point model.
"""

from __future__ import annotations

import dlib
import numpy as np

from lethe.errors import ModelError
from lethe.models import dlib_model_path
from lethe.types import Box, Landmarks5, RGBImage


class Landmarker:
    """dlib's shape predictor: ``shape5`` (eye corners and nose base, about 1 ms per face; what
    dlib's chip needs) or ``shape68`` (the 68-point model, for :func:`arcface_points`)."""

    def __init__(self, model: str = "shape5") -> None:
        self.model = model
        path = dlib_model_path(model)
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load {path.name}: {exc}") from exc

    def shape(self, image: RGBImage, box: Box) -> dlib.full_object_detection:
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        return self._predictor(image, rect)


def landmarks_of(shape: dlib.full_object_detection) -> Landmarks5:
    return tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(shape.num_parts))


def arcface_points(shape: dlib.full_object_detection) -> Landmarks5:
    """The five ArcFace points from dlib's 68 landmarks: the centre of each eye's six points, the
    nose tip (30) and the mouth corners (48, 54); in YuNet's order (person's right eye first)."""
    if shape.num_parts != 68:
        raise ModelError(f"the ArcFace points need the 68-point model, got {shape.num_parts} points")
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
    right_eye, left_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    chosen = [right_eye, left_eye, points[30], points[48], points[54]]
    return tuple((float(x), float(y)) for x, y in chosen)


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
