"""The Embedder protocol: aligned face chips in, L2-normalised float32 vectors out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lethe.types import Embedding, RGBImage


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int
    chip_size: int
    chip_padding: float

    def embed(self, chips: list[RGBImage]) -> Embedding:
        """Return an (n, dim) float32 array of unit vectors, one per chip, in order."""
        ...
