"""Ingest (operator): a folder or manifest inside the ingest root (``LETHE_INGEST_ROOT``; never
Lethe's own folders), or uploaded photos; progress to poll; a running job can be cancelled."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from lethe.errors import ImageError, ImageTooLargeError, InputError, LetheError
from lethe.http.auth import Operator
from lethe.http.errors import ApiError
from lethe.http.state import AppState, app_state
from lethe.http.uploads import IMAGE_KINDS, MAX_UPLOAD_PHOTOS, image_type, read_upload
from lethe.ingest.roots import check_service_target
from lethe.storage import atomic_write, private_dir

router = APIRouter(prefix="/api/ingest", tags=["ingest"])
State = Annotated[AppState, Depends(app_state)]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
            "image/bmp": ".bmp", "image/tiff": ".tif", "image/x-portable-anymap": ".pnm"}  # fmt: skip


class IngestPath(BaseModel):
    source: str = Field(min_length=1, max_length=200)
    path: str = Field(
        min_length=1, max_length=4096, description="A folder or .csv/.jsonl manifest on the server."
    )


def _safe_name(name: str | None) -> str:
    """A file name fit for a message (no path, no control characters)."""
    return _UNSAFE.sub("_", Path(name or "").name).strip("._")[:80] or "unnamed"


@router.post("", status_code=202)
def ingest_path(body: IngestPath, state: State, caller: Operator) -> dict[str, object]:
    """Start ingesting a folder (recursive) or a manifest inside the ingest root; returns the job.
    One answer (422) for a path that does not exist, cannot be resolved, is outside the root or is
    one of Lethe's own folders; with no root configured, path ingest is refused (uploads work)."""
    target = check_service_target(body.path, state.settings, state.engine.never_ingested())
    state.engine.gate.admit(body.source)  # 404 / 422 now rather than a failed job
    root = state.settings.ingest_root
    shown = str(target.relative_to(root.resolve())) if root is not None else target.name
    return state.jobs.start(body.source, target, actor=caller.actor, target_name=shown or ".").as_dict()


@router.post("/upload", status_code=202)
def ingest_upload(
    state: State,
    caller: Operator,
    source: Annotated[str, Form(min_length=1, max_length=200)],
    photos: Annotated[
        list[UploadFile], File(description="The photos (JPEG, PNG, WebP, GIF, BMP, TIFF, PGM, PPM).")
    ],
) -> dict[str, object]:
    """Upload photos and ingest them; they are kept in a private folder of the data folder only for
    the run. In the catalog each is named `upload:<file name>`. A file that is not a usable photo
    (empty, too large, not an image) is skipped and listed in the job's `errors`, as the command
    line does; only when no file is usable is the upload refused (the first file's error)."""
    state.engine.gate.admit(source)  # before reading the photos: 404 / 422 now, not a failed job
    if not photos or len(photos) > MAX_UPLOAD_PHOTOS:
        raise InputError(f"upload 1 to {MAX_UPLOAD_PHOTOS} photos at once")
    checked = []
    refused: list[dict[str, str]] = []
    first_error: LetheError | ApiError | None = None
    for number, upload in enumerate(photos, start=1):
        name = _safe_name(upload.filename)
        what = f"file {name} (number {number})" if len(photos) > 1 else f"file {name}"
        try:
            data = read_upload(upload, state.settings, what=what)
            checked.append((upload.filename, data, image_type(data, state.settings, what=what)))
        except (LetheError, ApiError) as exc:
            first_error = first_error or exc
            refused.append({"path": f"upload:{name}", "reason": _reason(exc)})
    if not checked and first_error is not None:
        raise first_error
    folder = private_dir(state.settings.data_dir / "tmp") / f"upload-{secrets.token_hex(8)}"
    private_dir(folder)
    names: dict[str, str] = {}
    try:
        for number, (filename, data, media_type) in enumerate(checked, start=1):
            stored = f"{number:04d}{SUFFIXES.get(media_type, '.img')}"
            names[stored] = Path(filename or stored).name[:200]
            atomic_write(folder / stored, data, durable=False)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def uri_for(path: Path) -> str:
        return f"upload:{names.get(path.name, path.name)}"

    count = len(checked)
    return state.jobs.start(
        source,
        folder,
        actor=caller.actor,
        cleanup=folder,
        uri_for=uri_for,
        refused=refused,
        target_name=f"{count} uploaded photo{'' if count == 1 else 's'}",
    ).as_dict()


def _reason(exc: LetheError | ApiError) -> str:
    """Why one uploaded file was skipped, in the words its own error would have answered."""
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, ImageTooLargeError):
        return str(exc)
    if isinstance(exc, ImageError):
        return f"not a supported image ({IMAGE_KINDS}): {str(exc).split(': ', 1)[-1]}"
    return str(exc)


@router.get("")
def ingest_jobs(state: State, _caller: Operator) -> dict[str, object]:
    """The jobs the service knows, newest first, a running one first of all: at most the last 10
    since the service started (jobs are kept in memory; the audit log keeps every ingest)."""
    return {"jobs": [job.as_dict() for job in state.jobs.recent()]}


@router.get("/{job_id}")
def ingest_progress(job_id: str, state: State, _caller: Operator) -> dict[str, object]:
    """A job's progress: state (running, done, failed, cancelled), done/total, counts, rate."""
    return state.jobs.get(job_id).as_dict()


@router.post("/{job_id}/cancel", status_code=202)
def ingest_cancel(job_id: str, state: State, caller: Operator) -> dict[str, object]:
    """Ask a running job to stop after the file it is reading; poll it until it is `cancelled`
    (what it stored so far stays). 409 once the job has ended."""
    return state.jobs.cancel(job_id, actor=caller.actor).as_dict()
