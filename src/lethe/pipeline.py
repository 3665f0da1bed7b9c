"""Pure image -> faces: detect, landmarks, align, embed, crop. No storage, no side effects."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field

import dlib
import numpy as np
from PIL import Image

from lethe.alignment import Landmarker, face_chip, landmarks_of, quality_score
from lethe.config import Settings
from lethe.detection import Detector, DlibHogDetector
from lethe.embedding import DlibResnetEmbedder, Embedder
from lethe.types import Detection, FaceRecord, RGBImage

CROP_JPEG_QUALITY = 85


@dataclass
class FacePipeline:
    """One image at a time per pipeline: dlib's detector and shape predictor are not safe to call
    from several threads at once (the service crashed with ``free(): invalid pointer`` when
    searches and an in-process ingest shared one pipeline, found by bench/load_test.py), so calls
    are serialised; worker processes each build their own pipeline and never contend."""

    detector: Detector
    landmarker: Landmarker
    embedder: Embedder
    #: Average each chip's template with its mirror image's (test-time augmentation).
    flip: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def faces(self, image: RGBImage) -> list[FaceRecord]:
        """Every face in the image, largest first."""
        return self.faces_batch([image])[0]

    def faces_batch(self, images: list[RGBImage]) -> list[list[FaceRecord]]:
        """Every face of every image (largest first per image); all chips go through the embedder
        in one batch."""
        with self._lock:
            return self._faces_batch(images)

    def _faces_batch(self, images: list[RGBImage]) -> list[list[FaceRecord]]:
        found: list[list[tuple[Detection, dlib.full_object_detection, RGBImage]]] = []
        for image in images:
            detections = sorted(self.detector.detect(image), key=lambda d: d.box.area, reverse=True)
            faces = []
            for det in detections:
                shape = self.landmarker.shape(image, det.box)
                faces.append(
                    (det, shape, face_chip(image, shape, self.embedder.chip_size, self.embedder.chip_padding))
                )
            found.append(faces)
        chips = [chip for faces in found for _, _, chip in faces]
        vectors = iter(self._embed(chips))
        return [
            [
                FaceRecord(
                    box=det.box,
                    detector_score=det.score,
                    landmarks=landmarks_of(shape),
                    quality=quality_score(det.box, chip),
                    embedding=np.ascontiguousarray(next(vectors), dtype=np.float32),
                    crop_jpeg=encode_jpeg(chip),
                )
                for det, shape, chip in faces
            ]
            for faces in found
        ]

    def _embed(self, chips: list[RGBImage]) -> np.ndarray:
        if not self.flip or not chips:
            return self.embedder.embed(chips)
        both = self.embedder.embed(chips + [np.ascontiguousarray(chip[:, ::-1]) for chip in chips])
        mean = both[: len(chips)] + both[len(chips) :]
        return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)


def encode_jpeg(pixels: RGBImage, quality: int = CROP_JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def build_detector(settings: Settings) -> Detector:
    if settings.detector == "yunet":
        from lethe.detection.yunet import YuNetDetector
        from lethe.models import ensure_model

        path = ensure_model(
            "yunet",
            path=settings.yunet_model_path,
            cache_dir=settings.data_dir / "models",
            offline=settings.offline,
        )
        return YuNetDetector(path, max_side_px=settings.detect_max_side_px, min_face_px=settings.min_face_px)
    return DlibHogDetector(max_side_px=settings.detect_max_side_px, min_face_px=settings.min_face_px)


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "dlib":
        return DlibResnetEmbedder()
    from lethe.embedding.onnx_resnet import OnnxResnetEmbedder

    return OnnxResnetEmbedder(settings.data_dir / "models", threads=settings.embed_threads)


def build_pipeline(settings: Settings) -> FacePipeline:
    return FacePipeline(
        detector=build_detector(settings),
        landmarker=Landmarker(),
        embedder=build_embedder(settings),
        flip=settings.embed_flip,
    )
