"""Uses and the per-search log (issue 18, EU AI Act Art. 12(3)(a)): ``search_use``, one row per use
(a case: who opened it, when, when and how it closed; its purpose and case reference live in its
``use.open`` audit entry's erasable texts), and ``search_log``, one row per search linking its audit
entry to its use, with the probe's hash and, only when the search matched, the probe sealed under the
log key until ``probe_expires_at`` (then the bytes are deleted and ``probe_deleted_at`` set).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "search_use",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("opened_at", UTC, nullable=False),
        sa.Column("opened_seq", BigId, nullable=True),
        sa.Column("last_active_at", UTC, nullable=False),
        sa.Column("searches", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("closed_by", sa.String(200), nullable=True),
        sa.Column("close_reason", sa.String(20), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_search_use_actor", "search_use", ["actor"])
    op.create_index("ix_search_use_closed_at", "search_use", ["closed_at"])
    op.create_table(
        "search_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("seq", BigId, nullable=False),
        sa.Column("use_id", BigId, sa.ForeignKey("search_use.id"), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("probe_sha256", sa.String(64), nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("probe", sa.LargeBinary(), nullable=True),
        sa.Column("probe_expires_at", UTC, nullable=True),
        sa.Column("probe_deleted_at", UTC, nullable=True),
        sa.UniqueConstraint("seq", name="uq_search_log_seq"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_search_log_use_id", "search_log", ["use_id"])
    op.create_index("ix_search_log_probe_expires_at", "search_log", ["probe_expires_at"])


def downgrade() -> None:
    op.drop_table("search_log")
    op.drop_table("search_use")
