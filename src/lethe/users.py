"""Users of the service, their roles, passwords and API tokens.

Roles (a user may hold several):

- ``admin``: sources, regulator's orders, retention, keys, users and tokens, metrics;
- ``operator``: ingest and search (every search states its purpose, audited with the user);
- ``dpo``: data-subject requests and their review queue, objections, the audit log, reports;
- ``monitor``: metrics only (a least-privilege token for a Prometheus scraper).

Secrets are never stored: a password is kept as a salted scrypt hash, an API token (random,
``secrets.token_urlsafe(32)``, shown once) as its sha256, which is enough for a 256-bit random value.
Creating users and tokens, revoking tokens, disabling and re-enabling users are audited, with no
secret in the details.

Tokens expire: each has an ``expires_at``, ``LETHE_TOKEN_DAYS`` (90) after its creation unless its
maker asks for another lifetime, at most :data:`~lethe.config.MAX_TOKEN_DAYS` (365); an expired token
is refused like a revoked one. A password reset revokes every token of the user (whoever reset it
suspects the credentials leaked, and a token is one); so does disabling the user, so that
re-enabling them (:meth:`Users.enable`) brings back neither a session nor a token: they log in
again and make new ones.

Tokens are minted only for oneself (:meth:`Users.create_own_token`, behind ``POST
/api/users/{name}/tokens``): an admin cannot make a token for another user and then act, and be
audited, as them (security review, finding 4). The host's ``lethe token create NAME``
(:meth:`Users.create_token`) stays: whoever runs it can read the data folder and its keys anyway.

Login sessions are revocable: each user has a *session generation* that every session cookie carries
and every request compares; :meth:`Users.end_sessions` (logout), :meth:`Users.reset_password` and
:meth:`Users.disable` raise it. A failed login is audited (``login.failed``) with the user's id when
the name exists, else ``unknown`` (never the name typed: it may be a password typed in the wrong
field), and a keyed hash of the client address given by the caller.

The first user: on a data folder whose catalog holds no user at all, the service creates ``admin``
(roles admin, operator, dpo) with a random password when it starts (:func:`first_admin_password`,
called by ``lethe.service.create_app``, hence by ``lethe serve`` and ``uvicorn --factory`` alike); the
password is shown once and only its hash is kept. Shown where: on a terminal, printed; otherwise
(systemd, Docker: stderr goes to a log kept for good) written to :data:`FIRST_PASSWORD_FILE` in the
data folder (mode 0600, :func:`write_first_password`), which is overwritten and deleted at the first
successful login of ``admin`` or when its password is reset (:class:`Users` given the settings).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from lethe.catalog import Catalog
from lethe.catalog.repository import now_utc
from lethe.catalog.user_tables import ApiTokenRow, UserRow
from lethe.config import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, Settings
from lethe.errors import ConflictError, InputError, NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.storage import atomic_write

log = logging.getLogger(__name__)

ROLES = ("admin", "operator", "dpo", "monitor")
FIRST_ADMIN = "admin"
FIRST_ADMIN_ROLES = ("admin", "operator", "dpo")
TOKEN_PREFIX = "lethe_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
#: ``last_used_at`` of a token is written at most this often (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Where the first admin's password waits in the data folder when the service's stderr is no terminal.
FIRST_PASSWORD_FILE = "first-admin-password"

# scrypt cost: n=2**14, r=8 (16 MiB, ~50 ms), the parameters recommended for interactive logins.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    disabled_at: datetime | None
    session_generation: int = 0

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def has_any(self, roles: Iterable[str]) -> bool:
        return any(r in self.roles for r in roles)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "roles": list(self.roles),
            "created_at": self.created_at.isoformat(),
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
        }


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    user_id: int
    user: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime

    @property
    def state(self) -> str:
        """``revoked``, ``expired`` (past ``expires_at``, now) or ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now_utc() else "active"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class PasswordReset:
    """A new password (shown once) and the ids of the user's tokens the reset revoked."""

    password: str
    tokens_revoked: tuple[int, ...]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN
    )
    return _stored_form(salt, digest)


def _stored_form(salt: bytes, digest: bytes) -> str:
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(18)


@functools.cache
def _nobodys_hash() -> str:
    """What a login that names nobody is checked against, so that it costs one scrypt, as a login
    that names a user does. A random salt and digest in the stored form: checking it runs the same
    scrypt as a real hash (same parameters, same length), and no password matches it. Made on first
    use (no scrypt at import, none to make it), then the same for the process's life."""
    return _stored_form(secrets.token_bytes(16), secrets.token_bytes(_SCRYPT_LEN))


