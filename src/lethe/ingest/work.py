"""The work of an ingest worker, wherever it runs: photo bytes in, faces (or a reason) out.

A worker is a spawned process on this machine or a Ray actor on a cluster; both run
:func:`process_guarded` on chunks of photos. A *runner* (:class:`Runner`) is how the driver reaches
its workers: ``submit`` starts one chunk and returns a future, and at most ``window`` chunks are in
flight at once, which is what keeps the driver's memory flat however large the collection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from lethe.errors import LetheError
from lethe.imaging import DecodedImage, decode_image
from lethe.pipeline import FacePipeline
from lethe.types import FaceRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    width: int
    height: int
    format: str
    faces: list[FaceRecord]


#: One outcome per photo of a chunk: its faces, or the reason it was refused (a string).
Outcomes = list[ProcessedImage | str]
#: Starts one chunk (the photos' bytes) on a worker.
Submit = Callable[[list[bytes]], "Future[Outcomes]"]


class Runner(Protocol):
    """Where chunks are processed: ``submit`` starts one; at most ``window`` may be in flight."""

    @property
    def window(self) -> int: ...

    def submit(self, blobs: list[bytes]) -> Future[Outcomes]: ...


@dataclass(frozen=True, slots=True)
class FixedRunner:
    """A runner whose workers are there from the start (this machine's)."""

    submit: Submit
    window: int


def process_many(pipeline: FacePipeline, blobs: list[bytes], max_pixels: int) -> Outcomes:
    """Decode and detect each photo, then embed all their faces in one batch. A photo that fails
    gets its reason (a string) in its place; the others go on."""
    decoded: list[DecodedImage | str] = []
    for data in blobs:
        try:
            decoded.append(decode_image(data, max_pixels=max_pixels, max_bytes=len(data) + 1))
        except LetheError as exc:
            decoded.append(str(exc))
    good = [d for d in decoded if not isinstance(d, str)]
    try:
        faces = iter(pipeline.faces_batch([d.pixels for d in good]))
    except Exception as exc:
        if len(blobs) > 1:  # find the photo that failed: one at a time
            return [item for data in blobs for item in process_many(pipeline, [data], max_pixels)]
        if isinstance(exc, LetheError):
            return [str(exc)]
        log.exception("unexpected error while processing a photo")
        return [f"internal error: {exc.__class__.__name__}"]
    return [
        d if isinstance(d, str) else ProcessedImage(d.width, d.height, d.format, next(faces)) for d in decoded
    ]


def process_guarded(pipeline: FacePipeline, blobs: list[bytes], max_pixels: int) -> Outcomes:
    """:func:`process_many` for a worker: an unexpected error fails the chunk's photos, not the run."""
    try:
        return process_many(pipeline, blobs, max_pixels)
    except Exception as exc:  # noqa: BLE001 - one bad photo must not stop the run
        log.exception("unexpected error while processing photos")
        return [f"internal error: {exc.__class__.__name__}"] * len(blobs)
