"""DPIA / FRIA / Art. 30 record (GDPR Arts. 30 and 35, AI Act Art. 27, issue 19):
``assessment_answer``, the versioned answers of the controller to the questions the live system
cannot answer; ``assessment_signature``, a data-protection officer's signature of a generated
document with its sha256 and the document as signed, and the fingerprint of the facts it rests on
with those facts, so that a later change can be named (the staleness flag).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "assessment_answer",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("document", sa.String(10), nullable=False),
        sa.Column("question", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("answered_by", sa.String(200), nullable=False),
        sa.Column("answered_at", UTC, nullable=False),
        sa.Column("audit_seq", BigId, nullable=False),
        sa.UniqueConstraint("document", "question", "version", name="uq_assessment_answer"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "assessment_signature",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("document", sa.String(10), nullable=False),
        sa.Column("signed_by", sa.String(200), nullable=False),
        sa.Column("signed_at", UTC, nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("audit_seq", BigId, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_assessment_signature_document", "assessment_signature", ["document"])


def downgrade() -> None:
    op.drop_index("ix_assessment_signature_document", table_name="assessment_signature")
    op.drop_table("assessment_signature")
    op.drop_table("assessment_answer")
