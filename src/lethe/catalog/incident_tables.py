"""Tables of the breach and serious-incident register (migration 0021). See
:mod:`lethe.privacy.incidents`.

The register holds ids, times and counts. Its free text (the description, each action taken, each
reason) is not in these rows: it is the erasable text of the audit entry each row names
(``opened_seq``, ``audit_seq``), so the chain vouches for it and ``lethe audit redact`` can erase it
where it named someone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lethe.catalog.tables import Base, BigId, UTCDateTime


class IncidentRow(Base):
    """One incident: a personal-data breach (GDPR Art. 4(12)), a serious incident (EU AI Act
    Art. 3(49)) with its category, or both; its times and the window of time it concerns."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    personal_data_breach: Mapped[bool] = mapped_column(Boolean)
    #: The AI Act category of a serious incident (``lethe.privacy.incidents.AI_CATEGORIES``); None:
    #: not a serious incident.
    ai_category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the controller became aware: every clock runs from here.
    aware_at: Mapped[datetime] = mapped_column(UTCDateTime())
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_seq: Mapped[int] = mapped_column(BigId)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class IncidentSourceRow(Base):
    """A source the incident concerns, with its counts when the incident was opened (the source may
    be erased or deleted since: the row keeps its id and name, not a foreign key)."""

    __tablename__ = "incident_source"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_name: Mapped[str] = mapped_column(String(200))
    images: Mapped[int] = mapped_column(Integer)
    faces: Mapped[int] = mapped_column(Integer)
    consents: Mapped[int] = mapped_column(Integer)


class IncidentEventRow(Base):
    """One step of an incident after its opening: an action taken, a notification (to the
    supervisory authority, the market-surveillance authority, the provider or the data subjects)
    with the time it was made, a decision not to notify (with its legal ground), or the closing."""

    __tablename__ = "incident_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id"))
    kind: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: A decision not to notify: its ground (``not_required``, ``art34_3_a`` ...).
    ground: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: When it happened (a notification made by telephone yesterday is recorded today).
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    #: The sha256 of the draft current when a notification was recorded.
    draft_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    audit_seq: Mapped[int] = mapped_column(BigId)

    __table_args__ = (
        Index("ix_incident_event_incident", "incident_id"),
        {"sqlite_autoincrement": True},
    )
