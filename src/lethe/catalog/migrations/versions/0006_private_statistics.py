"""PostgreSQL: no planner statistics on columns that hold personal data or secrets.

``ANALYZE`` (autovacuum runs it on its own) copies sample values of every column into the
``pg_statistic`` catalog: sealed templates, wrapped source keys and photo names of rows deleted since
would outlive an erasure's purge there (tests/test_catalog.py finds them without this). A statistics
target of 0 keeps these columns out of it; no query of Lethe's is planned on them. SQLite is left as
it is: Lethe never runs ``ANALYZE`` there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PRIVATE_COLUMNS = {
    "face": ("embedding", "landmarks"),
    "image": ("uri", "source_url", "caption"),
    "source_key": ("wrapped_key",),
    "request": ("contact",),
    "request_probe_blob": ("photo", "template"),
    "suppression": ("templates",),
    "app_user": ("password_hash",),
    "api_token": ("token_hash",),
}


def _set_statistics(target: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in PRIVATE_COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} SET STATISTICS {target}" for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _set_statistics(0)


def downgrade() -> None:
    _set_statistics(-1)  # the server's default_statistics_target again
