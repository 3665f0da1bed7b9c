"""The ingest driver: files -> workers -> the engine's commit, the same for every runner.

The driver reads and hashes each file (so re-runs skip known photos without decoding them), sends
chunks of photo bytes to a runner's workers with at most ``window`` chunks in flight (flat memory),
and hands finished photos to ``commit`` in batches: catalog rows and crops first, then vectors to
the index. A crash between the two is repaired when the engine next opens (the index is
re-synchronised from the catalog); an interrupted run is resumed by running it again. A run can be
cancelled: ``cancelled()`` is asked before each file (while counting and while reading), and a
cancelled run stops reading, finishes the photos already with the workers, commits them and reports
``cancelled``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from lethe.config import Settings
from lethe.errors import ConfigError
from lethe.ingest.inputs import InputItem, InputProblem, iter_inputs
from lethe.ingest.local import local_runner
from lethe.ingest.work import Outcomes, ProcessedImage, Runner
from lethe.pipeline import FacePipeline

COMMIT_EVERY_IMAGES = 64
#: Refused files listed one by one in a report; past this only counted (``errors_omitted``), so a
#: manifest of millions of bad rows cannot fill the memory or the JSON answer.
MAX_LISTED_ERRORS = 10_000
#: Photos per worker task: their faces are embedded in one batch.
CHUNK_IMAGES = 8
#: A task also ends at this many bytes of photos: camera photos go one or two at a time, so that
#: two workers share a few large photos evenly.
CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class IngestReport:
    """What one run did. ``images`` counts the new photos it read and kept track of: those stored
    with their faces and those in which no face was found, which leave no row and no path, only
    their hash (``no_face`` says how many; the next run skips them as ``skipped``). ``skipped``
    counts the photos skipped by their hash: already present, or erased before (``erased`` says how
    many of them: an erasure's tombstone blocks them, in every source). Photos kept out as copies of
    erased ones (their faces matched) are not counted."""

    images: int = 0
    faces: int = 0
    skipped: int = 0
    #: Of ``skipped``: photos erased before, blocked by their tombstone (not "already present").
    erased: int = 0
    suppressed: int = 0
    no_face: int = 0
    discarded: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    errors_omitted: int = 0
    seconds: float = 0.0
    #: The run was cancelled before it read every file (what it committed stays).
    cancelled: bool = False

    def refuse(self, path: str, reason: str) -> None:
        """Note one refused file: listed while fewer than :data:`MAX_LISTED_ERRORS` are, else counted."""
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append({"path": path, "reason": reason})
        else:
            self.errors_omitted += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "faces": self.faces,
            "skipped": self.skipped,
            "erased": self.erased,
            "suppressed": self.suppressed,
            "no_face": self.no_face,
            "discarded": self.discarded,
            "errors": self.errors,
            "errors_omitted": self.errors_omitted,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "images_per_s": round((self.images + self.skipped) / self.seconds, 2) if self.seconds else 0.0,
            "already_present": self.skipped - self.erased,
        }


@dataclass(frozen=True, slots=True)
class Job:
    item: InputItem
    sha256: str
    size_bytes: int


#: progress(done, total) — called from the main process.
Progress = Callable[[int, int], None]


class Committed(NamedTuple):
    """What ``commit`` did with one batch."""

    #: Faces stored.
    faces: int
    #: Faces kept out by an objection or an erasure suppression.
    suppressed: int
    #: Photos not stored because every face of theirs was a copy of an erased face.
    kept_out: int
    #: Photos in which no face was found: only their hash noted.
    no_face: int
    #: Faces of people not enrolled in an ``enrolled_only`` source: compared in memory, never stored.
    discarded: int = 0


#: commit(batch of (job, processed)) -> what it stored and kept out.
Commit = Callable[[list[tuple[Job, ProcessedImage]]], Committed]


def open_runner(
    settings: Settings, pipeline: Callable[[], FacePipeline], also_models: tuple[str, ...] = ()
) -> AbstractContextManager[Runner]:
    """The workers ``settings.ingest_engine`` names: this machine's, or a Ray cluster's."""
    if settings.ingest_engine == "ray":
        from lethe.ingest.ray_runner import ray_runner

        if also_models:
            raise ConfigError(
                "objections made under another model are checked by a second embedder, which the Ray "
                "engine does not run: ingest with the local engine (--engine local)"
            )
        return ray_runner(settings)
    return local_runner(settings, pipeline, also_models)


def chunk_size(total: int, window: int) -> int:
    """Photos per worker task for a run of ``total`` photos with ``window`` tasks in flight: about
    four rounds of the window's tasks at least, so a small run reports each photo as it is done
    (progress that moves from the first photo), between 1 and :data:`CHUNK_IMAGES`."""
    return max(1, min(CHUNK_IMAGES, total // max(1, 4 * window)))


def _chunks(
    items: Iterator[tuple[Job, bytes]], size: int, max_bytes: int = CHUNK_BYTES
) -> Iterator[list[tuple[Job, bytes]]]:
    chunk: list[tuple[Job, bytes]] = []
    held = 0
    for item in items:
        chunk.append(item)
        held += len(item[1])
        if len(chunk) >= size or held >= max_bytes:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


class _FolderSwapped(Exception):
    pass


def _open_beneath(item: InputItem, flags: int) -> int:
    """``os.open(item.path, flags)``, walking down from ``item.root`` with ``O_NOFOLLOW`` at each
    folder (``openat``), so no link swapped in after the walk is followed."""
    root = item.root
    if root is None or item.path == root or not item.path.is_relative_to(root):
        return os.open(item.path, flags)
    parts = item.path.relative_to(root).parts
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _FolderSwapped from exc
                raise
            os.close(folder)
            folder = inner
        return os.open(parts[-1], flags, dir_fd=folder)
    finally:
        os.close(folder)


def _read(item: InputItem, settings: Settings) -> tuple[bytes, str] | str:
    """The file's bytes and their sha256, or why it cannot be used.

    Opened without following a symbolic link (the path is already resolved: a link appearing there
    since was put there behind our back), one folder at a time beneath the collection folder (so a
    folder on the way swapped for a link cannot lead out of it either) and without blocking (a
    named pipe must not hang the run); only regular files are read, and never more than the byte
    limit, however large the file grows."""
    limit = settings.max_image_bytes
    try:
        fd = _open_beneath(item, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return "file not found"
    except IsADirectoryError:
        return "is a folder, not a file"
    except _FolderSwapped:
        return "cannot read file: a folder on its path became a symbolic link or a file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "cannot read file: it became a symbolic link"
        return f"cannot read file: {exc.strerror or exc.__class__.__name__}"
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return "is a folder, not a file"
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file (a device, pipe or socket)"
        if info.st_size > limit:
            return f"file is {info.st_size} bytes, over the limit of {limit}"
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc.__class__.__name__}"
    finally:
        os.close(fd)
    if len(data) > limit:
        return f"file is over the limit of {limit} bytes"
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
    also_models: tuple[str, ...] = (),
    forbidden: Sequence[Path] = (),
    cancelled: Callable[[], bool] | None = None,
    is_erased: Callable[[str], bool] | None = None,
    workers: Callable[[], AbstractContextManager[Runner]] | None = None,
) -> IngestReport:
    """Drive one ingest run. ``is_known(sha256)`` tells already-ingested (or erased) photos apart,
    ``is_erased(sha256)`` which of those were erased before (``report.erased``); ``pipeline``
    is the driver's own, used when it processes photos itself (``workers=1``); nothing inside the
    ``forbidden`` folders is read (:mod:`lethe.ingest.roots`); ``cancelled()`` stops the run
    between files (see the module); ``workers()`` lends a run workers kept warm between runs
    (:class:`lethe.ingest.local.WarmWorkers`), used unless the run needs other models' embedders or
    the Ray engine. Chunks are small for a small run (one photo each for a few dozen), so that its
    progress moves photo by photo rather than in jumps of :data:`CHUNK_IMAGES`."""
    report = IngestReport()
    started = time.perf_counter()

    def stop() -> bool:
        if cancelled is not None and not report.cancelled and cancelled():
            report.cancelled = True
        return report.cancelled

    total = 0
    for _ in iter_inputs(target, forbidden):
        if stop():
            report.seconds = time.perf_counter() - started
            return report
        total += 1
    done = 0
    seen: set[str] = set()
    batch: list[tuple[Job, ProcessedImage]] = []

    def finish(job: Job, result: ProcessedImage | str) -> None:
        nonlocal done
        done += 1
        if isinstance(result, str):
            report.refuse(str(job.item.path), result)
        else:
            batch.append((job, result))
            if len(batch) >= COMMIT_EVERY_IMAGES:
                flush()
        if progress:
            progress(done, total)

    def flush() -> None:
        if batch:
            committed = commit(batch)
            report.faces += committed.faces
            report.suppressed += committed.suppressed
            report.images += len(batch) - committed.kept_out
            report.no_face += committed.no_face
            report.discarded += committed.discarded
            batch.clear()

    def jobs() -> Iterator[tuple[Job, bytes]]:
        nonlocal done
        for entry in iter_inputs(target, forbidden):
            if stop():
                return
            if isinstance(entry, InputProblem):
                done += 1
                report.refuse(entry.where, entry.reason)
                continue
            read = _read(entry, settings)
            if isinstance(read, str):
                done += 1
                report.refuse(str(entry.path), read)
                continue
            data, digest = read
            if digest in seen or is_known(digest):
                done += 1
                report.skipped += 1
                if digest not in seen and is_erased is not None and is_erased(digest):
                    report.erased += 1
                if progress:
                    progress(done, total)
                continue
            seen.add(digest)
            yield Job(entry, digest, len(data)), data

    if workers is not None and not also_models and settings.ingest_engine == "local":
        opened = workers()
    else:
        opened = open_runner(settings, pipeline, also_models)
    with opened as runner:
        pending: dict[Future[Outcomes], list[Job]] = {}

        def drain(future: Future[Outcomes]) -> None:
            for job, result in zip(pending.pop(future), future.result(), strict=True):
                finish(job, result)

        for chunk in _chunks(jobs(), chunk_size(total, runner.window)):
            pending[runner.submit([data for _, data in chunk])] = [job for job, _ in chunk]
            while len(pending) >= runner.window:
                completed, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in completed:
                    drain(future)
        for future in list(pending):
            drain(future)
    flush()
    # by path, whatever order the workers finished in: two runs over the same folder, on one machine
    # or a Ray cluster, busy or not, report the same list
    report.errors.sort(key=lambda error: error["path"])
    report.seconds = time.perf_counter() - started
    return report
