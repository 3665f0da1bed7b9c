"""API tokens expire (security review, section 21: "API tokens never expire"): ``api_token.expires_at``,
after which a token is refused like a revoked one.

Tokens made before get their creation time plus the default lifetime (90 days, ``LETHE_TOKEN_DAYS``'s
default): one made longer ago than that is expired from this upgrade on, and its holder makes a new
one. The dates are computed here row by row (the same on SQLite and PostgreSQL, which add intervals
differently), then the column becomes NOT NULL.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
#: The default token lifetime when this migration was written (``lethe.config.DEFAULT_TOKEN_DAYS``).
DEFAULT_DAYS = 90


def upgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("expires_at", When, nullable=True))
    token = sa.table("api_token", sa.column("id", sa.Integer()), sa.column("created_at", When))
    expires = sa.table("api_token", sa.column("id", sa.Integer()), sa.column("expires_at", When))
    bind = op.get_bind()
    for token_id, created_at in bind.execute(sa.select(token.c.id, token.c.created_at)).all():
        bind.execute(
            sa.update(expires)
            .where(expires.c.id == token_id)
            .values(expires_at=created_at + timedelta(days=DEFAULT_DAYS))
        )
    with op.batch_alter_table("api_token") as batch:
        batch.alter_column("expires_at", existing_type=When, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
