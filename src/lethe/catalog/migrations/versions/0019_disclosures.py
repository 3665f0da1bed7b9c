"""Disclosure ledger (GDPR Arts. 15(1)(c), 17(2), 19): ``recipient``, the organisations or roles
personal data is disclosed to (kind, country, outside the EEA, the transfer's safeguard, a sealed
e-mail address for notices); ``recipient_token``, API tokens bound to a recipient (every search
answered to one is a disclosure); ``disclosure`` and ``disclosure_face``, each disclosure and the
faces it carried; ``recipient_notice`` and ``recipient_notice_face``, the notices an erasure,
restriction or objection owes each recipient (Art. 19) or the other controllers of photos the
controller made public (Art. 17(2)), with their state. Face ids carry no foreign key: the ledger
outlives the faces it names, as ``audit_face`` does.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recipient",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("outside_eea", sa.Boolean(), nullable=False),
        sa.Column("safeguard", sa.String(500), nullable=True),
        sa.Column("contact", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "recipient_token",
        sa.Column("token_id", BigId, sa.ForeignKey("api_token.id"), primary_key=True, autoincrement=False),
        sa.Column("recipient_id", BigId, sa.ForeignKey("recipient.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("bound_at", UTC, nullable=False),
        sa.Column("bound_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_recipient_token_recipient_id", "recipient_token", ["recipient_id"])
    op.create_table(
        "disclosure",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("recipient_id", BigId, sa.ForeignKey("recipient.id"), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(100), nullable=True),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("audit_seq", BigId, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_disclosure_recipient_id", "disclosure", ["recipient_id"])
    op.create_index("ix_disclosure_at", "disclosure", ["at"])
    op.create_table(
        "disclosure_face",
        sa.Column("disclosure_id", BigId, sa.ForeignKey("disclosure.id"), primary_key=True),
        sa.Column("face_id", sa.BigInteger(), primary_key=True),
    )
    op.create_index("ix_disclosure_face_face_id", "disclosure_face", ["face_id"])
    op.create_table(
        "recipient_notice",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("article", sa.String(8), nullable=False),
        sa.Column("recipient_id", BigId, sa.ForeignKey("recipient.id"), nullable=True),
        sa.Column("cause", sa.String(20), nullable=False),
        sa.Column("erasure_job_id", BigId, nullable=True),
        sa.Column("request_id", BigId, nullable=True),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("faces", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(14), nullable=False),
        sa.Column("state_at", UTC, nullable=True),
        sa.Column("state_by", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(10), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.String(200), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_recipient_notice_recipient_id", "recipient_notice", ["recipient_id"])
    op.create_index("ix_recipient_notice_request_id", "recipient_notice", ["request_id"])
    op.create_index("ix_recipient_notice_state", "recipient_notice", ["state"])
    op.create_index("ix_recipient_notice_job", "recipient_notice", ["erasure_job_id"])
    op.create_table(
        "recipient_notice_face",
        sa.Column("notice_id", BigId, sa.ForeignKey("recipient_notice.id"), primary_key=True),
        sa.Column("face_id", sa.BigInteger(), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("recipient_notice_face")
    op.drop_index("ix_recipient_notice_job", table_name="recipient_notice")
    op.drop_index("ix_recipient_notice_state", table_name="recipient_notice")
    op.drop_index("ix_recipient_notice_request_id", table_name="recipient_notice")
    op.drop_index("ix_recipient_notice_recipient_id", table_name="recipient_notice")
    op.drop_table("recipient_notice")
    op.drop_index("ix_disclosure_face_face_id", table_name="disclosure_face")
    op.drop_table("disclosure_face")
    op.drop_index("ix_disclosure_at", table_name="disclosure")
    op.drop_index("ix_disclosure_recipient_id", table_name="disclosure")
    op.drop_table("disclosure")
    op.drop_index("ix_recipient_token_recipient_id", table_name="recipient_token")
    op.drop_table("recipient_token")
    op.drop_table("recipient")
