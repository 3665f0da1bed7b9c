"""Templates at rest: AES-256-GCM with one data key per source, wrapped by a master key.

Keys
    *Master key*: 32 random bytes in ``keys/master.key`` of the data folder (or
    ``LETHE_MASTER_KEY_FILE``), created on first use with mode 0600 in a 0700 folder. Lethe refuses
    to start when the file has the wrong size or any group/other permission bit, or when it is
    missing while the catalog still holds wrapped keys (a fresh key would silently orphan them).

    *Data keys*: 32 random bytes per source, stored in ``source_key`` wrapped by the master key
    (AES-GCM, AAD ``b"lethe-source-key:" + id``), created the first time a source seals something and
    cached in memory. Row 0 (no source has id 0) is the catalog-wide key behind :meth:`KeyRing.seal_master`
    (requester photos, contact addresses, objection templates): because it is a wrapped data key like
    the others, rotating the master key re-wraps 32-byte keys and never re-encrypts data.

*Index file keys*: every save of the FAISS index file draws a fresh random key (see
    :mod:`lethe.index._sealed`) and has it wrapped here under the catalog-wide key, with AAD
    ``b"lethe-master:lethe-index-key:" + the file's format``. The catalog-wide key rather than a key
    of its own: the index holds every source's templates, it must outlive any one source's
    shredding, and a master-key rotation re-wraps it with the others (the index file is never
    re-encrypted).

*Log key*: a data key like a source's, in row ``-1`` (no source has a negative id), behind
    :meth:`KeyRing.seal_log`: it seals the probe photo of a search that matched, kept for the log
    retention (EU AI Act Art. 12(3)(c), :mod:`lethe.privacy.gate.search_log`) and then deleted. A key
    of its own so that a regulator's copy of the search log never needs the key of requests or sources.

*Audit signing key*: an Ed25519 key derived from the catalog-wide data key (HKDF-SHA256, info
    ``b"lethe-audit-checkpoint-ed25519"``) signs the audit chain's checkpoints (see
    :mod:`lethe.catalog.audit_log`). Asymmetric, so that a compliance pack is verifiable with the
    public key alone, by someone who holds no secret and could not forge a checkpoint; derived, so
    that it needs no storage of its own and survives master-key rotations unchanged.

*Document signing key*: a second Ed25519 key derived the same way (info
    ``b"lethe-document-ed25519"``) signs the documents Lethe hands out: the technical file, erasure
    receipts, access copies (:mod:`lethe.privacy.signatures`). A key of its own rather than the
    audit key under another prefix: its public half is published to anyone (the portal,
    ``GET /api/signing-key``) and each key serves one use only, so no document signature can ever
    be presented as an audit checkpoint whatever a message's prefix.

Sealed blob
    ``0x01`` (format version) + 12-byte random nonce + ciphertext with its 16-byte tag. The AAD binds
    a blob to what it is: a template to its source, photo hash and face id; a crop to its source and
    face id. A blob copied onto another record, altered, or opened with another key fails with
    :class:`~lethe.errors.SealedDataError`; a blob whose source key was shredded fails with
    :class:`~lethe.errors.KeyShreddedError`.

Shredding
    :meth:`KeyRing.shred` deletes the source's key row (SQLite runs with ``secure_delete``, and the
    write-ahead log is checkpointed and truncated) and forgets the cached key: every template and
    crop of the source becomes noise. Other processes that already hold the key in memory keep it
    until they restart.

Rotation (:meth:`KeyRing.rotate_master`, ``lethe keys rotate``)
    1. the new key is written to ``master.key.new`` (0600, fsynced);
    2. every wrapped key is re-wrapped with it in one transaction, committed durably
       (``synchronous=FULL`` on SQLite);
    3. ``master.key.new`` atomically replaces ``master.key`` (the old key is gone from then on).

    A crash before step 2 commits leaves ``master.key`` valid and a stale ``.new``; a crash after it
    leaves ``.new`` as the only key that opens the catalog. On the next start the key ring tries both
    against the catalog and finishes (or discards) the rotation, so there is never a moment where no
    file opens the catalog. Old backups of ``master.key`` stop working after a rotation: this is what
    makes shredded keys in old catalog backups useless too.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lethe.catalog.keys import KeyRows
from lethe.errors import ConfigError, KeyShreddedError, PrivacyError, SealedDataError
from lethe.storage import atomic_write, fsync_dir, private_dir

if TYPE_CHECKING:
    from lethe.catalog.repository import Catalog

VERSION = 0x01
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES
MASTER_FILE = "master.key"
#: The catalog-wide data key (no source has id 0): what :meth:`KeyRing.seal_master` uses.
CATALOG_KEY_ID = 0

#: The log key's row (:meth:`KeyRing.seal_log`): no source has a negative id.
LOG_KEY_ID = -1

_VERSION_BYTE = bytes([VERSION])

#: HKDF ``info`` of the two signing keys: one key per use, so that nothing signed as a document can
#: ever stand for an audit checkpoint, nor the other way round.
_AUDIT_KEY_INFO = b"lethe-audit-checkpoint-ed25519"
_DOCUMENT_KEY_INFO = b"lethe-document-ed25519"


def template_aad(source_id: int, image_sha256: str, face_id: int) -> bytes:
    return f"lethe-face:{source_id}:{image_sha256}:{face_id}".encode()


def crop_aad(source_id: int, face_id: int) -> bytes:
    return f"lethe-crop:{source_id}:{face_id}".encode()


def _wrap_aad(key_id: int) -> bytes:
    return b"lethe-source-key:" + str(key_id).encode()


def _master_aad(aad: bytes) -> bytes:
    return b"lethe-master:" + aad


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return _VERSION_BYTE + nonce + aead.encrypt(nonce, plaintext, aad)


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check_blob(blob: bytes, what: str) -> None:
    if len(blob) < OVERHEAD or blob[0] != VERSION:
        raise SealedDataError(
            f"{what} is not a sealed blob (format version {blob[:1].hex() or 'missing'}); "
            "it was altered or written by a Lethe without encryption at rest"
        )


def _read_key_file(path: Path) -> bytes:
    """Read a 32-byte key file, refusing one that others may read or that has the wrong size."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read master key {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"master key {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"master key {path} has mode {mode:04o}: group or others may use it; "
            f"run `chmod 600 {path}` (and check who read it)"
        )
    if info.st_size != KEY_BYTES:
        raise ConfigError(f"master key {path} holds {info.st_size} bytes, not {KEY_BYTES}: wrong file?")
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read master key {path}: {exc.strerror}") from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(f"master key {path} changed while being read")
    return key


