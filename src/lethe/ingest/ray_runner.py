"""Ingest workers on a Ray cluster (``lethe ingest ... --engine ray``; needs ``lethe[ray]``).

One actor per worker CPU builds the pipeline once from a :class:`~lethe.ingest.kit.WorkerKit` and
then processes chunks of photos; the driver (this process) does everything else exactly as for
local ingest: reading, hashing, skipping known photos, committing to the catalog and the index.
Ray is started (or connected to) when the first photo needs processing, so a re-run over photos
that are all known never touches the cluster.

Photos travel as bytes, not paths. The driver has read and hashed every file already (that is how
known photos are skipped), so sending the bytes costs no second read, needs no storage shared with
the workers, and makes sure the faces stored under a hash come from exactly the bytes that were
hashed. Each chunk goes to the least busy actor, and at most two chunks per actor are in flight.

A lost actor (its node went away) stops the run with an error; nothing half-done is stored, and
running the same ingest again resumes it (photos committed before are skipped by their hash).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from lethe.config import Settings
from lethe.errors import ConfigError, LetheError, ModelError
from lethe.ingest.kit import WorkerKit
from lethe.ingest.work import Outcomes, process_guarded

log = logging.getLogger(__name__)

#: How long the actors may take to start (scheduling, imports, model loading) before the run fails.
ACTOR_START_TIMEOUT_S = 300.0
#: How long the head node's port may take to answer.
CONNECT_TIMEOUT_S = 10.0


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the Ray ingest engine needs Ray: pip install 'lethe[ray]'") from exc
    return ray


class PipelineActor:
    """Runs in a Ray worker process: the models are loaded once, then chunk after chunk."""

    def __init__(self, kit: WorkerKit) -> None:
        self._kit = kit
        self._problem: str | None = None
        try:
            self._pipeline = kit.build()
        except LetheError as exc:  # reported by ready(), not as a crash
            self._problem = str(exc)

    def ready(self) -> tuple[str, str | None]:
        """(this node's host name, why the models could not be loaded or None)."""
        return socket.gethostname(), self._problem

    def process(self, blobs: list[bytes]) -> Outcomes:
        return process_guarded(self._pipeline, blobs, self._kit.max_image_pixels)


@contextmanager
def ray_runner(settings: Settings) -> Iterator[RayWorkers]:
    workers = RayWorkers(import_ray(), settings)
    try:
        yield workers
    finally:
        workers.close()


class RayWorkers:
    """The driver's side: starts on the first chunk, sends each chunk to the least busy actor."""

    def __init__(self, ray: ModuleType, settings: Settings) -> None:
        self._ray = ray
        self._settings = settings
        self._started = self._connected_here = False
        self._actors: list[Any] = []
        self._in_flight: list[list[Future[Outcomes]]] = []

    @property
    def window(self) -> int:
        return 2 * max(1, len(self._actors))

    def submit(self, blobs: list[bytes]) -> Future[Outcomes]:
        if not self._started:
            self._start()
        for futures in self._in_flight:
            futures[:] = [f for f in futures if not f.done()]
        slot = min(range(len(self._actors)), key=lambda i: len(self._in_flight[i]))
        result: Future[Outcomes] = Future()
        raw = self._actors[slot].process.remote(blobs).future()
        raw.add_done_callback(lambda done: _relay(done, result))
        self._in_flight[slot].append(result)
        return result

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors.clear()
        if self._connected_here:
            self._ray.shutdown()
            self._connected_here = False

    def _start(self) -> None:
        self._started = True
        kit = WorkerKit.pack(self._settings)
        self._connect()
        ray = self._ray
        count = self._settings.ray_actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor_class = ray.remote(num_cpus=1)(PipelineActor)
        kit_ref = ray.put(kit)  # sent to each node once, not once per actor
        self._actors = [actor_class.remote(kit_ref) for _ in range(count)]
        self._in_flight = [[] for _ in self._actors]
        refs = [actor.ready.remote() for actor in self._actors]
        ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=ACTOR_START_TIMEOUT_S)
        if waiting:
            raise ConfigError(
                f"only {len(ready)} of {count} Ray actors started within {ACTOR_START_TIMEOUT_S:.0f} s: "
                "the cluster has fewer free CPUs (ask for fewer with --workers or LETHE_RAY_ACTORS)"
            )
        try:
            answers = ray.get(ready)
        except ray.exceptions.RayError as exc:
            raise ModelError(f"a Ray worker failed to start: {_last_line(exc)}") from exc
        for host, problem in answers:
            if problem is not None:
                raise ModelError(f"Ray worker on {host}: {problem}")
        log.info("ingest on Ray: %d actors ready", count)

    def _connect(self) -> None:
        """As ``settings.ray_address`` says, unless this process is connected already."""
        ray, settings = self._ray, self._settings
        if ray.is_initialized():
            return
        # Worker output is not forwarded: it would land on stdout, which belongs to the CLI's JSON.
        options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if settings.ray_address:
            _check_reachable(settings.ray_address)
            options["address"] = settings.ray_address
        else:  # "local" starts a new instance even when RAY_ADDRESS is set in the environment
            options.update(address="local", num_cpus=settings.workers, include_dashboard=False)
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = settings.ray_address or "a new local Ray instance"
            raise ConfigError(f"cannot connect to {where}: {exc}") from exc
        self._connected_here = True


def _check_reachable(address: str) -> None:
    """Fail fast on a head node that does not answer (Ray itself would retry for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # `auto` and the like: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from exc


def _relay(done: Future[Outcomes], result: Future[Outcomes]) -> None:
    """Ray's errors become Lethe's at this boundary (the run stops; running it again resumes)."""
    problem = done.exception()
    if problem is None:
        result.set_result(done.result())
        return
    error = LetheError(f"a Ray worker was lost: {_last_line(problem)}; run the ingest again to resume")
    error.__cause__ = problem
    result.set_exception(error)


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else exc.__class__.__name__
