"""The Embedder protocol: aligned face chips in, L2-normalised float32 vectors out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from lethe.errors import ConfigError, ModelError
from lethe.types import Embedding, RGBImage


@runtime_checkable
class Embedder(Protocol):
    """``name`` says which runtime; ``model_id`` and ``model_sha256`` (the official model file's
    hash) say which model made a template: templates of different models are never compared.
    ``alignment`` is the chip the model was trained on: ``"dlib"`` (dlib's chip, ``chip_padding``)
    or ``"arcface"`` (the 5-point ArcFace template, :mod:`lethe.arcface`)."""

    name: str
    model_id: str
    model_sha256: str
    dim: int
    chip_size: int
    chip_padding: float
    alignment: str

    def embed(self, chips: list[RGBImage]) -> Embedding:
        """Return an (n, dim) float32 array of unit vectors, one per chip, in order."""
        ...


def check_chips(chips: list[RGBImage], size: int) -> None:
    """Every chip must be a ``size`` x ``size`` RGB uint8 image (what alignment produces)."""
    for chip in chips:
        if chip.shape != (size, size, 3) or chip.dtype != np.uint8:
            raise ModelError(f"chips must be {size}x{size}x3 uint8, got {chip.shape} {chip.dtype}")


def check_runtime(threads: int, batch_size: int) -> None:
    """An ONNX Runtime embedder's settings: at least one thread, at least one chip per batch."""
    if threads < 1 or batch_size < 1:
        raise ConfigError(f"threads and batch_size must be >= 1, got {threads} and {batch_size}")
