"""Ingest jobs of the service: one at a time, in a background thread, with progress to poll.

A job runs :meth:`lethe.engine.Lethe.ingest` (which takes the engine's writer lock). Its state moves
``running`` → ``done`` | ``failed`` | ``cancelled`` (an operator cancelled it, or the service
stopped: the driver stops between files, and what it had committed stays). Uploaded photos are
written into a private folder of the data folder for the run and deleted when it ends, whatever the
outcome.

The service keeps its ingest workers warm (:class:`lethe.ingest.local.WarmWorkers`): they start
when the ingest page is opened or the first job starts, and every later job reuses them, so a small
folder's ingest starts at once. The jobs the service knows (the running one and the last
:data:`KEEP_FINISHED`) are listed newest first (:meth:`IngestJobs.recent`), so the ingest page shows
the current job and a short history when it is opened again.

A failed job's ``error`` names no path of the server (:func:`public_message`): a path inside the
ingest root is shown relative to it, an uploaded photo by its upload name, any other (a key file,
the data folder) by its last part only. The server log keeps the full text only for a settings
problem (:class:`~lethe.errors.ConfigError`: the service's own files, no personal data); for any
other error it names the error's kind, since a photo's path may name a person.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lethe.engine import Lethe
from lethe.errors import ConfigError, ConflictError, LetheError, NotFoundError
from lethe.ingest import IngestReport
from lethe.ingest.local import WarmWorkers

log = logging.getLogger(__name__)

KEEP_FINISHED = 50
#: An absolute POSIX path in a message: from a slash that starts a word to the next blank, quote,
#: colon, comma or bracket.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:-])/[^\s'\"`:;,()<>\[\]{}]+")


def public_message(
    text: str,
    *,
    root: Path | None = None,
    upload: Path | None = None,
    uri_for: Callable[[Path], str] | None = None,
) -> str:
    """``text`` with every absolute path cut to a form that names no folder of the server: inside
    ``root`` (the ingest root, where the operator named the path) relative to it, inside ``upload``
    (the folder of an upload) by its upload name (``uri_for``), and any other by its last part
    (``…/master.key``)."""

    def shorten(match: re.Match[str]) -> str:
        found = match.group(0)
        stripped = found.rstrip(".")
        path = Path(stripped)
        if root is not None and path.is_relative_to(root) and path != root:
            short = str(path.relative_to(root))
        elif upload is not None and uri_for is not None and path.is_relative_to(upload) and path != upload:
            short = uri_for(path)
        else:
            short = f"…/{path.name}" if path.name else "…"
        return short + found[len(stripped) :]

    return _ABSOLUTE_PATH.sub(shorten, text)


@dataclass
class IngestJob:
    """One job: who started it on which source, where it stands, and once done the ingest's report."""

    id: str
    source: str
    actor: str
    #: What it ingests, in words that name no folder of the server outside the ingest root.
    target: str = ""
    #: Uploaded files refused before the run (not an image, empty, too large): listed with its errors.
    refused: list[dict[str, str]] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    state: str = "running"
    done: int = 0
    total: int = 0
    report: IngestReport = field(default_factory=IngestReport)
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    #: Set to ask the run to stop after the file it is reading.
    cancel: threading.Event = field(default_factory=threading.Event)
    cancelled_by: str | None = None

    def as_dict(self) -> dict[str, object]:
        elapsed = self.seconds if self.state != "running" else time.monotonic() - self.started
        report = self.report
        refused = len(self.refused)
        # Photos read and processed: skipped ones (known by their hash) cost no work and would
        # make a run that skipped everything look fast.
        worked = max(0, self.done - report.skipped)
        return {
            "id": self.id,
            "source": self.source,
            "target": self.target,
            "actor": self.actor,
            "started_at": self.started_at,
            "state": self.state,
            "done": self.done + refused,
            "total": self.total + refused,
            "images": report.images,
            "faces": report.faces,
            "skipped": report.skipped,
            "already_present": report.skipped - report.erased,
            "erased": report.erased,
            "suppressed": report.suppressed,
            "no_face": report.no_face,
            "errors": self.refused + report.errors,
            "errors_omitted": report.errors_omitted,
            "error": self.error,
            "cancelled_by": self.cancelled_by,
            "seconds": round(elapsed, 3),
            "images_per_s": round(worked / elapsed, 2) if elapsed > 0 and worked else 0.0,
        }