def _roles(roles: Iterable[str]) -> tuple[str, ...]:
    wanted = [r.strip().lower() for r in roles if r.strip()]
    unknown = sorted(set(wanted) - set(ROLES))
    if unknown:
        raise InputError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    if not wanted:
        raise InputError(f"a user needs at least one role of {', '.join(ROLES)}")
    return tuple(r for r in ROLES if r in wanted)


def _user(row: UserRow) -> User:
    roles = tuple(filter(None, row.roles.split(",")))
    return User(row.id, row.name, roles, row.created_at, row.disabled_at, row.session_generation or 0)


def _token(row: ApiTokenRow, user: str) -> Token:
    return Token(
        row.id, row.user_id, user, row.label, row.created_at, row.last_used_at, row.revoked_at, row.expires_at
    )


def _lock_out(session: Session, user: UserRow, *, actor: str, action: str, at: datetime) -> tuple[int, ...]:
    """End every session of ``user`` and revoke every token of theirs not revoked yet, audited as
    ``action`` with the revoked ids (in the caller's transaction); returns those ids."""
    user.session_generation = (user.session_generation or 0) + 1
    rows = session.scalars(
        select(ApiTokenRow)
        .where(ApiTokenRow.user_id == user.id, ApiTokenRow.revoked_at.is_(None))
        .order_by(ApiTokenRow.id)
    ).all()
    for row in rows:
        row.revoked_at = at
    revoked = tuple(row.id for row in rows)
    audit.append(
        session,
        actor=actor,
        action=action,
        details={"user_id": user.id, "tokens_revoked": list(revoked)},
        at=at,
    )
    return revoked


def token_lifetime(days: int | None, default: int = DEFAULT_TOKEN_DAYS) -> timedelta:
    """The lifetime of a new token: ``days`` (or ``default``), 1 to :data:`MAX_TOKEN_DAYS`."""
    chosen = default if days is None else days
    if not 1 <= chosen <= MAX_TOKEN_DAYS:
        raise InputError(
            f"a token lives 1 to {MAX_TOKEN_DAYS} days, not {chosen}: make a new one before it expires"
        )
    return timedelta(days=chosen)


