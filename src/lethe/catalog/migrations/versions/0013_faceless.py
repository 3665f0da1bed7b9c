"""Photos with no face leave no row (security review, section 21: a home-folder walk stored 79 icons
as catalog rows, each with its file path): ``faceless_image`` keeps only the content hash of such a
photo per source, so that re-ingesting a folder skips it without decoding it again. Rows of photos
stored earlier with no face (none detected, or each an objector's) move there: their paths, sizes
and captions are deleted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NO_FACE = "NOT EXISTS (SELECT 1 FROM face WHERE face.image_id = image.id)"


def upgrade() -> None:
    op.create_table(
        "faceless_image",
        sa.Column("source_id", BigId, sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
    )
    op.execute(
        f"INSERT INTO faceless_image (source_id, sha256) SELECT source_id, sha256 FROM image WHERE {_NO_FACE}"
    )
    op.execute(f"DELETE FROM image WHERE {_NO_FACE}")


def downgrade() -> None:
    # The deleted rows' paths are gone for good: the photos are simply ingested again (and stored
    # as rows with no face) by the next run over their folder.
    op.drop_table("faceless_image")
