"""dlib's HOG frontal face detector, run at a scale that keeps recall on small photos."""

from __future__ import annotations

import dlib

from lethe.detection.base import shrink_for_detection
from lethe.types import Box, Detection, RGBImage


class DlibHogDetector:
    """HOG + linear SVM frontal detector.

    HOG finds faces of about 80 px and larger; images whose longest side is at most
    ``upsample_below_px`` are searched at twice the size (faces down to about 40 px).
    Larger images are first shrunk to ``max_side_px``.
    """

    name = "hog"

    def __init__(
        self,
        *,
        max_side_px: int = 1024,
        upsample_below_px: int = 640,
        min_score: float = -0.2,
        min_face_px: int = 20,
    ) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self.max_side_px = max_side_px
        self.upsample_below_px = upsample_below_px
        self.min_score = min_score
        self.min_face_px = min_face_px

    def detect(self, image: RGBImage) -> list[Detection]:
        small, factor = shrink_for_detection(image, self.max_side_px)
        upsample = 1 if max(small.shape[:2]) <= self.upsample_below_px else 0
        rects, scores, _ = self._detector.run(small, upsample, self.min_score)
        height, width = image.shape[:2]
        found: list[Detection] = []
        for rect, score in zip(rects, scores, strict=True):
            box = Box(rect.left(), rect.top(), rect.right(), rect.bottom()).scaled(factor)
            box = Box(max(0, box.left), max(0, box.top), min(width, box.right), min(height, box.bottom))
            if min(box.width, box.height) < self.min_face_px:
                continue
            found.append(Detection(box=box, score=float(score)))
        return found
