"""Tables of the service's users and API tokens (migrations 0004, 0011, 0012). See :mod:`lethe.users`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lethe.catalog.tables import Base, BigId, UTCDateTime


class UserRow(Base):
    """A person who uses the service. ``roles`` is a comma-separated list; the password is stored
    only as a salted scrypt hash. ``session_generation`` is carried by every login session and raised
    to end them all (logout, password reset, disable)."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = {"sqlite_autoincrement": True}


class ApiTokenRow(Base):
    """An API token of a user, stored only as the sha256 of the token (which is shown once). It is
    refused once revoked or past ``expires_at``."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_autoincrement": True}
