"""What Lethe keeps encrypted and what it does not, read from the running installation: the honest
answer to GDPR Art. 34(3)(a) ("the personal data affected ... unintelligible to any person who is
not authorised to access it, such as encryption"), never a bare "yes".

- **Encrypted** (:mod:`lethe.keyring`): face templates and crops under a data key per source
  (AES-256-GCM), the FAISS index file under a key wrapped by the catalog-wide key, consent
  enrolments and contacts under their source's key, requesters' photos and contacts and objection
  templates under the catalog-wide key, kept search probes under the log key. Every data key is
  wrapped by the **master key**: the protection is only as good as where that file is.
- **Where the master key is** decides the answer: in the data folder (a copy or theft of the folder
  carries the key), outside it on the same file system (a stolen or copied disk carries both), or
  on another file system (only if that one was not reached too).
- **Never encrypted by Lethe**: the catalog's metadata (paths and URIs of photos, source links,
  captions, dates, boxes, landmarks, hashes), the audit log with the searches' stated purposes, the
  photos themselves where they were ingested from, access exports and contact messages still on
  disk, templates in a Milvus index, and anything inside the running service's memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.engine import make_url

from lethe.privacy.access import exports_root
from lethe.privacy.gate.probes import outbox

if TYPE_CHECKING:
    from lethe.store import Store

Placement = Literal["data_folder", "same_filesystem", "separate_filesystem"]

QUESTION = (
    "Art. 34(3)(a): were the personal data affected unintelligible to any person not authorised to "
    "access them, such as by encryption?"
)


@dataclass(frozen=True, slots=True)
class Holding:
    """One kind of data, where it is, and how it is protected (or why it is not)."""

    what: str
    where: str
    how: str

    def as_dict(self) -> dict[str, str]:
        return {"what": self.what, "where": self.where, "how": self.how}


@dataclass(frozen=True, slots=True)
class EncryptionState:
    master_key: str
    placement: Placement
    protected: tuple[Holding, ...]
    not_protected: tuple[Holding, ...]
    answer: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": QUESTION,
            "answer": self.answer,
            "master_key": self.master_key,
            "master_key_placement": self.placement,
            "encrypted": [h.as_dict() for h in self.protected],
            "not_encrypted": [h.as_dict() for h in self.not_protected],
        }


def _device(path: Path) -> int | None:
    """The file system (device number) ``path`` or its nearest existing parent is on."""
    for candidate in (path, *path.parents):
        try:
            return os.stat(candidate).st_dev
        except OSError:
            continue
    return None


def placement(data_dir: Path, key: Path) -> Placement:
    """Where the master key ``key`` is relative to the data folder."""
    data, key = data_dir.resolve(), key.resolve()
    if key.is_relative_to(data):
        return "data_folder"
    if _device(key) == _device(data):
        return "same_filesystem"
    return "separate_filesystem"


def _count(folder: Path, pattern: str) -> int:
    try:
        return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0
    except OSError:
        return 0


def _catalog_place(store: Store) -> str:
    url = make_url(store.settings.resolved_catalog_url)
    if url.get_backend_name() == "sqlite":
        return f"the catalog file {url.database}"
    return f"the catalog on a {url.get_backend_name()} server (its disks' encryption is outside Lethe)"


def _answer(kind: Placement, key: Path, data_dir: Path) -> str:
    if kind == "data_folder":
        return (
            f"No, not against whoever obtained the data folder ({data_dir}), a copy, a backup or the "
            f"disk: templates and crops are encrypted (AES-256-GCM, a key per source), but the master "
            f"key that opens them ({key}) is inside that same folder, so the folder carries its own "
            "key. Only a copy of the catalog without the keys/ folder leaves them unintelligible."
        )
    if kind == "same_filesystem":
        return (
            f"Only against a copy of the data folder alone: templates and crops are encrypted "
            f"(AES-256-GCM, a key per source) and the master key ({key}) is outside the data folder "
            f"({data_dir}), but on the same file system: a stolen disk, or a backup of the whole disk, "
            "gives both the data and the key, and then nothing was unintelligible."
        )
    return (
        f"For the templates and crops only, and only if the master key ({key}, on another file "
        f"system than the data folder {data_dir}) was not reached too: they are encrypted "
        "(AES-256-GCM) under per-source keys that only the master key unwraps. Confirm that the "
        "key's disk, its backups and the running service were not reached before relying on it."
    )


def encryption_state(store: Store) -> EncryptionState:
    """The installation's encryption at rest as it is now (see the module)."""
    settings = store.settings
    data_dir = settings.data_dir.resolve()
    key = store.keyring.master_path.resolve()
    kind = placement(data_dir, key)
    catalog = _catalog_place(store)
    per_source = "AES-256-GCM under the source's data key, wrapped by the master key"
    protected = [
        Holding("face templates (biometric data)", catalog, per_source),
        Holding("face crops (small face pictures)", str(data_dir / "crops"), per_source),
        Holding("consent enrolment templates and contact addresses", catalog, per_source),
        Holding(
            "requesters' photos and contact addresses, objection templates",
            catalog,
            "AES-256-GCM under the catalog-wide data key, wrapped by the master key",
        ),
        Holding(
            "probe photos of searches that matched (kept for the log retention)",
            catalog,
            "AES-256-GCM under the log key, wrapped by the master key",
        ),
    ]
    unprotected = [
        Holding(
            "photo metadata: paths and URIs, source page links, captions, capture and ingest dates, "
            "sizes, content hashes; face boxes, landmarks and quality; source declarations; the dates "
            "of requests and consents",
            catalog,
            "not encrypted by Lethe (encrypt the disk or the database server's volumes)",
        ),
        Holding(
            "the audit log, with each search's stated purpose (which may name someone)",
            catalog,
            "not encrypted; chained and signed, which proves changes but does not hide anything",
        ),
        Holding(
            "the photos themselves",
            "at their source: the paths and URIs the catalog holds",
            "Lethe keeps no photo bytes and does not encrypt the photos at their source",
        ),
        Holding(
            "decrypted face crops written by `lethe search --crops DIR`",
            "wherever the operator wrote them, not tracked",
            "decrypted copies, mode 0600",
        ),
        Holding(
            "whatever the running service holds in memory (keys, opened templates, search results)",
            "the server's memory",
            "encryption at rest does not protect against an intruder inside the running service or "
            "an account that can search",
        ),
    ]
    if settings.index == "faiss":
        protected.append(
            Holding(
                "the search index (every searchable template)",
                str(data_dir / "index"),
                "AES-256-GCM under a fresh key per save, wrapped by the catalog-wide key",
            )
        )
    else:
        where = settings.milvus_uri or str(data_dir / "index")
        if "://" in where:
            where = "the Milvus server named by LETHE_MILVUS_URI"
        unprotected.append(
            Holding(
                "the search index (every searchable template)",
                f"Milvus: {where}",
                "templates in clear in Milvus's files unless its volumes are encrypted below it",
            )
        )
    left = (
        (exports_root(store), "*/", "access export folder(s) not yet deleted (decrypted crops, copies "
         "of photos)", "decrypted for the requester; delete each once delivered"),
        (outbox(store), "*.json", "contact confirmation message(s) waiting for the mailer",
         "a requester's address in clear, for the operator's mailer"),
    )  # fmt: skip
    for folder, pattern, what, why in left:
        count = _count(folder, pattern)
        if count:
            unprotected.append(Holding(f"{count} {what}", str(folder), why))
    return EncryptionState(
        master_key=str(key),
        placement=kind,
        protected=tuple(protected),
        not_protected=tuple(unprotected),
        answer=_answer(kind, key, data_dir),
    )
