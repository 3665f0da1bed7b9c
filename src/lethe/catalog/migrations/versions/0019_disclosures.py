"""Disclosure ledger (GDPR Arts. 15(1)(c), 17(2), 19): filled by the disclosures work.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
