"""YuNet (OpenCV Zoo, 2023mar) ONNX face detector through OpenCV's FaceDetectorYN: the default.

It gives each face's box and five landmarks (eye centres, nose tip, mouth corners), which the
ArcFace alignment of SFace uses directly. The model file comes from a path, the model cache or a
sha256-pinned download (see ``lethe.models.registry``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lethe.detection.base import shrink_for_detection
from lethe.errors import ModelError
from lethe.types import Box, Detection, RGBImage


class YuNetDetector:
    name = "yunet"

    def __init__(
        self, model_path: Path, *, max_side_px: int = 1024, min_score: float = 0.8, min_face_px: int = 20
    ) -> None:
        import cv2

        # One thread: ingest runs one worker per core already, and the same photo must give the same
        # boxes and landmarks whatever the machine's load (SFace's template follows the landmarks).
        cv2.setNumThreads(1)
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), min_score, 0.3, 5000)
        except cv2.error as exc:
            raise ModelError(f"cannot load YuNet model {model_path}: {exc}") from exc
        self.max_side_px = max_side_px
        self.min_face_px = min_face_px

    def detect(self, image: RGBImage) -> list[Detection]:
        full_h, full_w = image.shape[:2]
        if min(full_h, full_w) < self.min_face_px:  # no face of the minimum size fits
            return []
        small, factor = shrink_for_detection(image, self.max_side_px)
        height, width = small.shape[:2]
        bgr = np.ascontiguousarray(small[:, :, ::-1])
        self._net.setInputSize((width, height))
        _, faces = self._net.detect(bgr)
        if faces is None:
            return []
        found: list[Detection] = []
        for row in faces:
            if not np.isfinite(row[:15]).all():  # OpenCV has returned garbage rows for degenerate input
                continue
            x, y, w, h = (float(v) for v in row[:4])
            box = Box(round(x), round(y), round(x + w), round(y + h)).scaled(factor)
            box = Box(max(0, box.left), max(0, box.top), min(full_w, box.right), min(full_h, box.bottom))
            if min(box.width, box.height) < self.min_face_px:
                continue
            points = tuple((float(row[i]) * factor, float(row[i + 1]) * factor) for i in range(4, 14, 2))
            found.append(Detection(box=box, score=float(row[14]), landmarks=points))
        return found
