"""Tables of the DPIA, the FRIA and the Art. 30 record (migration 0020). See
:mod:`lethe.privacy.assessments`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lethe.catalog.tables import Base, BigId, UTCDateTime


class AssessmentAnswerRow(Base):
    """One version of the controller's answer to one question of a document (``dpia``, ``fria``,
    ``art30``) that the live system cannot answer; the highest version is in force."""

    __tablename__ = "assessment_answer"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document: Mapped[str] = mapped_column(String(10))
    question: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(Text)
    answered_by: Mapped[str] = mapped_column(String(200))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    audit_seq: Mapped[int] = mapped_column(BigId)

    __table_args__ = (
        UniqueConstraint("document", "question", "version", name="uq_assessment_answer"),
        {"sqlite_autoincrement": True},
    )


class AssessmentSignatureRow(Base):
    """A data-protection officer's signature of a document as generated then: the sha256 of the
    document and the document itself (``content``, JSON), and the fingerprint of the facts it rests
    on with those facts (``facts``, JSON) so that a later change can be named. The newest row of a
    document is in force."""

    __tablename__ = "assessment_signature"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document: Mapped[str] = mapped_column(String(10))
    signed_by: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    document_sha256: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    facts: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    audit_seq: Mapped[int] = mapped_column(BigId)

    __table_args__ = (
        Index("ix_assessment_signature_document", "document"),
        {"sqlite_autoincrement": True},
    )
