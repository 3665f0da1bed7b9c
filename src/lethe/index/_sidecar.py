"""The JSON sidecar each index backend keeps beside its data, and the disk stamp read from it.

Every save of a backend ends by replacing its sidecar (``faces.meta.json`` for FAISS,
``milvus.meta.json`` for Milvus: structure, search parameters, and for Milvus the ids awaiting a
purge) through :func:`lethe.storage.atomic_write`. Because it is replaced last, its identity
(inode, mtime, size) -- the *disk stamp* -- changes with every save, which is how a handle notices
that another process saved (``reload_if_changed``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lethe.errors import VectorIndexError
from lethe.storage import atomic_write

#: Identity of one save: (inode, mtime in ns, size) of the sidecar.
Stamp = tuple[int, int, int]


def read_meta(path: Path) -> dict[str, Any] | None:
    """The JSON object stored at ``path``, or ``None`` when there is no file."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise VectorIndexError(f"index metadata {path} is unreadable: {exc}") from exc
    if not isinstance(meta, dict):
        raise VectorIndexError(f"index metadata {path} is not a JSON object")
    return meta


def write_meta(path: Path, meta: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``meta`` as JSON, atomically and durably."""
    payload = json.dumps(dict(meta), sort_keys=True).encode()
    try:
        atomic_write(path, payload)
    except OSError as exc:
        raise VectorIndexError(f"writing {path} failed: {exc}") from exc


def disk_stamp(path: Path) -> Stamp | None:
    """The identity of the sidecar at ``path`` (``None`` when there is none yet)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
