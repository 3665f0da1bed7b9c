"""Breach and serious-incident register (GDPR Arts. 33-34, EU AI Act Art. 73): ``incident``, one
personal-data breach and/or serious incident with its occurrence, detection and awareness times (the
clocks run from awareness) and the window of time it concerns; ``incident_source``, the sources it
concerns with their image, face and consent counts when it was opened; ``incident_event``, each step
after opening (action taken, notification made, decision not to notify with its ground, closing). The
free text of each step is the erasable text of its audit entry, not a column here.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("personal_data_breach", sa.Boolean(), nullable=False),
        sa.Column("ai_category", sa.String(40), nullable=True),
        sa.Column("occurred_at", UTC, nullable=True),
        sa.Column("detected_at", UTC, nullable=False),
        sa.Column("aware_at", UTC, nullable=False),
        sa.Column("window_start", UTC, nullable=True),
        sa.Column("window_end", UTC, nullable=True),
        sa.Column("opened_at", UTC, nullable=False),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.Column("opened_seq", BigId, nullable=False),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("closed_by", sa.String(200), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "incident_source",
        sa.Column("incident_id", BigId, sa.ForeignKey("incident.id"), primary_key=True),
        sa.Column("source_id", BigId, primary_key=True),
        sa.Column("source_name", sa.String(200), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("consents", sa.Integer(), nullable=False),
    )
    op.create_table(
        "incident_event",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(40), nullable=True),
        sa.Column("ground", sa.String(40), nullable=True),
        sa.Column("at", UTC, nullable=False),
        sa.Column("recorded_at", UTC, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("draft_sha256", sa.String(64), nullable=True),
        sa.Column("audit_seq", BigId, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_incident_event_incident", "incident_event", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_incident_event_incident", table_name="incident_event")
    op.drop_table("incident_event")
    op.drop_table("incident_source")
    op.drop_table("incident")
