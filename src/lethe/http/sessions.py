"""Login sessions for the web pages: a signed cookie, and a CSRF token bound to it.

The session cookie (``lethe_session``: HttpOnly, SameSite=Lax, ``Secure`` with
``LETHE_COOKIE_SECURE``) holds the user id and a random CSRF token, signed with a 32-byte key
(``keys/session.key`` in the data folder, or ``LETHE_SESSION_SECRET_FILE``) and valid for
``LETHE_SESSION_MAX_AGE_S``. The same CSRF token is also set in the readable cookie ``lethe_csrf``
(double submit): a cookie-authenticated POST/PUT/PATCH/DELETE must send it back in the
``X-CSRF-Token`` header or a ``csrf_token`` form field, which a page of another site cannot read.
After a login (or a logout) the browser goes back only to a path of this site (:func:`safe_next`).

Sessions are revocable: the cookie also carries the user's *session generation* at login, which the
catalog keeps per user and every request compares (:attr:`lethe.users.User.session_generation`).
Logging out, a password reset and disabling the user raise it, which ends every session of that user
at once, on every device (a signed cookie alone would stay valid until it expires).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

from lethe.config import Settings
from lethe.errors import ConfigError
from lethe.storage import fsync_dir, private_dir

SESSION_COOKIE = "lethe_session"
CSRF_COOKIE = "lethe_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    csrf: str
    generation: int = 0


#: Control characters (C0, DEL, C1) and every kind of white space: a URL parser drops tab and newline
#: (``/\t/evil.example`` becomes ``//evil.example``), so none of them may appear in a target.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\s\\]")


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: no scheme, no host, no ``//``, no backslash, no control character or
    white space (an open redirect otherwise, once a browser has dropped them), or None."""
    if not target or _UNSAFE.search(target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def session_key_path(settings: Settings) -> Path:
    return settings.session_secret_file or settings.data_dir / "keys" / "session.key"


def load_session_key(path: Path) -> bytes:
    """Read the 32-byte key, creating it (mode 0600) when it does not exist."""
    if not path.exists():
        _create_key(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read session key {path}: {exc.strerror}") from exc
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode) or mode & 0o077:
        raise ConfigError(f"session key {path} must be a regular file of mode 0600 (it is {mode:04o})")
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ConfigError(f"session key {path} holds {len(key)} bytes, not {KEY_BYTES}")
    return key


def _create_key(path: Path) -> None:
    folder = private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(folder)


class SessionSigner:
    def __init__(self, key: bytes, *, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="lethe.session")
        self.max_age_s = max_age_s

    def dumps(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user_id, "c": session.csrf, "g": session.generation})

    def loads(self, value: str) -> Session | None:
        """The session in a cookie, or None when it is forged, altered or expired."""
        try:
            data = self._serializer.loads(value, max_age=self.max_age_s)
        except BadSignature:  # includes SignatureExpired
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("u"), int)
            or not isinstance(data.get("c"), str)
            or not isinstance(data.get("g"), int)
        ):
            return None  # a cookie from before sessions were revocable (no "g") is no session
        return Session(user_id=data["u"], csrf=data["c"], generation=data["g"])

    @staticmethod
    def new(user_id: int, generation: int) -> Session:
        return Session(user_id=user_id, csrf=secrets.token_urlsafe(32), generation=generation)
