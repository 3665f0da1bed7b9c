"""The face-crop store: aligned face chips, each sealed with its source's key, one file per face
under the data folder's ``crops/``, with the journal that lets a crashed ingest's crops be found and
deleted (:meth:`CropStore.recover`). Files are written with :func:`lethe.storage.atomic_write`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from lethe.errors import NotFoundError
from lethe.storage import atomic_write, private_dir, remove_stale_temps


class CropSealer(Protocol):
    """What the crop store needs of a key ring (:class:`lethe.keyring.KeyRing`)."""

    def seal_crop(self, source_id: int, face_id: int, jpeg: bytes) -> bytes: ...

    def open_crop(self, source_id: int, face_id: int, blob: bytes) -> bytes: ...


class CropStore:
    """Face crops (aligned 150x150 JPEG chips) under ``root``, sharded by face id, each sealed with
    its source's key (``<id % 256>/<id>.sealed``; see :mod:`lethe.keyring`)."""

    SUFFIX = ".sealed"
    #: Face ids whose crops are being written for a catalog transaction not yet committed: a
    #: process killed before the commit leaves crops of faces that do not exist, which
    #: :meth:`recover` deletes when the engine next opens.
    JOURNAL = "pending.journal"

    def __init__(self, root: Path, keyring: CropSealer) -> None:
        self.root = private_dir(root)
        self.keyring = keyring

    def relative_path(self, face_id: int) -> str:
        return f"{face_id % 256:02x}/{face_id}{self.SUFFIX}"

    def path(self, face_id: int) -> Path:
        """The sealed file (not a JPEG: read it with :meth:`read`)."""
        return self.root / self.relative_path(face_id)

    def write(self, face_id: int, jpeg: bytes, *, source_id: int) -> str:
        sealed = self.keyring.seal_crop(source_id, face_id, jpeg)
        atomic_write(self.path(face_id), sealed, durable=False)
        return self.relative_path(face_id)

    def read(self, face_id: int, *, source_id: int) -> bytes:
        """The decrypted JPEG. Raises NotFoundError, SealedDataError or KeyShreddedError."""
        try:
            sealed = self.path(face_id).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no crop for face {face_id}") from None
        return self.keyring.open_crop(source_id, face_id, sealed)

    def delete(self, face_id: int) -> bool:
        try:
            self.path(face_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def begin(self, face_ids: Iterable[int]) -> None:
        """Note the faces whose crops are about to be written, before any is written."""
        atomic_write(self.root / self.JOURNAL, json.dumps(sorted(int(f) for f in face_ids)).encode())

    def settle(self) -> None:
        """The transaction that names the noted faces has committed (or their crops are deleted)."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / self.JOURNAL).unlink()

    def pending(self) -> bool:
        """Whether a journal, or the temporary file of one being written, is there."""
        return (self.root / self.JOURNAL).exists() or any(self.root.glob(f".{self.JOURNAL}.*.tmp"))

    def recover(self, stored: Callable[[list[int]], set[int]]) -> int:
        """After a crash: delete the crops (and half-written temporary files) of noted faces that
        ``stored`` says are not in the catalog. The caller holds the write lock. Returns crops
        deleted."""
        remove_stale_temps(self.root, [self.JOURNAL])  # killed while writing it: no crop yet
        try:
            noted = [int(f) for f in json.loads((self.root / self.JOURNAL).read_text())]
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, TypeError):
            noted = []  # written by atomic replace, so never half a journal; unreadable: keep crops
        kept = stored(noted)
        deleted = 0
        for face_id in noted:
            if face_id in kept:
                continue
            deleted += self.delete(face_id)
            for stale in self.path(face_id).parent.glob(f".{face_id}{self.SUFFIX}.*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        self.settle()
        return deleted

    def face_ids_on_disk(self) -> set[int]:
        ids: set[int] = set()
        for file in self.root.glob(f"*/*{self.SUFFIX}"):
            with contextlib.suppress(ValueError):
                ids.add(int(file.stem))
        return ids
