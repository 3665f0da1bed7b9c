"""Communications to data subjects (GDPR Art. 12(3)-(4)): ``request.language``, the language the
requester is written to in (``en``, ``fr``; unset: ``LETHE_DEFAULT_LANGUAGE``); ``request_message``,
each message generated for a request (acknowledgement, identity check, extension notice, answer,
refusal) with its channel, outcome, attempts and the SHA-256 of its body. The body holds no personal
data beyond the request's reference (never the contact address, which stays sealed on the request):
it is kept with the request's other records.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("request") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    op.create_table(
        "request_message",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", BigId, sa.ForeignKey("request.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("generated_at", UTC, nullable=False),
        sa.Column("generated_by", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_attempt_at", UTC, nullable=True),
        sa.Column("sent_at", UTC, nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_request_message_request_id", "request_message", ["request_id"])
    op.create_index("ix_request_message_state", "request_message", ["state"])


def downgrade() -> None:
    op.drop_index("ix_request_message_state", table_name="request_message")
    op.drop_index("ix_request_message_request_id", table_name="request_message")
    op.drop_table("request_message")
    with op.batch_alter_table("request") as batch:
        batch.drop_column("language")
