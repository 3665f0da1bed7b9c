"""Privacy layer: requests, review candidates, requester probes, suppression, orders, erasure
jobs, erased-photo tombstones and per-source keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "source_key",
        sa.Column("source_id", BigId, primary_key=True, autoincrement=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", When, nullable=False),
    )
    op.create_table(
        "request",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("received_at", When, nullable=False),
        sa.Column("due_at", When, nullable=False, index=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("contact", sa.LargeBinary(), nullable=False),
        sa.Column("answered_at", When, nullable=True),
        sa.Column("closed_at", When, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "request_event",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", BigId, sa.ForeignKey("request.id"), nullable=False, index=True),
        sa.Column("at", When, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "request_probe",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", BigId, sa.ForeignKey("request.id"), nullable=False, index=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("added_at", When, nullable=False),
        sa.Column("deleted_at", When, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "request_probe_blob",
        sa.Column("probe_id", BigId, sa.ForeignKey("request_probe.id"), primary_key=True),
        sa.Column("photo", sa.LargeBinary(), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=True),
    )
    op.create_table(
        "request_candidate",
        sa.Column("request_id", BigId, sa.ForeignKey("request.id"), primary_key=True),
        sa.Column("face_id", sa.BigInteger(), primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(12), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", When, nullable=True),
    )
    op.create_table(
        "suppression",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", BigId, sa.ForeignKey("request.id"), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("withdrawn_at", When, nullable=True),
        sa.Column("templates", sa.LargeBinary(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "legal_order",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("jurisdiction", sa.String(2), nullable=False),
        sa.Column("then_delete", sa.Boolean(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("issued_by", sa.String(200), nullable=False),
        sa.Column("issued_at", When, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("completed_at", When, nullable=True),
        sa.Column("proof", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "erasure_job",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("request_id", BigId, nullable=True),
        sa.Column("order_id", BigId, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("face_ids", sa.Text(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("completed_at", When, nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "erased_image",
        sa.Column("source_id", BigId, primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("erased_at", When, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "erased_image",
        "erasure_job",
        "legal_order",
        "suppression",
        "request_candidate",
        "request_probe_blob",
        "request_probe",
        "request_event",
        "request",
        "source_key",
    ):
        op.drop_table(table)
