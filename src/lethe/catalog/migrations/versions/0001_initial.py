"""Initial catalog: source, image, face.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "source",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("lawful_basis", sa.String(40), nullable=False),
        sa.Column("art9_condition", sa.String(60), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("jurisdiction", sa.String(2), nullable=False, index=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "image",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "source_id", BigId, sa.ForeignKey("source.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.UniqueConstraint("source_id", "sha256", name="uq_image_source_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "face",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "image_id", BigId, sa.ForeignKey("image.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("box_left", sa.Integer(), nullable=False),
        sa.Column("box_top", sa.Integer(), nullable=False),
        sa.Column("box_right", sa.Integer(), nullable=False),
        sa.Column("box_bottom", sa.Integer(), nullable=False),
        sa.Column("landmarks", sa.JSON(), nullable=False),
        sa.Column("detector", sa.String(40), nullable=False),
        sa.Column("detector_score", sa.Float(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("embedder", sa.String(40), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("crop_path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("face")
    op.drop_table("image")
    op.drop_table("source")
