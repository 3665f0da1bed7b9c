"""Tables of the disclosure ledger (migration 0019, GDPR Arts. 15(1)(c), 17(2), 19). See
:mod:`lethe.privacy.disclosures` and :mod:`lethe.privacy.recipient_notices`.

Face ids carry no foreign key to ``face``: faces get erased, and the record of whom they were
disclosed to (and whom an erasure was notified to) must outlive them, as ``audit_face`` does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lethe.catalog.tables import Base, BigId, UTCDateTime


class RecipientRow(Base):
    """An organisation or role personal data is disclosed to (never a data subject): its kind
    (``processor``, ``third_party``, ``public_authority``, ``controller``), country and whether that
    is outside the EEA, the safeguard of a transfer there, and an e-mail address for notices,
    sealed under the catalog-wide key (``contact``; empty: notices are sent by hand)."""

    __tablename__ = "recipient"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    outside_eea: Mapped[bool] = mapped_column(Boolean)
    safeguard: Mapped[str | None] = mapped_column(String(500), nullable=True)
    contact: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = {"sqlite_autoincrement": True}


class RecipientTokenRow(Base):
    """An API token bound to a recipient (an integration): every search answered to it is a
    disclosure to that recipient, on the stated ``reason``."""

    __tablename__ = "recipient_token"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_token.id"), primary_key=True, autoincrement=False)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipient.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime())
    bound_by: Mapped[str] = mapped_column(String(200))


class DisclosureRow(Base):
    """One disclosure: to whom, when, by whom, through which channel (``manual``, ``api_token``,
    ``use_export``), on what legal basis or reason (in words), with a reference (the search's
    audit seq, the use's id) and the audit entry that recorded it."""

    __tablename__ = "disclosure"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipient.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    faces: Mapped[int] = mapped_column(Integer)
    audit_seq: Mapped[int] = mapped_column(BigId)

    __table_args__ = {"sqlite_autoincrement": True}


class DisclosureFaceRow(Base):
    """A face a disclosure carried (no foreign key: see the module)."""

    __tablename__ = "disclosure_face"

    disclosure_id: Mapped[int] = mapped_column(BigId, ForeignKey("disclosure.id"), primary_key=True)
    face_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class RecipientNoticeRow(Base):
    """A notice that an erasure, restriction or objection must be passed on: GDPR Art. 19 to one
    recipient (``recipient_id``), or Art. 17(2) to the other controllers of photos the controller
    made public (``article`` ``17(2)``, no recipient). Its ``cause`` (``erasure``, ``restriction``,
    ``objection``), the erasure job or request it comes from and the reference it quotes, the
    ``body`` (no biometric data, no name, no photo) and its SHA-256; its ``state`` (``pending``,
    ``sent``, ``not_required``) with who set it, when, how (``channel``: ``smtp`` or ``hand``) and
    why (``note``: the reason a notice is not required, Art. 19's impossible or disproportionate
    effort)."""

    __tablename__ = "recipient_notice"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    article: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("recipient.id"), nullable=True, index=True)
    cause: Mapped[str] = mapped_column(String(20))
    erasure_job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    request_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    reference: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    faces: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(14), index=True)
    state_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    state_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(10), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        Index("ix_recipient_notice_job", "erasure_job_id"),
        {"sqlite_autoincrement": True},
    )


class RecipientNoticeFaceRow(Base):
    """A face a notice is about (no foreign key: see the module)."""

    __tablename__ = "recipient_notice_face"

    notice_id: Mapped[int] = mapped_column(BigId, ForeignKey("recipient_notice.id"), primary_key=True)
    face_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
