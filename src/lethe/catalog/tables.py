"""SQLAlchemy table definitions. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DontWrapMixin
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

from lethe.errors import CatalogError

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere for 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class _NaiveDatetimeError(CatalogError, DontWrapMixin):
    """A datetime without a zone given to the catalog. ``DontWrapMixin``: SQLAlchemy raises it as
    it is, not inside its own ``StatementError`` (which is outside Lethe's error tree)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise); a naive
    datetime is refused with a :class:`~lethe.errors.CatalogError` (the write is rolled back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise _NaiveDatetimeError("naive datetime given to the catalog: give it a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class SourceRow(Base):
    __tablename__ = "source"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    lawful_basis: Mapped[str] = mapped_column(String(40))
    art9_condition: Mapped[str] = mapped_column(String(60))
    purpose: Mapped[str] = mapped_column(Text)
    jurisdiction: Mapped[str] = mapped_column(String(2), index=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``all_faces`` or ``enrolled_only`` (only faces that match a consenting person's template are
    #: stored); migration 0014, with the declaration fields below.
    mode: Mapped[str] = mapped_column(String(20), server_default="all_faces")
    #: The law behind an Art. 9(2)(b)/(g)/(h)/(i)/(j) condition or a legal-obligation basis.
    legal_reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Where the legitimate-interests assessment (Art. 6(1)(f)) is recorded.
    lia_reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: How the photos were collected (an attestation; never scraped, never bulk CCTV).
    collection: Mapped[str] = mapped_column(String(40), server_default="operator_controlled")
    #: The guest page's code (``/e/<code>``) of an ``enrolled_only`` source; ``None``: no guest page.
    event_code: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    #: Guests may download the photos they were found in; guests may browse every photo.
    guest_downloads: Mapped[bool] = mapped_column(Boolean, server_default=false())
    guest_browse: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = {"sqlite_autoincrement": True}


class ImageRow(Base):
    __tablename__ = "image"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    caption: Mapped[str | None] = mapped_column(Text, nullable=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(10))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (
        UniqueConstraint("source_id", "sha256", name="uq_image_source_sha256"),
        {"sqlite_autoincrement": True},
    )


class FacelessImageRow(Base):
    """A photo of a source in which ingest stored no face (none was detected, or each was an
    objector's): its content hash only, no path and no name, so that re-ingesting the folder skips
    it without decoding it again. Deleted with its source."""

    __tablename__ = "faceless_image"

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)


class FaceRow(Base):
    __tablename__ = "face"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    box_left: Mapped[int] = mapped_column(Integer)
    box_top: Mapped[int] = mapped_column(Integer)
    box_right: Mapped[int] = mapped_column(Integer)
    box_bottom: Mapped[int] = mapped_column(Integer)
    landmarks: Mapped[list[list[float]]] = mapped_column(JSON)
    detector: Mapped[str] = mapped_column(String(40))
    detector_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    embedder: Mapped[str] = mapped_column(String(40))
    #: The sha256 of the model that made the template (lethe.model_ids).
    model_sha256: Mapped[str] = mapped_column(String(64), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    crop_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_autoincrement": True}


class AuditEntryRow(Base):
    __tablename__ = "audit_entry"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """One row (id 1): the last sequence number and hash; every append updates it, which also
    serialises concurrent writers on every database."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditFaceRow(Base):
    """Which faces an audited action (a search) returned: lets an access export list every search
    that returned a face without scanning the whole log."""

    __tablename__ = "audit_face"

    seq: Mapped[int] = mapped_column(BigId, ForeignKey("audit_entry.seq"), primary_key=True)
    face_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class AuditTextRow(Base):
    """Free text of an audit entry (a search's stated purpose), kept off the chain so it can be
    erased: the chained entry holds ``sha256(salt + text)`` under the same key."""

    __tablename__ = "audit_text"

    seq: Mapped[int] = mapped_column(BigId, ForeignKey("audit_entry.seq"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    salt: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
