"""dlib's HOG frontal face detector, run at a scale that keeps recall on small photos."""

from __future__ import annotations

import dlib

from lethe.detection.base import shrink_for_detection
from lethe.types import Box, Detection, RGBImage


class DlibHogDetector:
    """HOG + linear SVM frontal detector.

    HOG finds faces of about 80 px and larger at the image's own scale. Images are first shrunk to
    ``max_side_px``; a small image (longest side at most ``upsample_below_px``) in which nothing was
    found is searched again at twice the size (faces down to about 40 px). Searching every small
    image at twice the size costs 2.7x the time and found no more faces on an LFW sample.
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
        rects, scores, _ = self._detector.run(small, 0, self.min_score)
        if not rects and max(small.shape[:2]) <= self.upsample_below_px:
            rects, scores, _ = self._detector.run(small, 1, self.min_score)
        height, width = image.shape[:2]
        found: list[Detection] = []
        for rect, score in zip(rects, scores, strict=True):
            box = Box(rect.left(), rect.top(), rect.right(), rect.bottom()).scaled(factor)
            box = Box(max(0, box.left), max(0, box.top), min(width, box.right), min(height, box.bottom))
            if min(box.width, box.height) < self.min_face_px:
                continue
            found.append(Detection(box=box, score=float(score)))
        return found
