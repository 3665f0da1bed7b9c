"""The one exception tree of Lethe.

::

    LetheError
    ├── ConfigError            bad or missing settings
    ├── InputError             the caller's input cannot be used
    │   ├── ImageError         a file is not a usable image (per-file, ingest goes on)
    │   │   └── ImageTooLargeError   pixel bomb / over the configured pixel limit
    │   ├── ManifestError      a manifest row or file cannot be read
    │   └── NoFaceError        a probe photo holds no detectable face
    ├── ModelError             a model file is missing, corrupt or fails to load
    ├── VectorIndexError       the vector index cannot be read, written or queried
    ├── CatalogError           the catalog database refused an operation
    │   ├── NotFoundError      a named thing (source, face, ...) does not exist
    │   ├── ConflictError      a thing already exists, or is already in that state
    │   └── SealedDataError    an encrypted blob fails authentication (altered, moved, wrong key)
    ├── DeliveryError          a message to a requester could not be sent (recorded, retried)
    └── PrivacyError           an action would break a privacy rule
        ├── LawfulBasisError   a source lacks a valid lawful basis / is restricted
        └── KeyShreddedError   the data's source key was shredded: it can never be read again

HTTP status codes live only in ``lethe.api`` and ``lethe.http``; exit codes only in ``lethe.cli``.
Third-party exceptions are mapped at the boundary with ``raise ... from exc``. Where a library
would wrap our error in its own, a private subclass of a class above marks it to be left alone
(``lethe.catalog.tables._NaiveDatetimeError``, a :class:`CatalogError` SQLAlchemy does not wrap);
catch the classes drawn here.
"""

from __future__ import annotations


class LetheError(Exception):
    """Root of every error Lethe raises on purpose."""


class ConfigError(LetheError):
    """Bad or missing settings."""


class InputError(LetheError):
    """The caller's input cannot be used."""


class ImageError(InputError):
    """A file is not a usable image."""


class ImageTooLargeError(ImageError):
    """The image is over the configured pixel limit (a decompression bomb or simply too big)."""


class ManifestError(InputError):
    """A manifest cannot be read."""


class NoFaceError(InputError):
    """A probe photo holds no detectable face."""


class ModelError(LetheError):
    """A model file is missing, corrupt or fails to load."""


class VectorIndexError(LetheError):
    """The vector index cannot be read, written or queried."""


class CatalogError(LetheError):
    """The catalog database refused an operation."""


class NotFoundError(CatalogError):
    """A named thing does not exist."""


class ConflictError(CatalogError):
    """A thing already exists, or is already in that state (a user already disabled, an ingest job
    already running)."""


class SealedDataError(CatalogError):
    """An encrypted blob fails authentication: altered, copied onto another record, or opened with
    another key."""


class DeliveryError(LetheError):
    """A message to a requester could not be sent; the message is recorded as failed and retried."""


class PrivacyError(LetheError):
    """An action would break a privacy rule."""


class LawfulBasisError(PrivacyError):
    """A source lacks a valid lawful basis, or is restricted."""


class KeyShreddedError(PrivacyError):
    """The data's source key was shredded (crypto-erasure): it can never be read again."""
