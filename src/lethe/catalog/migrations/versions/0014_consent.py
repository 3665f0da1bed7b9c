"""Consent-gated sources (issue 17): a source's indexing mode (``all_faces`` or
``enrolled_only``), the declaration fields checked at registration (legal reference, legitimate-
interests assessment, collection method), the guest page's settings, and the consent ledger
(``consent_text``, ``consent``, ``consent_face``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("source") as batch:
        batch.add_column(sa.Column("mode", sa.String(20), nullable=False, server_default="all_faces"))
        batch.add_column(sa.Column("legal_reference", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lia_reference", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("collection", sa.String(40), nullable=False, server_default="operator_controlled")
        )
        batch.add_column(sa.Column("event_code", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("guest_downloads", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("guest_browse", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_unique_constraint("uq_source_event_code", ["event_code"])
    op.create_table(
        "consent_text",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source_id", BigId, sa.ForeignKey("source.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("source_id", "version", name="uq_consent_text_version"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_consent_text_source_id", "consent_text", ["source_id"])
    op.create_table(
        "consent",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source_id", BigId, sa.ForeignKey("source.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text_id", BigId, sa.ForeignKey("consent_text.id"), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("age_attestation", sa.String(20), nullable=False),
        sa.Column("age_threshold", sa.Integer(), nullable=False),
        sa.Column("given_at", UTC, nullable=False),
        sa.Column("given_by", sa.String(200), nullable=False),
        sa.Column("contact", sa.LargeBinary(), nullable=True),
        sa.Column("template", sa.LargeBinary(), nullable=True),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("link_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("scan_state", sa.String(12), nullable=False),
        sa.Column("scanned_upto", BigId, nullable=False, server_default="0"),
        sa.Column("withdrawn_at", UTC, nullable=True),
        sa.Column("withdrawn_by", sa.String(200), nullable=True),
        sa.Column("erasure_job_id", BigId, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_consent_source_id", "consent", ["source_id"])
    op.create_index("ix_consent_given_at", "consent", ["given_at"])
    op.create_table(
        "consent_face",
        sa.Column("consent_id", BigId, sa.ForeignKey("consent.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("face_id", BigId, primary_key=True, autoincrement=False),
    )
    op.create_index("ix_consent_face_face_id", "consent_face", ["face_id"])


def downgrade() -> None:
    op.drop_table("consent_face")
    op.drop_table("consent")
    op.drop_table("consent_text")
    with op.batch_alter_table("source") as batch:
        batch.drop_constraint("uq_source_event_code", type_="unique")
        for column in (
            "guest_browse",
            "guest_downloads",
            "event_code",
            "collection",
            "lia_reference",
            "legal_reference",
            "mode",
        ):
            batch.drop_column(column)
