"""The global stop of identification (issue 18, AI Act Art. 14(4)(e)): ``oversight_stop``, one row
per stop, in force while ``resumed_at`` is empty.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oversight_stop",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_by", sa.String(200), nullable=False),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_by", sa.String(200), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_oversight_stop_resumed_at", "oversight_stop", ["resumed_at"])


def downgrade() -> None:
    op.drop_table("oversight_stop")
