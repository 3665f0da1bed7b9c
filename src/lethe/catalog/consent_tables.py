"""Tables of consent-gated sources (migration 0014): the consent texts a source has shown, the
consents given (and withdrawn) and which stored faces each consent's template matched.

A consent row is the ledger entry GDPR Art. 7(1) asks for (who, to which text, for which source,
when, how, the age attestation, the withdrawal); its enrolment template and contact address are
sealed under the source's data key and deleted at withdrawal, the row itself stays as the proof.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lethe.catalog.tables import Base, BigId, UTCDateTime


class ConsentTextRow(Base):
    """One version of the consent text of a source; the text and its sha256 are kept for good."""

    __tablename__ = "consent_text"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("source_id", "version", name="uq_consent_text_version"),
        {"sqlite_autoincrement": True},
    )


class ConsentRow(Base):
    """One person's consent to be matched in one source."""

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    text_id: Mapped[int] = mapped_column(ForeignKey("consent_text.id"))
    #: How it was given: ``guest_page``, ``desk`` or ``form``.
    channel: Mapped[str] = mapped_column(String(20))
    #: ``of_age`` (the person states they are at least ``age_threshold``) or ``parental`` (a
    #: parent or guardian consents for a child).
    age_attestation: Mapped[str] = mapped_column(String(20))
    age_threshold: Mapped[int] = mapped_column(Integer)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    given_by: Mapped[str] = mapped_column(String(200))
    #: The contact address, sealed (source key); ``None`` when none was given or after withdrawal.
    contact: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: The enrolment template, sealed (source key); ``None`` after withdrawal.
    template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    model_sha256: Mapped[str] = mapped_column(String(64))
    #: sha256 of the guest's private link secret (the link itself is shown once).
    link_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    #: The enrolment's scan of the photos stored before it: ``pending`` until done; resumes after
    #: ``scanned_upto`` (an image id).
    scan_state: Mapped[str] = mapped_column(String(12))
    scanned_upto: Mapped[int] = mapped_column(BigId, default=0)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    erasure_job_id: Mapped[int | None] = mapped_column(BigId, nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class ConsentFaceRow(Base):
    """A stored face that matched a consent's template (at ingest or at the enrolment's scan)."""

    __tablename__ = "consent_face"

    consent_id: Mapped[int] = mapped_column(ForeignKey("consent.id", ondelete="CASCADE"), primary_key=True)
    face_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False, index=True)
