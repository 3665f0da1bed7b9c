"""Ingest workers on this machine: in the driver's own process (``workers=1``) or a pool of
spawned processes, each building the pipeline once."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
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
