"""milvus-lite, the embedded engine of a local ``.db`` folder: its server, its files, its repairs.

* milvus-lite runs one server per database folder per process; every :class:`LiteFolder` of one
  folder shares it, and the last one released stops it (a reference count).
* It creates its files with the process umask (often 0644): :meth:`LiteFolder.owner_only` makes
  them 0600 and its folders 0700, like every other file of the data folder.
* A process killed while milvus-lite dropped or created a collection leaves the collection's folder
  without its schema file; :meth:`LiteFolder.remove_stale_collection` deletes such remains.

A URI is a milvus-lite folder when it is a plain path (:func:`is_local`); the folder allows one
process at a time (milvus-lite's own file lock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from pathlib import Path

from lethe.errors import ConfigError
from lethe.storage import DIR_MODE, FILE_MODE

log = logging.getLogger(__name__)

#: Handles open on each milvus-lite folder of this process (absolute path -> count).
_USERS: dict[str, int] = {}
_LOCK = threading.Lock()


def is_local(uri: str) -> bool:
    """Whether ``uri`` names a milvus-lite file rather than a Milvus server."""
    return "://" not in uri and not uri.startswith("unix:")


class LiteFolder:
    """One handle's claim on the milvus-lite folder ``uri`` (a path ending in ``.db``), counted
    until :meth:`release`."""

    def __init__(self, uri: str) -> None:
        if not uri.endswith(".db"):
            raise ConfigError(f"a milvus-lite path must end in .db, got {uri}")
        Path(uri).parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        self.path = os.path.abspath(uri)
        with _LOCK:
            _USERS[self.path] = _USERS.get(self.path, 0) + 1

    def release(self) -> None:
        """Give up this claim; the last one stops the folder's server and tightens its files."""
        with _LOCK:
            users = _USERS.get(self.path, 0) - 1
            if users > 0:
                _USERS[self.path] = users
                return
            _USERS.pop(self.path, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(self.path)
        self.owner_only()

    def owner_only(self) -> None:
        """Files 0600, folders 0700. (The index folder around it is 0700 already, so nobody else
        could reach them; files written later by milvus-lite's background compaction get the same
        treatment at the next save or close.)"""
        root = Path(self.path)
        for path in [root, *root.rglob("*")]:
            with contextlib.suppress(FileNotFoundError):  # compaction may remove a file meanwhile
                path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)

    def remove_stale_collection(self, collection: str) -> None:
        """milvus-lite killed while dropping a collection (or creating one) leaves the collection's
        folder without its schema file: milvus-lite then says there is no such collection but
        refuses to create it (``File exists``). That folder belongs to no collection and may hold
        vectors of erased faces: delete it (the catalog rebuilds the index)."""
        stale = Path(self.path) / "collections" / collection
        if stale.is_dir():
            log.warning("removing the remains of a milvus-lite collection a crash left behind")
            shutil.rmtree(stale)

    def file_bytes(self) -> int:
        """Bytes of every file in the folder."""
        root = Path(self.path)
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0
