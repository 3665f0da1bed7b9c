"""Files in the data folder: atomic writes with private permissions, private folders, and the
cleanup of temporary files a killed writer leaves (the primitives under the crop store, the key
ring and the index files)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and every missing folder above it with mode 0700 (``mkdir(parents=True)``
    would give the ones above the umask's mode, often 0755)."""
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another thread or process
            folder.mkdir(mode=DIR_MODE)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)  # raises the error that explains why
    return path


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], None], *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix. ``data``
    may be a function that writes the content to the open file itself (a large file is then never
    held in memory whole).

    ``durable`` also fsyncs the file and its folder (index files). Crops skip it for speed: they are
    written before the catalog commit that names them, which a killed process cannot undo (the
    page cache outlives it); only a power cut can lose a crop whose face committed
    (docs/reliability.md, "Crashes")."""
    private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp_name, FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if durable:
        fsync_dir(path.parent)


def remove_stale_temps(folder: Path, names: Iterable[str]) -> int:
    """Delete the temporary files :func:`atomic_write` leaves in ``folder`` when a process dies
    mid-write (``.NAME.*.tmp`` for each of ``names``; they may hold data since deleted). Returns
    the number deleted. Only while no other process writes: its temporary file would vanish under
    it."""
    deleted = 0
    for name in names:
        for stale in folder.glob(f".{name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                deleted += 1
    return deleted


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
