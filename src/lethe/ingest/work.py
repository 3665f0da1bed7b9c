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


#: Decoded pixels a worker holds at once: photos are detected in groups up to this many pixels
#: (hundreds of LFW photos, one camera photo), so its memory does not grow with the chunk.
GROUP_PIXELS = 16_000_000


def process_many(pipeline: FacePipeline, blobs: list[bytes], max_pixels: int) -> Outcomes:
    """Decode and detect each photo, and embed their faces in batches of photos holding at most
    ``GROUP_PIXELS`` decoded pixels together (one photo at least). A photo that fails gets its
    reason (a string) in its place; the others go on."""
    outcomes: list[ProcessedImage | str | None] = [None] * len(blobs)
    group: list[tuple[int, DecodedImage]] = []
    for place, data in enumerate(blobs):
        try:
            image = decode_image(data, max_pixels=max_pixels, max_bytes=len(data) + 1)
        except LetheError as exc:
            outcomes[place] = str(exc)
            continue
        if group and sum(d.width * d.height for _, d in group) + image.width * image.height > GROUP_PIXELS:
            _flush(pipeline, group, outcomes)
            group = []
        group.append((place, image))
    _flush(pipeline, group, outcomes)
    return [o if o is not None else "internal error: no outcome" for o in outcomes]


def _flush(
    pipeline: FacePipeline, group: list[tuple[int, DecodedImage]], outcomes: list[ProcessedImage | str | None]
) -> None:
    """Put the faces of each photo of ``group`` (or why it failed) in its place in ``outcomes``."""
    if group:
        for (place, _), result in zip(group, _faces_of(pipeline, [d for _, d in group]), strict=True):
            outcomes[place] = result


def _faces_of(pipeline: FacePipeline, group: list[DecodedImage]) -> list[ProcessedImage | str]:
    try:
        faces = pipeline.faces_batch([d.pixels for d in group])
    except Exception as exc:
        if len(group) > 1:  # find the photo that failed: one at a time
            return [item for d in group for item in _faces_of(pipeline, [d])]
        if isinstance(exc, LetheError):
            return [str(exc)]
        log.exception("unexpected error while processing a photo")
        return [f"internal error: {exc.__class__.__name__}"]
    return [ProcessedImage(d.width, d.height, d.format, f) for d, f in zip(group, faces, strict=True)]


def process_guarded(pipeline: FacePipeline, blobs: list[bytes], max_pixels: int) -> Outcomes:
    """:func:`process_many` for a worker: an unexpected error fails the chunk's photos, not the run."""
    try:
        return process_many(pipeline, blobs, max_pixels)
    except Exception as exc:  # noqa: BLE001 - one bad photo must not stop the run
        log.exception("unexpected error while processing photos")
        return [f"internal error: {exc.__class__.__name__}"] * len(blobs)