def _stamp(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns, info.st_size


class KeyRing:
    """The master key and the per-source data keys of one catalog."""

    def __init__(self, keys_dir: Path, catalog: Catalog, *, master_key_file: Path | None = None) -> None:
        self.master_path = master_key_file if master_key_file is not None else keys_dir / MASTER_FILE
        self._catalog = catalog
        self._rows = KeyRows(catalog)
        self._lock = threading.RLock()
        self._keys: dict[int, AESGCM] = {}
        folder = self.master_path.parent
        if master_key_file is None:
            private_dir(folder)
        elif not folder.is_dir():
            raise ConfigError(f"the folder of LETHE_MASTER_KEY_FILE does not exist: {folder}")
        if stat.S_IMODE(folder.stat().st_mode) & 0o022:
            raise ConfigError(f"key folder {folder} is writable by group or others: run `chmod 700 {folder}`")
        self._master, self._stamp = self._open_master()
        try:
            self._catalog_key = self._data_key(CATALOG_KEY_ID, create=True)
        except SealedDataError as exc:
            raise ConfigError(
                f"master key {self.master_path} does not open this catalog's keys: a wrong file, "
                "or a key from before a rotation"
            ) from exc

    @property
    def staged_path(self) -> Path:
        """Where a rotation stages the new master key until the catalog is re-wrapped."""
        return self.master_path.with_name(self.master_path.name + ".new")

    # -- sealing ---------------------------------------------------------------------------------

    def ensure(self, source_id: int) -> None:
        """Load or create the source's data key now. Call it before opening a write transaction
        that seals for a new source: on SQLite, creating the key inside one would wait on it."""
        self._data_key(source_id, create=True)

    def seal(self, source_id: int, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt under the source's data key (created on first use; see :meth:`ensure`)."""
        return _seal(self._data_key(source_id, create=True), plaintext, aad)

    def open(self, source_id: int, blob: bytes, aad: bytes) -> bytes:
        _check_blob(blob, f"sealed data of source {source_id}")
        aead = self._data_key(source_id, create=False)
        try:
            return aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
        except InvalidTag:
            raise SealedDataError(
                f"sealed data of source {source_id} failed authentication: it was altered, copied "
                "from another record, or sealed under another key"
            ) from None

    def seal_master(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt data that belongs to no source (requests, objections) under the catalog-wide key."""
        return _seal(self._catalog_key, plaintext, _master_aad(aad))

    def open_master(self, blob: bytes, aad: bytes) -> bytes:
        _check_blob(blob, "catalog-sealed data")
        try:
            return self._catalog_key.decrypt(
                blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], _master_aad(aad)
            )
        except InvalidTag:
            raise SealedDataError(
                "catalog-sealed data failed authentication: it was altered or copied from another record"
            ) from None

    def seal_log(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt a search's probe under the log key (created on first use)."""
        return self.seal(LOG_KEY_ID, plaintext, b"lethe-log:" + aad)

    def open_log(self, blob: bytes, aad: bytes) -> bytes:
        return self.open(LOG_KEY_ID, blob, b"lethe-log:" + aad)

    # The vector index file's key (lethe.index.IndexSealer).

    def wrap_index_key(self, key: bytes, aad: bytes) -> bytes:
        return self.seal_master(key, b"lethe-index-key:" + aad)

    def unwrap_index_key(self, wrapped: bytes, aad: bytes) -> bytes:
        return self.open_master(wrapped, b"lethe-index-key:" + aad)

    # The audit chain's checkpoints (lethe.catalog.audit_log) and the signed documents
    # (lethe.privacy.signatures): two Ed25519 keys derived from the catalog-wide key.

    def _signing_key(self, info: bytes) -> Ed25519PrivateKey:
        wrapped = self._rows.wrapped(CATALOG_KEY_ID)
        if wrapped is None:
            raise ConfigError("the catalog-wide key is missing: the signing keys cannot be derived")
        seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
            self._unwrap(CATALOG_KEY_ID, wrapped)
        )
        return Ed25519PrivateKey.from_private_bytes(seed)

    def _audit_key(self) -> Ed25519PrivateKey:
        return self._signing_key(_AUDIT_KEY_INFO)

    def sign_audit(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` under the audit signing key."""
        return self._audit_key().sign(message)

    def audit_public_key(self) -> bytes:
        """The audit signing key's public half (32 raw bytes)."""
        return _raw_public(self._audit_key())

    def sign_document(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message`` under the document signing key (never the audit key)."""
        return self._signing_key(_DOCUMENT_KEY_INFO).sign(message)

    def document_public_key(self) -> bytes:
        """The document signing key's public half (32 raw bytes)."""
        return _raw_public(self._signing_key(_DOCUMENT_KEY_INFO))

    # Templates and crops: the record formats live here so that nobody builds an AAD by hand.

    def seal_template(self, source_id: int, image_sha256: str, face_id: int, vector: bytes) -> bytes:
        return self.seal(source_id, vector, template_aad(source_id, image_sha256, face_id))

    def open_template(self, source_id: int, image_sha256: str, face_id: int, blob: bytes) -> bytes:
        return self.open(source_id, blob, template_aad(source_id, image_sha256, face_id))

    def seal_crop(self, source_id: int, face_id: int, jpeg: bytes) -> bytes:
        return self.seal(source_id, jpeg, crop_aad(source_id, face_id))

    def open_crop(self, source_id: int, face_id: int, blob: bytes) -> bytes:
        return self.open(source_id, blob, crop_aad(source_id, face_id))

    # -- shredding and rotation ------------------------------------------------------------------

    def shred(self, source_id: int) -> bool:
        """Destroy the source's data key: its templates and crops can never be opened again.

        Returns whether a key existed. The caller deletes (or has deleted) the rows and files."""
        if source_id == CATALOG_KEY_ID:
            raise PrivacyError("the catalog-wide key cannot be shredded (it protects open requests)")
        with self._lock:
            existed = self._rows.delete(source_id)
            self._keys.pop(source_id, None)
            self._checkpoint()
        return existed

    def rotate_master(self) -> int:
        """Replace the master key and re-wrap every data key with it; returns the keys re-wrapped.

        Run it with no other writer (the engine holds its write lock). See the module docstring for
        the crash behaviour."""
        with self._lock:
            self._reload_master_if_changed()
            new_master = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
            atomic_write(self.staged_path, new_master)
            try:
                count = self._rewrap_all(AESGCM(self._master), AESGCM(new_master))
            except BaseException:
                # Keep whichever file opens the catalog now (the commit may or may not have happened).
                with contextlib.suppress(Exception):
                    self._finish_rotation()
                    self._reload_master_if_changed()
                raise
            os.replace(self.staged_path, self.master_path)
            fsync_dir(self.master_path.parent)
            self._master, self._stamp = new_master, _stamp(self.master_path)
            self._checkpoint()
        return count

    def _rewrap_all(self, old: AESGCM, new: AESGCM) -> int:
        """Re-wrap every data key in one transaction, committed durably before the key file moves."""

        def rewrap(key_id: int, wrapped: bytes) -> bytes:
            return _seal(new, self._unwrap_with(old, key_id, wrapped), _wrap_aad(key_id))

        return self._rows.rewrap_all(rewrap)

    # -- internals -------------------------------------------------------------------------------

    def _open_master(self) -> tuple[bytes, tuple[int, int, int]]:
        path, staged = self.master_path, self.staged_path
        if staged.exists():
            self._finish_rotation()
        if not path.exists():
            wrapped = self._wrapped_count()
            if wrapped:
                raise ConfigError(
                    f"master key {path} is missing but the catalog holds {wrapped} wrapped key(s): "
                    "restore the file from its backup (without it no template or crop can be read)"
                )
            self._create_master()
        key = _read_key_file(path)
        return key, _stamp(path)

    def _create_master(self) -> None:
        """Write a fresh key so that the file appears complete or not at all (and never overwrites)."""
        folder = self.master_path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.master_path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(AESGCM.generate_key(bit_length=KEY_BYTES * 8))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
                os.link(tmp, self.master_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        fsync_dir(folder)

    def _finish_rotation(self) -> None:
        """A rotation was interrupted: keep whichever key file opens the catalog."""
        path, staged = self.master_path, self.staged_path
        probe = self._rows.wrapped(CATALOG_KEY_ID)
        if probe is None:  # no wrapped key at all: either file will do
            if path.exists():
                staged.unlink()
            else:
                os.replace(staged, path)
        elif path.exists() and self._opens(_read_key_file(path), probe):
            staged.unlink()  # the re-wrap never committed
        elif self._opens(_read_key_file(staged), probe):
            os.replace(staged, path)  # it committed: finish the swap
        else:
            raise ConfigError(f"neither {path} nor {staged} opens the catalog's keys: restore the master key")
        fsync_dir(path.parent)

    @staticmethod
    def _opens(master: bytes, wrapped: bytes) -> bool:
        try:
            KeyRing._unwrap_with(AESGCM(master), CATALOG_KEY_ID, wrapped)
        except SealedDataError:
            return False
        return True

    def _wrapped_count(self) -> int:
        return self._rows.count()

    def _reload_master_if_changed(self) -> bool:
        """Another process may have rotated the key: pick up the new file."""
        try:
            changed = _stamp(self.master_path) != self._stamp
        except OSError:
            return False
        if changed:
            self._master, self._stamp = _read_key_file(self.master_path), _stamp(self.master_path)
        return changed

    @staticmethod
    def _unwrap_with(master: AESGCM, key_id: int, wrapped: bytes) -> bytes:
        _check_blob(wrapped, f"the wrapped key of source {key_id}")
        try:
            key = master.decrypt(wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :], _wrap_aad(key_id))
        except InvalidTag:
            raise SealedDataError(
                f"the master key does not open the key of source {key_id}: wrong master.key, "
                "or the key row was altered"
            ) from None
        if len(key) != KEY_BYTES:
            raise SealedDataError(f"the key of source {key_id} has a wrong length")
        return key

    def _unwrap(self, key_id: int, wrapped: bytes) -> bytes:
        try:
            return self._unwrap_with(AESGCM(self._master), key_id, wrapped)
        except SealedDataError:
            if not self._reload_master_if_changed():
                raise
            return self._unwrap_with(AESGCM(self._master), key_id, wrapped)

    def _data_key(self, key_id: int, *, create: bool) -> AESGCM:
        aead = self._keys.get(key_id)
        if aead is not None:
            return aead
        with self._lock:
            aead = self._keys.get(key_id)
            if aead is not None:
                return aead
            wrapped = self._rows.wrapped(key_id)
            if wrapped is not None:
                key = self._unwrap(key_id, wrapped)
            elif create:
                key = self._create_data_key(key_id)
            else:
                raise KeyShreddedError(
                    f"the key of source {key_id} was shredded (or never made): its templates and crops "
                    "cannot be read"
                )
            aead = AESGCM(key)
            self._keys[key_id] = aead
            return aead

    def _create_data_key(self, key_id: int) -> bytes:
        if key_id != CATALOG_KEY_ID:
            sealed = self._rows.faces_of(key_id)
            if sealed:
                raise KeyShreddedError(
                    f"the key of source {key_id} was shredded but {sealed} of its faces remain; "
                    "erase them before storing anything new for this source"
                )
        self._reload_master_if_changed()
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        theirs = self._rows.create(key_id, _seal(AESGCM(self._master), key, _wrap_aad(key_id)))
        if theirs is not None:  # another process created it first: use theirs
            return self._unwrap(key_id, theirs)
        return key

    def _checkpoint(self) -> None:
        """Fold the write-ahead log into the database and truncate it, so no copy of an overwritten
        key page lingers there."""
        self._catalog.checkpoint()
