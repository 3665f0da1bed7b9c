"""Breach and serious-incident register (GDPR Arts. 33-34, AI Act Art. 73): filled by the incidents work.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