class Users:
    """Users and tokens in the catalog. Given the ``settings``, new tokens live ``token_days`` by
    default and the first admin's password file in the data folder is deleted when it is used;
    without, tokens live :data:`~lethe.config.DEFAULT_TOKEN_DAYS` and no file is looked for."""

    def __init__(self, catalog: Catalog, settings: Settings | None = None) -> None:
        self.catalog = catalog
        self.token_days = settings.token_days if settings is not None else DEFAULT_TOKEN_DAYS
        self.first_password_file = first_password_path(settings) if settings is not None else None

    # -- users ---------------------------------------------------------------------------------

    def count(self) -> int:
        with self.catalog.session() as session:
            return int(session.scalar(select(func.count()).select_from(UserRow)) or 0)

    def create(
        self, name: str, roles: Iterable[str], *, actor: str, password: str | None = None
    ) -> tuple[User, str]:
        """Create a user; returns it and its password (generated unless given): show it once."""
        name = name.strip()
        if not NAME_PATTERN.fullmatch(name):
            raise InputError(
                "a user name is 1-64 letters, digits or . _ @ - and starts with a letter or digit"
            )
        chosen = _roles(roles)
        password = new_password() if password is None else password
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InputError(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        at = now_utc()
        row = UserRow(name=name, password_hash=hash_password(password), roles=",".join(chosen), created_at=at)
        try:
            with self.catalog.session() as session, session.begin():
                session.add(row)
                session.flush()
                audit.append(
                    session,
                    actor=actor,
                    action="user.add",
                    details={"user_id": row.id, "user": name, "roles": list(chosen)},
                    at=at,
                )
        except IntegrityError as exc:
            raise ConflictError(f"a user {name!r} already exists") from exc
        return _user(row), password

    def ensure_first_admin(self, *, actor: str = "system") -> str | None:
        """When there is no user at all, create ``admin`` (admin, operator, dpo) and return its
        password (to be shown once); otherwise None."""
        if self.count():
            return None
        try:
            _, password = self.create(FIRST_ADMIN, FIRST_ADMIN_ROLES, actor=actor)
        except ConflictError:  # another process created it first
            return None
        return password

    def list_users(self) -> list[User]:
        with self.catalog.session() as session:
            return [_user(r) for r in session.scalars(select(UserRow).order_by(UserRow.id))]

    def get(self, name: str) -> User:
        with self.catalog.session() as session:
            return _user(self._row(session, name))

    def get_by_id(self, user_id: int) -> User | None:
        with self.catalog.session() as session:
            row = session.get(UserRow, user_id)
            return None if row is None else _user(row)

    def authenticate(self, name: str, password: str) -> User | None:
        """The active user with this name and password, or None (same cost either way)."""
        with self.catalog.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.name == name.strip()))
        ok = check_password(password[:MAX_PASSWORD], row.password_hash if row else _nobodys_hash())
        if row is None or not ok or row.disabled_at is not None:
            return None
        return _user(row)

    def login(self, name: str, password: str, *, client: str) -> User | None:
        """:meth:`authenticate`, and a failure audited (``login.failed``): the user's id when the
        name exists (else ``unknown``: the name typed is never recorded, not even hashed, since it may
        be a password typed in the wrong field), why, and ``client``, a keyed hash of the address."""
        user = self.authenticate(name, password)
        if user is not None:
            if user.name == FIRST_ADMIN:
                self._forget_first_password()
            return user
        self._audit_failed_login(name, client=client)
        return None

    def refuse_login(self, name: str, *, client: str) -> None:
        """Audit a login refused unchecked because its account is in backoff (``login.failed``,
        reason ``backoff``; the same details as any failed login)."""
        self._audit_failed_login(name, client=client, reason="backoff")

    def _audit_failed_login(self, name: str, *, client: str, reason: str | None = None) -> None:
        with self.catalog.session() as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.name == name.strip()))
            who: int | str = "unknown" if row is None else row.id
            if reason is not None:
                why = reason
            elif row is None:
                why = "unknown_user"
            else:
                why = "disabled" if row.disabled_at is not None else "wrong_password"
            audit.append(
                session,
                actor="anonymous",
                action="login.failed",
                details={"user_id": who, "reason": why, "client": client},
                at=now_utc(),
            )

    def end_sessions(self, user_id: int, *, actor: str) -> None:
        """End every login session of the user at once (logout: on every device)."""
        with self.catalog.session() as session, session.begin():
            row = session.get(UserRow, user_id)
            if row is None:
                raise NotFoundError(f"no user {user_id}")
            row.session_generation = (row.session_generation or 0) + 1
            audit.append(
                session, actor=actor, action="user.logout", details={"user_id": row.id}, at=now_utc()
            )

    def reset_password(self, name: str, *, actor: str) -> PasswordReset:
        """A new random password for the user (shown once); the old one stops working, every session
        ends and every token of the user is revoked (one audit entry, ``user.password``, lists them)."""
        password = new_password()
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            row = self._row(session, name)
            row.password_hash = hash_password(password)
            revoked = _lock_out(session, row, actor=actor, action="user.password", at=at)
            first_admin = row.name == FIRST_ADMIN
        if first_admin:
            self._forget_first_password()
        return PasswordReset(password, revoked)

    def disable(self, name: str, *, actor: str) -> User:
        """A disabled user can neither log in nor use any token: every session ends and every token
        is revoked (listed in the ``user.disable`` entry), so that :meth:`enable` revives neither."""
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            row = self._row(session, name)
            if row.disabled_at is not None:
                raise ConflictError(f"user {name!r} is already disabled")
            if actor == f"user:{row.name}":
                raise InputError("you cannot disable yourself")
            row.disabled_at = at
            _lock_out(session, row, actor=actor, action="user.disable", at=at)
            return _user(row)

    def enable(self, name: str, *, actor: str) -> User:
        """Let a disabled user log in again (``user.enable``). Nothing of before comes back: their
        sessions ended when they were disabled (and the generation is raised again here), their
        tokens stay revoked (any a disable of an older version left unrevoked are revoked now,
        listed in the entry); they log in and make new tokens."""
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            row = self._row(session, name)
            if row.disabled_at is None:
                raise ConflictError(f"user {name!r} is not disabled")
            row.disabled_at = None
            _lock_out(session, row, actor=actor, action="user.enable", at=at)
            return _user(row)

    # -- tokens --------------------------------------------------------------------------------

    def create_token(
        self, user: str, *, label: str = "", actor: str, days: int | None = None
    ) -> tuple[Token, str]:
        """A new API token for the user, valid ``days`` (default ``token_days``, at most
        :data:`~lethe.config.MAX_TOKEN_DAYS`); returns it and the secret (shown once, stored
        hashed)."""
        label = label.strip()[:200] or "api"
        lifetime = token_lifetime(days, self.token_days)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            owner = self._row(session, user)
            if owner.disabled_at is not None:
                raise ConflictError(f"user {user!r} is disabled")
            row = ApiTokenRow(
                user_id=owner.id,
                token_hash=hash_token(secret),
                label=label,
                created_at=at,
                expires_at=at + lifetime,
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=actor,
                action="token.create",
                details={"token_id": row.id, "user_id": owner.id, "label": label, "days": lifetime.days},
                at=at,
            )
            return _token(row, owner.name), secret

    def create_own_token(
        self, caller: User, user: str, *, label: str = "", actor: str, days: int | None = None
    ) -> tuple[Token, str]:
        """A token for ``user``, made by ``caller`` through the service: only for oneself. A token
        for anyone else is refused (``PrivacyError``) and the attempt audited (``token.refused``):
        acting with another user's token would be audited in their name. A service account (a
        Prometheus scraper's ``monitor`` user) gets its token from the host (``lethe token create``)
        or by logging in as itself."""
        target = self.get(user)
        if target.id != caller.id:
            with self.catalog.session() as session, session.begin():
                audit.append(
                    session,
                    actor=actor,
                    action="token.refused",
                    details={"user_id": target.id, "reason": "not_own"},
                    at=now_utc(),
                )
            raise PrivacyError(
                f"a token can only be made for yourself, not for {user!r}: "
                "that user logs in and makes their own, or the host runs `lethe token create`"
            )
        return self.create_token(user, label=label, actor=actor, days=days)

    def revoke_token(self, token_id: int, *, actor: str) -> Token:
        with self.catalog.session() as session, session.begin():
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFoundError(f"no token {token_id}")
            if row.revoked_at is None:
                row.revoked_at = now_utc()
                audit.append(
                    session,
                    actor=actor,
                    action="token.revoke",
                    details={"token_id": row.id, "user_id": row.user_id},
                    at=row.revoked_at,
                )
            owner = session.get(UserRow, row.user_id)
            return _token(row, owner.name if owner else "?")

    def tokens(self, user: str | None = None) -> list[Token]:
        with self.catalog.session() as session:
            query = select(ApiTokenRow, UserRow.name).join(UserRow, UserRow.id == ApiTokenRow.user_id)
            if user is not None:
                query = query.where(UserRow.id == self._row(session, user).id)
            return [_token(t, n) for t, n in session.execute(query.order_by(ApiTokenRow.id))]

    def user_for_token(self, secret: str) -> User | None:
        """The active user holding this unrevoked, unexpired token, or None."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        digest = hash_token(secret)
        with self.catalog.session() as session:
            row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest))
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.token_hash, digest):
                return None
            now = now_utc()
            if row.expires_at <= now:
                return None
            owner = session.get(UserRow, row.user_id)
            if owner is None or owner.disabled_at is not None:
                return None
            user = _user(owner)
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
                row.last_used_at = now
                try:
                    session.commit()
                except SQLAlchemyError:  # a busy catalog must not refuse a valid token
                    session.rollback()
            return user

    def _row(self, session: Session, name: str) -> UserRow:
        row = session.scalar(select(UserRow).where(UserRow.name == name.strip()))
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return row

    def _forget_first_password(self) -> None:
        """The first admin's password file, once used or replaced: overwritten, then deleted. A
        failure is logged (never the password) and does not fail the login or the reset."""
        path = self.first_password_file
        if path is None:
            return
        try:
            with path.open("r+b") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(0)
                handle.write(b"\0" * size)
                handle.flush()
                os.fsync(handle.fileno())
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("could not delete the first admin's password file %s: %s", path, exc.strerror)


def first_password_path(settings: Settings) -> Path:
    """The file in the data folder that holds the first admin's password until it is used."""
    return settings.data_dir / FIRST_PASSWORD_FILE


def write_first_password(settings: Settings, password: str) -> Path:
    """Write the first admin's password to :func:`first_password_path` (mode 0600, atomically);
    returns the file's absolute path."""
    path = first_password_path(settings).resolve()
    atomic_write(path, (password + "\n").encode())
    return path


def first_admin_password(settings: Settings) -> str | None:
    """On a data folder whose catalog holds no user at all, create ``admin`` (admin, operator, dpo)
    and return its password, to be shown once; otherwise (or when another process made it first)
    None. Opens the catalog (creating the data folder) for this alone."""
    settings.ensure_data_dir()
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        return Users(catalog).ensure_first_admin(actor="system")
    finally:
        catalog.close()
