"""YuNet (OpenCV Zoo, 2023mar) ONNX face detector through OpenCV's FaceDetectorYN: the default.

It gives each face's box and five landmarks (eye centres, nose tip, mouth corners), which the
ArcFace alignment of SFace uses directly. The model file comes from a path, the model cache or a
sha256-pinned download (see ``lethe.models.registry``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lethe.detection.scan import Found, TiledDetector
from lethe.errors import ModelError
from lethe.types import RGBImage


class YuNetDetector(TiledDetector):
    """YuNet through OpenCV, on the whole photo and, in large photos, in tiles (``lethe.detection.scan``)."""

    name = "yunet"
    #: Faces at least this wide (px at the scale YuNet runs at) are found: measured on 150 LFW faces
    #: scaled down, 98% at 24 px, 93% at 20, 70% at 16 (docs/benchmarks.md).
    smallest_face_px = 24

    def __init__(
        self,
        model_path: Path,
        *,
        max_side_px: int = 1024,
        min_score: float = 0.8,
        min_face_px: int = 20,
        small_face_px: int = 40,
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
        self.small_face_px = small_face_px

    def _pass(self, image: RGBImage) -> list[Found]:
        height, width = image.shape[:2]
        self._net.setInputSize((width, height))
        _, faces = self._net.detect(np.ascontiguousarray(image[:, :, ::-1]))
        if faces is None:
            return []
        found: list[Found] = []
        for row in faces:
            if not np.isfinite(row[:15]).all():  # OpenCV has returned garbage rows for degenerate input
                continue
            x, y, w, h = (float(v) for v in row[:4])
            points = tuple((float(row[i]), float(row[i + 1])) for i in range(4, 14, 2))
            found.append(Found(x, y, x + w, y + h, float(row[14]), points))
        return found
