"""Two-person verification of identifications (issue 18, EU AI Act Art. 14(5), Arts. 4 and 26(2)):
``user_competence``, a user's competence (``verifier``) with the date of their training, which lapses
after ``LETHE_VERIFIER_TRAINING_DAYS``; ``candidate_verdict``, one verifier's confirm or reject of one
candidate (a search's audit seq and a face id), at most one per verifier and candidate;
``verification_policy``, the history of how many distinct verifiers an action needs (2, or 1 where an
administrator recorded the legal exemption); ``erasure_signoff``, a second data-protection officer's
sign-off of a request's automatic erasure batch when ``LETHE_ERASURE_SECOND_SIGNOFF`` is on.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_competence",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("user_id", BigId, sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("competence", sa.String(40), nullable=False),
        sa.Column("trained_on", sa.Date(), nullable=False),
        sa.Column("granted_at", UTC, nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("user_id", "competence", name="uq_user_competence"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "candidate_verdict",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("search_seq", BigId, nullable=False),
        sa.Column("face_id", BigId, nullable=False),
        sa.Column("verifier", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("audit_seq", BigId, nullable=False),
        sa.UniqueConstraint("search_seq", "face_id", "verifier", name="uq_candidate_verdict"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_candidate_verdict_candidate", "candidate_verdict", ["search_seq", "face_id"])
    op.create_table(
        "verification_policy",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("legal_reference", sa.String(500), nullable=True),
        sa.Column("set_at", UTC, nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("audit_seq", BigId, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "erasure_signoff",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", BigId, nullable=False),
        sa.Column("signed_by", sa.String(200), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("audit_seq", BigId, nullable=False),
        sa.UniqueConstraint("request_id", "signed_by", name="uq_erasure_signoff"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("erasure_signoff")
    op.drop_table("verification_policy")
    op.drop_index("ix_candidate_verdict_candidate", table_name="candidate_verdict")
    op.drop_table("candidate_verdict")
    op.drop_table("user_competence")
