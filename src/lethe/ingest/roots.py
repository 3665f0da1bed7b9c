"""Where ingest may read: Lethe's own folders never, and through the service only inside the
configured ingest root.

- :func:`never_ingested`: the data folder (catalog, index, crops, temporary uploads), the exports
  folder (decrypted crops of access exports), the master key's and the session key's folders, the
  contact outbox. No
  setting opens them: the engine refuses a target inside one, and a walk or a manifest that reaches
  into one refuses those files, one report per folder or row.
- :func:`check_service_target`: the service (``POST /api/ingest``) reads only inside
  ``LETHE_INGEST_ROOT``; unset, it ingests uploads only. Whether a path does not exist, cannot be
  resolved, is outside the root or is one of Lethe's folders, the answer is the same
  (:data:`NOT_INGESTIBLE`): the API is no oracle for what exists on the server.

The command line (``lethe ingest``) is run by the machine's operator, whose own account can read
the files anyway; it is bound by :func:`never_ingested` only (docs/operations.md, "Ingest roots").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from lethe.config import Settings
from lethe.errors import InputError
from lethe.ingest.inputs import IMAGE_SUFFIXES, MANIFEST_SUFFIXES, OWN_FOLDER, is_inside

#: The one answer of the service for a path it will not ingest, whatever the reason.
NOT_INGESTIBLE = (
    "no folder, manifest (.csv / .jsonl) or photo the service may ingest is at this path (it cannot "
    "be resolved, does not exist, is another kind of file, or is outside LETHE_INGEST_ROOT or inside "
    "Lethe's own folders)"
)
#: The service's answer while no ingest root is configured.
NO_ROOT = (
    "ingest of server paths is off: an admin sets LETHE_INGEST_ROOT to the folder of photo "
    "collections the service may read (uploads work without it)"
)


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return path.expanduser().absolute()


def never_ingested(settings: Settings, key_files: Iterable[Path] = ()) -> list[Path]:
    """Lethe's own folders, resolved: nothing inside them is ever ingested. ``key_files`` are the
    key files in force (the master key, the session key), whose folders are added."""
    data = settings.data_dir
    folders = [data, settings.exports_dir or data / "exports", data / "tmp", data / "keys"]
    keys = [*key_files, settings.master_key_file, settings.session_secret_file]
    folders += [key.parent for key in keys if key is not None]
    outbox = getattr(settings, "contact_outbox_dir", None)  # requesters' contact messages
    folders += [outbox] if outbox is not None else []
    unique: list[Path] = []
    for folder in map(_resolved, folders):
        if folder not in unique and folder != Path(folder.anchor):  # never the whole file system
            unique.append(folder)
    return unique


def check_target(target: Path, forbidden: Sequence[Path]) -> None:
    """Refuse (``InputError``) a target inside one of Lethe's own folders (every front end)."""
    if is_inside(_resolved(target), forbidden):
        raise InputError(f"{target} is {OWN_FOLDER}")


def check_service_target(raw: str, settings: Settings, forbidden: Sequence[Path]) -> Path:
    """The resolved folder, manifest or photo file the service may ingest at ``raw``, or
    ``InputError`` with :data:`NOT_INGESTIBLE` (or :data:`NO_ROOT` while no root is set). One photo
    file is ingested alone (the newcomer review: it was accepted, then the job failed); any other
    file gets the one answer up front, before a job starts."""
    if settings.ingest_root is None:
        raise InputError(NO_ROOT)
    root = _resolved(settings.ingest_root)
    readable = MANIFEST_SUFFIXES | IMAGE_SUFFIXES
    try:
        resolved = Path(raw).expanduser().resolve(strict=True)
        usable = resolved.is_dir() or (resolved.is_file() and resolved.suffix.lower() in readable)
    except (OSError, RuntimeError, ValueError):  # missing, a NUL byte, a link loop, an unknown ~user
        usable = False
    if not usable or not resolved.is_relative_to(root) or is_inside(resolved, forbidden):
        raise InputError(NOT_INGESTIBLE)
    return resolved
