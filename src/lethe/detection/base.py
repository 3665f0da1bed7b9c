"""The Detector protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lethe.types import Detection, RGBImage


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB image; boxes are in the coordinates of the image given."""

    name: str

    def detect(self, image: RGBImage) -> list[Detection]: ...
