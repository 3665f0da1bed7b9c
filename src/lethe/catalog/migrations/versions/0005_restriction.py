"""Suppression scope: an objection keeps a person out of ingest and search; a restriction
(GDPR Art. 18) only hides their faces from search while the data is kept.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suppression") as batch:
        batch.add_column(sa.Column("scope", sa.String(20), nullable=False, server_default="objection"))


def downgrade() -> None:
    with op.batch_alter_table("suppression") as batch:
        batch.drop_column("scope")