class IngestJobs:
    def __init__(self, engine: Lethe, on_progress: Callable[[int], None] | None = None) -> None:
        self.engine = engine
        self._on_progress = on_progress
        self._jobs: dict[str, IngestJob] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: Ingest workers kept between jobs, with their models loaded.
        self.workers = WarmWorkers(engine.settings, lambda: engine.pipeline)
        self._warming: threading.Thread | None = None

    def warm(self) -> None:
        """Load the models now, in the background (once): the engine's checked model files, then
        the workers. Called when the ingest page is opened and before each job."""
        with self._lock:
            if self._warming is not None:
                return
            self._warming = threading.Thread(target=self._warm_up, name="ingest-warm-up", daemon=True)
            self._warming.start()

    def _warm_up(self) -> None:
        try:
            self.engine.prepare_models()  # model files found, checked, converted once
            self.workers.warm()
        except LetheError as exc:  # the job that follows reports it; nothing to keep warm
            log.warning("ingest warm-up failed: %s", exc.__class__.__name__)

    def recent(self, limit: int = 10) -> list[IngestJob]:
        """The jobs the service knows, newest first (a running one first of all)."""
        with self._lock:
            jobs = list(self._jobs.values())
        jobs.reverse()
        return sorted(jobs, key=lambda j: j.state != "running")[:limit]

    def start(
        self,
        source: str,
        target: Path,
        *,
        actor: str,
        cleanup: Path | None = None,
        uri_for: Callable[[Path], str] | None = None,
        refused: list[dict[str, str]] | None = None,
        target_name: str = "",
    ) -> IngestJob:
        """Start a job; ``ConflictError`` when one is already running (``cleanup`` is then deleted at
        once). A job with ``cleanup`` ingests that folder as the service's own upload; ``refused``
        lists uploaded files skipped before it (they show among its errors); ``target_name`` says
        what it ingests, in words fit for the page."""
        self.warm()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                if cleanup is not None:
                    shutil.rmtree(cleanup, ignore_errors=True)
                raise ConflictError("an ingest job is already running; wait for it to finish")
            job = IngestJob(
                id=secrets.token_hex(8),
                source=source,
                actor=actor,
                target=target_name,
                refused=list(refused or []),
            )
            self._jobs[job.id] = job
            for old in [j for j in self._jobs.values() if j.state != "running"][:-KEEP_FINISHED]:
                del self._jobs[old.id]
            self._thread = threading.Thread(
                target=self._run, args=(job, target, cleanup, uri_for), name=f"ingest-{job.id}", daemon=True
            )
            self._thread.start()
        return job

    def get(self, job_id: str) -> IngestJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no ingest job {job_id}")
        return job

    def cancel(self, job_id: str, *, actor: str) -> IngestJob:
        """Ask a running job to stop after the file it is reading (``ConflictError`` once it ended);
        the job answers ``cancelled`` when its thread has stopped."""
        job = self.get(job_id)
        with self._lock:
            if job.state != "running":
                raise ConflictError(
                    f"ingest job {job_id} is {job.state}; only a running job can be cancelled"
                )
            if job.cancelled_by is None:
                job.cancelled_by = actor
            job.cancel.set()
        log.info("ingest job %s: cancel asked", job.id)
        return job

    def running_on(self, source: str) -> bool:
        """Whether a job is ingesting into ``source`` now (a source is not deleted under it)."""
        with self._lock:
            return any(j.state == "running" and j.source == source for j in self._jobs.values())

    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Ask a running job to stop after its current photo, wait for it, and end the workers."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        warming = self._warming
        if warming is not None:
            warming.join(timeout_s)
        self.workers.close()

    def _run(
        self, job: IngestJob, target: Path, cleanup: Path | None, uri_for: Callable[[Path], str] | None
    ) -> None:
        def progress(done: int, total: int) -> None:
            if self._on_progress is not None:
                self._on_progress(done - job.done)
            job.done, job.total = done, total

        def cancelled() -> bool:
            return job.cancel.is_set() or self._stop.is_set()

        try:
            warming = self._warming
            if warming is not None:
                warming.join()  # the models once, not twice at the same time
            report = self.engine.ingest(
                job.source,
                target,
                progress=progress,
                actor=job.actor,
                uri_for=uri_for,
                uploaded=cleanup is not None,
                cancelled=cancelled,
                workers=self.workers.runner,
            )
        except LetheError as exc:
            text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            if isinstance(exc, ConfigError):  # the service's own files and settings: no personal data
                log.error("ingest job %s failed: %s", job.id, text)
            else:
                log.warning("ingest job %s failed: %s", job.id, exc.__class__.__name__)
            root = self.engine.settings.ingest_root
            job.state = "failed"
            job.error = public_message(
                text, root=None if root is None else root.resolve(), upload=cleanup, uri_for=uri_for
            )
        except Exception as exc:  # noqa: BLE001 - the thread must always record an end state
            log.error("ingest job %s failed: %s", job.id, exc.__class__.__name__, exc_info=exc)
            job.state, job.error = "failed", "internal error; the server log names the cause"
        else:
            if uri_for is not None:
                report.errors = [e | {"path": uri_for(Path(e["path"]))} for e in report.errors]
            job.report = report
            refused = len(report.errors) + report.errors_omitted
            job.done = max(job.done, report.images + report.skipped + refused)
            job.total = max(job.total, job.done)
            if report.cancelled:
                job.state = "cancelled"
                job.error = (
                    f"cancelled by {job.cancelled_by}" if job.cancel.is_set() else "the service stopped"
                )
            else:
                job.state = "done"
        finally:
            job.seconds = time.monotonic() - job.started
            if cleanup is not None:
                shutil.rmtree(cleanup, ignore_errors=True)
