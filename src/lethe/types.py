"""Small value types shared by the pipeline, the catalog and the index."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

#: RGB image, HxWx3, uint8.
RGBImage = npt.NDArray[np.uint8]
#: L2-normalised float32 vector(s).
Embedding = npt.NDArray[np.float32]

EMBEDDING_DIM = 128


@dataclass(frozen=True, slots=True)
class Box:
    """A face box in pixel coordinates of the (EXIF-oriented) image: left, top, right, bottom."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]

    def scaled(self, factor: float) -> Box:
        return Box(
            round(self.left * factor),
            round(self.top * factor),
            round(self.right * factor),
            round(self.bottom * factor),
        )


#: Five (x, y) landmark points. The embedder's alignment decides which: dlib's 5-point model (right
#: eye outer, right eye inner, left eye outer, left eye inner, nose base) for dlib's ResNet; eye
#: centres, nose tip and mouth corners (YuNet's order, :mod:`lethe.arcface`) for SFace.
Landmarks5 = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found by a detector. ``landmarks``: the five ArcFace points (eye centres, nose tip,
    mouth corners) where the detector gives them (YuNet), else None."""

    box: Box
    score: float
    landmarks: Landmarks5 | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """One face fully processed by the pipeline: where it is, how good, its template and a crop."""

    box: Box
    detector_score: float
    landmarks: Landmarks5
    quality: float
    embedding: Embedding
    crop_jpeg: bytes
    #: Templates of the same face by other models (model sha256 -> unit vector), made only in memory
    #: while objections made under those models exist, to check the face against them; never stored.
    others: dict[str, Embedding] = field(default_factory=dict)


def l2_normalise(vectors: npt.ArrayLike) -> Embedding:
    """Return float32 rows scaled to unit length (zero rows stay zero)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Embedding = (arr / norms).astype(np.float32)
    return out


def match_any(templates: np.ndarray, vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean per row of ``vectors`` (unit rows): is its cosine similarity to any of ``templates``
    at or above ``threshold``?"""
    if len(templates) == 0 or len(vectors) == 0:
        return np.zeros(len(vectors), dtype=bool)
    return (np.asarray(vectors, np.float32) @ templates.T).max(axis=1) >= threshold
