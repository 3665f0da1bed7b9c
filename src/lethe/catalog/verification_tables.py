"""Tables of two-person verification (migration 0017). See :mod:`lethe.privacy.verification`."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lethe.catalog.tables import Base, BigId, UTCDateTime


class UserCompetenceRow(Base):
    """A competence of a user (``verifier``) with the date of the training it rests on (AI literacy,
    EU AI Act Arts. 4 and 26(2)); it lapses ``LETHE_VERIFIER_TRAINING_DAYS`` after that date."""

    __tablename__ = "user_competence"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    competence: Mapped[str] = mapped_column(String(40))
    trained_on: Mapped[date] = mapped_column(Date())
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    granted_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("user_id", "competence", name="uq_user_competence"),
        {"sqlite_autoincrement": True},
    )


class CandidateVerdictRow(Base):
    """One verifier's verdict (``confirm`` or ``reject``) on one candidate identification: the face
    ``face_id`` returned by the search whose audit entry is ``search_seq``. Its note, if any, is the
    erasable text of the audit entry ``audit_seq``."""

    __tablename__ = "candidate_verdict"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    search_seq: Mapped[int] = mapped_column(BigId)
    face_id: Mapped[int] = mapped_column(BigId)
    verifier: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    audit_seq: Mapped[int] = mapped_column(BigId)

    __table_args__ = (
        UniqueConstraint("search_seq", "face_id", "verifier", name="uq_candidate_verdict"),
        Index("ix_candidate_verdict_candidate", "search_seq", "face_id"),
        {"sqlite_autoincrement": True},
    )


class VerificationPolicyRow(Base):
    """One setting of how many distinct verifiers an action on a candidate needs; the newest row is
    in force (none: 2). ``legal_reference`` states the exemption that allows 1."""

    __tablename__ = "verification_policy"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    required: Mapped[int] = mapped_column(Integer)
    legal_reference: Mapped[str | None] = mapped_column(String(500), nullable=True)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())
    set_by: Mapped[str] = mapped_column(String(200))
    audit_seq: Mapped[int] = mapped_column(BigId)

    __table_args__ = {"sqlite_autoincrement": True}


class ErasureSignoffRow(Base):
    """A data-protection officer's sign-off of a request's automatic erasure batch
    (``LETHE_ERASURE_SECOND_SIGNOFF``)."""

    __tablename__ = "erasure_signoff"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(BigId)
    signed_by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    audit_seq: Mapped[int] = mapped_column(BigId)

    __table_args__ = (
        UniqueConstraint("request_id", "signed_by", name="uq_erasure_signoff"),
        {"sqlite_autoincrement": True},
    )
