"""DPIA / FRIA signatures (GDPR Art. 35, AI Act Art. 27): filled by the assessments work.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
