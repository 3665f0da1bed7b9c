"""Ingest: files -> decode/detect/embed in worker processes -> catalog + crops + vector index.

The main process reads and hashes each file (so re-runs skip known photos without decoding them),
keeps at most ``2 x workers`` photos in flight (flat memory), and commits results in batches:
catalog rows and crops first, then vectors to the index. A crash between the two is repaired when
the engine next opens (the index is re-synchronised from the catalog).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from lethe.config import Settings
from lethe.errors import LetheError
from lethe.imaging import DecodedImage, decode_image
from lethe.pipeline import FacePipeline, build_pipeline
from lethe.sources_input import InputItem, InputProblem, iter_inputs
from lethe.types import FaceRecord

log = logging.getLogger(__name__)

COMMIT_EVERY_IMAGES = 64
#: Photos per worker task: their faces are embedded in one batch.
CHUNK_IMAGES = 8


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    width: int
    height: int
    format: str
    faces: list[FaceRecord]


@dataclass(slots=True)
class IngestReport:
    images: int = 0
    faces: int = 0
    skipped: int = 0
    suppressed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "faces": self.faces,
            "skipped": self.skipped,
            "suppressed": self.suppressed,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "images_per_s": round((self.images + self.skipped) / self.seconds, 2) if self.seconds else 0.0,
        }


@dataclass(frozen=True, slots=True)
class Job:
    item: InputItem
    sha256: str
    size_bytes: int


#: progress(done, total) — called from the main process.
Progress = Callable[[int, int], None]
#: commit(batch of (job, processed)) -> (faces stored, faces kept out by an objection).
Commit = Callable[[list[tuple[Job, ProcessedImage]]], tuple[int, int]]

_WORKER_PIPELINE: FacePipeline | None = None
_WORKER_MAX_PIXELS = 0


def _worker_init(settings: Settings) -> None:
    global _WORKER_PIPELINE, _WORKER_MAX_PIXELS
    _WORKER_PIPELINE = build_pipeline(settings)
    _WORKER_MAX_PIXELS = settings.max_image_pixels


def process_many(pipeline: FacePipeline, blobs: list[bytes], max_pixels: int) -> list[ProcessedImage | str]:
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
        raise
    return [
        d if isinstance(d, str) else ProcessedImage(d.width, d.height, d.format, next(faces)) for d in decoded
    ]


def _worker_process(blobs: list[bytes]) -> list[ProcessedImage | str]:
    if _WORKER_PIPELINE is None:
        return ["worker not initialised"] * len(blobs)
    try:
        return process_many(_WORKER_PIPELINE, blobs, _WORKER_MAX_PIXELS)
    except Exception as exc:  # noqa: BLE001 - one bad photo must not stop the run
        log.exception("unexpected error while processing photos")
        return [f"internal error: {exc.__class__.__name__}"] * len(blobs)


def _chunks(items: Iterator[tuple[Job, bytes]], size: int) -> Iterator[list[tuple[Job, bytes]]]:
    chunk: list[tuple[Job, bytes]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _read(item: InputItem, settings: Settings) -> tuple[bytes, str] | str:
    try:
        size = item.path.stat().st_size
        if size > settings.max_image_bytes:
            return f"file is {size} bytes, over the limit of {settings.max_image_bytes}"
        data = item.path.read_bytes()
    except FileNotFoundError:
        return "file not found"
    except IsADirectoryError:
        return "is a folder, not a file"
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc.__class__.__name__}"
    if not data:
        return "empty file"
    return data, hashlib.sha256(data).hexdigest()


def run_ingest(
    target: Path,
    settings: Settings,
    *,
    is_known: Callable[[str], bool],
    commit: Commit,
    pipeline: Callable[[], FacePipeline],
    progress: Progress | None = None,
) -> IngestReport:
    """Drive one ingest run. ``is_known(sha256)`` tells already-ingested photos apart."""
    report = IngestReport()
    started = time.perf_counter()
    total = sum(1 for _ in iter_inputs(target))
    done = 0
    seen: set[str] = set()
    batch: list[tuple[Job, ProcessedImage]] = []

    def finish(job: Job, result: ProcessedImage | str) -> None:
        nonlocal done
        done += 1
        if isinstance(result, str):
            report.errors.append({"path": str(job.item.path), "reason": result})
        else:
            batch.append((job, result))
            if len(batch) >= COMMIT_EVERY_IMAGES:
                flush()
        if progress:
            progress(done, total)

    def flush() -> None:
        if batch:
            stored, suppressed = commit(batch)
            report.faces += stored
            report.suppressed += suppressed
            report.images += len(batch)
            batch.clear()

    def jobs() -> Iterator[tuple[Job, bytes]]:
        nonlocal done
        for entry in iter_inputs(target):
            if isinstance(entry, InputProblem):
                done += 1
                report.errors.append({"path": entry.where, "reason": entry.reason})
                continue
            read = _read(entry, settings)
            if isinstance(read, str):
                done += 1
                report.errors.append({"path": str(entry.path), "reason": read})
                continue
            data, digest = read
            if digest in seen or is_known(digest):
                done += 1
                report.skipped += 1
                if progress:
                    progress(done, total)
                continue
            seen.add(digest)
            yield Job(entry, digest, len(data)), data

    if settings.workers <= 1:
        local = pipeline()
        for chunk in _chunks(jobs(), CHUNK_IMAGES):
            results = process_many(local, [data for _, data in chunk], settings.max_image_pixels)
            for (job, _), result in zip(chunk, results, strict=True):
                finish(job, result)
    else:
        # At most two chunks per worker in flight: memory stays flat however large the collection.
        window = settings.workers * 2
        # spawn, not fork: the parent may hold OpenMP threads (FAISS) that a forked child would inherit.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            settings.workers, mp_context=context, initializer=_worker_init, initargs=(settings,)
        ) as pool:
            pending: dict[Future[list[ProcessedImage | str]], list[Job]] = {}

            def drain(future: Future[list[ProcessedImage | str]]) -> None:
                for job, result in zip(pending.pop(future), future.result(), strict=True):
                    finish(job, result)

            for chunk in _chunks(jobs(), CHUNK_IMAGES):
                pending[pool.submit(_worker_process, [data for _, data in chunk])] = [job for job, _ in chunk]
                while len(pending) >= window:
                    completed, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in completed:
                        drain(future)
            for future in list(pending):
                drain(future)
    flush()
    report.seconds = time.perf_counter() - started
    return report
