"""Ingest workers on this machine: in the driver's own process (``workers=1``) or a pool of
spawned processes, each building the pipeline once. :class:`WarmWorkers` keeps such a pool between
runs (the service's), so that a small folder's ingest starts at once instead of after every worker
has imported and loaded its models again."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from lethe.config import Settings
from lethe.ingest.work import FixedRunner, Outcomes, process_guarded
from lethe.pipeline import FacePipeline, build_pipeline

_WORKER_PIPELINE: FacePipeline | None = None
_WORKER_MAX_PIXELS = 0


def _worker_init(settings: Settings, also_models: tuple[str, ...]) -> None:
    global _WORKER_PIPELINE, _WORKER_MAX_PIXELS
    _WORKER_PIPELINE = build_pipeline(settings, also_models)
    _WORKER_MAX_PIXELS = settings.max_image_pixels


def _worker_ready() -> bool:
    """A task that only makes a worker start (and build its pipeline in its initializer)."""
    return _WORKER_PIPELINE is not None


def _worker_process(blobs: list[bytes]) -> Outcomes:
    if _WORKER_PIPELINE is None:
        return ["worker not initialised"] * len(blobs)
    return process_guarded(_WORKER_PIPELINE, blobs, _WORKER_MAX_PIXELS)


@contextmanager
def local_runner(
    settings: Settings, pipeline: Callable[[], FacePipeline], also_models: tuple[str, ...] = ()
) -> Iterator[FixedRunner]:
    """``settings.workers`` processes; one means the driver's own ``pipeline()``, chunk by chunk.
    Workers build the pipeline with ``also_models`` (see :func:`lethe.pipeline.build_pipeline`); the
    driver's own pipeline must have them already."""
    if settings.workers <= 1:
        local = pipeline()

        def run_here(blobs: list[bytes]) -> Future[Outcomes]:
            done: Future[Outcomes] = Future()
            done.set_result(process_guarded(local, blobs, settings.max_image_pixels))
            return done

        yield FixedRunner(run_here, window=1)
        return
    # spawn, not fork: the parent may hold OpenMP threads (FAISS) that a forked child would inherit.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        settings.workers, mp_context=context, initializer=_worker_init, initargs=(settings, also_models)
    ) as pool:

        def in_pool(blobs: list[bytes]) -> Future[Outcomes]:
            return pool.submit(_worker_process, blobs)

        # At most two chunks per worker in flight: memory stays flat however large the collection.
        yield FixedRunner(in_pool, window=settings.workers * 2)


log = logging.getLogger(__name__)


class WarmWorkers:
    """Worker processes kept between ingest runs, each with its pipeline built (see the module).

    ``warm()`` starts them in the background (the service calls it when the ingest page is opened
    and when a job starts); ``runner()`` lends them to one run; ``close()`` ends them. With
    ``workers=1`` the run happens in the driver's process, whose pipeline ``pipeline()`` builds:
    ``warm()`` builds it. A pool that broke (a worker killed) is replaced on the next run."""

    def __init__(self, settings: Settings, pipeline: Callable[[], FacePipeline]) -> None:
        self.settings = settings
        self._pipeline = pipeline
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        #: How many pools were started (the warm ones are reused: this stays at one).
        self.started = 0

    def _ensure(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    self.settings.workers,
                    mp_context=context,
                    initializer=_worker_init,
                    initargs=(self.settings, ()),
                )
                self.started += 1
                # One task per worker: the pool spawns them all now, each building its pipeline.
                for _ in range(self.settings.workers):
                    self._pool.submit(_worker_ready)
            return self._pool

    def warm(self) -> None:
        """Start the workers (or build the driver's pipeline) now; returns at once."""
        if self.settings.workers <= 1:
            threading.Thread(target=self._pipeline, name="ingest-warm-up", daemon=True).start()
        else:
            self._ensure()

    @contextmanager
    def runner(self) -> Iterator[FixedRunner]:
        """The warm workers for one run (the same contract as :func:`local_runner`)."""
        if self.settings.workers <= 1:
            with local_runner(self.settings, self._pipeline) as here:
                yield here
            return
        pool = self._ensure()

        def in_pool(blobs: list[bytes]) -> Future[Outcomes]:
            return pool.submit(_worker_process, blobs)

        try:
            yield FixedRunner(in_pool, window=self.settings.workers * 2)
        except BrokenProcessPool:
            self._drop(pool)
            raise

    def _drop(self, pool: ProcessPoolExecutor) -> None:
        log.warning("ingest workers stopped unexpectedly: a new pool starts with the next run")
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
