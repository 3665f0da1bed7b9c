"""One vocabulary for the erasure bands: a request's candidates said ``auto`` where search results
said ``automatic``; both say ``automatic`` now (``review`` and ``below_review`` unchanged).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE request_candidate SET band = 'automatic' WHERE band = 'auto'")


def downgrade() -> None:
    op.execute("UPDATE request_candidate SET band = 'auto' WHERE band = 'automatic'")
