"""Free text kept off the audit chain: a search's stated purpose (and any other free text an entry
carries) lives in ``audit_text``, erasable; the chained entry holds only a salted hash of it, so the
chain still verifies after the text is erased and a short text (a name) cannot be guessed back from
the hash.

Entries written before this revision keep their purpose inside the chained details (changing them
would break the chain); ``lethe audit redact`` cannot erase those.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_text",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["audit_entry.seq"]),
        sa.PrimaryKeyConstraint("seq", "key"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_text ALTER COLUMN text SET STATISTICS 0")


def downgrade() -> None:
    op.drop_table("audit_text")
