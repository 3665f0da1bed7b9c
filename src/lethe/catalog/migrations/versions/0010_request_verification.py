"""Identity verification as a record, and the portal's contact confirmation (security review,
finding 1): ``request_verification`` holds each check of a requester's identity (method, who, when,
the attestation that the person checked is the person in the photos, a note kept off the audit
chain); ``request`` gains the hash of the one-time code sent to a portal requester's contact
address, when it came back and how many wrong codes were tried.

Requests already past ``received`` keep their state: their verification was the free-text event of
that time, still in their history.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "request_verification",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", BigId, sa.ForeignKey("request.id"), nullable=False, index=True),
        sa.Column("method", sa.String(30), nullable=False),
        sa.Column("verified_by", sa.String(200), nullable=False),
        sa.Column("verified_at", When, nullable=False),
        sa.Column("attested", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("request") as batch:
        batch.add_column(sa.Column("confirm_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("confirmed_at", When, nullable=True))
        batch.add_column(sa.Column("confirm_attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("request") as batch:
        batch.drop_column("confirm_attempts")
        batch.drop_column("confirmed_at")
        batch.drop_column("confirm_hash")
    op.drop_table("request_verification")
