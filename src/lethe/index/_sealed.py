"""Index files sealed at rest: chunked AES-256-GCM under a per-file key wrapped by an
:class:`IndexSealer` (the key ring, passed in by the Store: the index layer never sees the master
key), written and read as a stream so a 500 MB index is never held twice in memory.

Format (``LETHESX1``), all integers little-endian::

    header   magic b"LETHESX1" | chunk_size u32 | wrapped_length u16 | wrapped file key
    chunk i  AES-256-GCM(file key, nonce = 4 zero bytes + i as u64 big-endian,
                         aad = sha256(header) + i as u64 + final flag u8) -> ciphertext + 16-byte tag

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last one holds fewer
(possibly none) and is the only one sealed with the final flag set. A fresh random file key is drawn
for every save, so the counter nonces are never reused under one key; the key is wrapped by the
sealer with the header's magic and chunk size as associated data. What this detects: a wrong key
(the wrapped key does not open: :class:`~lethe.errors.SealedDataError`), any altered, dropped,
reordered or appended chunk, and a file cut short (no final chunk): the reader refuses each before
handing the chunk's bytes on. The plaintext inside is the unsealed index format of
:mod:`lethe.index.faiss_index` (FAISS file, source ids, checksummed trailer).
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import BinaryIO, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lethe.errors import SealedDataError, VectorIndexError

MAGIC = b"LETHESX1"
CHUNK_BYTES = 1 << 20
TAG_BYTES = 16
_HEAD = struct.Struct("<8sIH")
_AAD = struct.Struct("<32sQB")


@runtime_checkable
class IndexSealer(Protocol):
    """Wraps and unwraps the random key of one index file (the key ring does it under the
    catalog-wide key; see :mod:`lethe.keyring`)."""

    def wrap_index_key(self, key: bytes, aad: bytes) -> bytes: ...

    def unwrap_index_key(self, wrapped: bytes, aad: bytes) -> bytes:
        """The key, or :class:`~lethe.errors.SealedDataError` when ``wrapped`` does not open."""
        ...


class ProcessKeySealer:
    """A sealer whose key lives only in this process's memory: an index opened without the key ring
    (benchmarks, tests of the index alone) still never writes a template in clear; its files can be
    read back by this process only."""

    _key = AESGCM.generate_key(bit_length=256)

    def wrap_index_key(self, key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self._key).encrypt(nonce, key, aad)

    def unwrap_index_key(self, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return AESGCM(self._key).decrypt(wrapped[:12], wrapped[12:], aad)
        except InvalidTag:
            raise SealedDataError("the index file key does not open with this process's key") from None


def _nonce(i: int) -> bytes:
    return b"\0\0\0\0" + i.to_bytes(8, "big")


def _wrap_aad(chunk_size: int) -> bytes:
    return b"lethe-index-file:" + MAGIC + chunk_size.to_bytes(4, "little")


def is_sealed(path_head: bytes) -> bool:
    return path_head[:8] == MAGIC


class SealedWriter:
    """A file-like ``write`` that seals what it is given, one chunk at a time; :meth:`finish`
    writes the final chunk (without it the file is refused as cut short)."""

    def __init__(self, handle: BinaryIO, sealer: IndexSealer, chunk_size: int = CHUNK_BYTES) -> None:
        key = AESGCM.generate_key(bit_length=256)
        wrapped = sealer.wrap_index_key(key, _wrap_aad(chunk_size))
        header = _HEAD.pack(MAGIC, chunk_size, len(wrapped)) + wrapped
        handle.write(header)
        self._handle, self._aead, self._size = handle, AESGCM(key), chunk_size
        self._header_digest = hashlib.sha256(header).digest()
        self._buffer = bytearray()
        self._count = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._size:
            self._seal(bytes(self._buffer[: self._size]), final=False)
            del self._buffer[: self._size]

    def finish(self) -> None:
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()

    def _seal(self, chunk: bytes, *, final: bool) -> None:
        aad = _AAD.pack(self._header_digest, self._count, int(final))
        self._handle.write(self._aead.encrypt(_nonce(self._count), chunk, aad))
        self._count += 1


class SealedReader:
    """Reads the plaintext of a sealed file, authenticating each chunk before returning any of its
    bytes. :meth:`read` returns exactly ``n`` bytes unless the plaintext ends first."""

    def __init__(self, handle: BinaryIO, sealer: IndexSealer, name: str) -> None:
        self._name = name
        head = handle.read(_HEAD.size)
        if len(head) != _HEAD.size or head[:8] != MAGIC:
            raise VectorIndexError(f"vector index {name} is unreadable: not a sealed index file")
        _, chunk_size, wrapped_length = _HEAD.unpack(head)
        wrapped = handle.read(wrapped_length)
        if chunk_size < 1 or chunk_size > 1 << 30 or len(wrapped) != wrapped_length:
            raise VectorIndexError(f"vector index {name} is corrupt (bad header)")
        try:
            key = sealer.unwrap_index_key(wrapped, _wrap_aad(chunk_size))
        except SealedDataError:
            raise SealedDataError(
                f"vector index {name} does not open with this data folder's key: it was sealed under "
                "another master key (copied from another installation?) or its header was altered"
            ) from None
        self._handle, self._aead, self._size = handle, AESGCM(key), chunk_size
        self._header_digest = hashlib.sha256(head + wrapped).digest()
        self._count = 0
        self._plain = b""
        self._at = 0
        self._ended = False

    def read(self, n: int) -> bytes:
        parts: list[bytes] = []
        while n > 0:
            if self._at >= len(self._plain):
                if self._ended:
                    break
                self._next_chunk()
                continue
            part = self._plain[self._at : self._at + n]
            self._at += len(part)
            n -= len(part)
            parts.append(part)
        return b"".join(parts)

    def at_end(self) -> bool:
        """Whether every byte was read and the final chunk was seen (nothing follows it)."""
        while self._at >= len(self._plain) and not self._ended:
            self._next_chunk()
        return self._ended and self._at >= len(self._plain)

    def _next_chunk(self) -> None:
        blob = self._handle.read(self._size + TAG_BYTES)
        final = len(blob) < self._size + TAG_BYTES
        if final and self._handle.read(1):
            raise VectorIndexError(f"vector index {self._name} is corrupt (short chunk)")
        try:
            self._plain = self._aead.decrypt(
                _nonce(self._count), blob, _AAD.pack(self._header_digest, self._count, int(final))
            )
        except InvalidTag:
            what = "cut short" if not final or not blob else "altered"
            raise VectorIndexError(
                f"vector index {self._name} is corrupt (chunk {self._count} failed authentication: "
                f"the file was {what})"
            ) from None
        self._at, self._count, self._ended = 0, self._count + 1, final
