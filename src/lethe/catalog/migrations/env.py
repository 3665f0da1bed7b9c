"""Alembic environment: Lethe passes an open connection in ``config.attributes['connection']``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from lethe.catalog.dialects import sqlalchemy_url
from lethe.catalog.tables import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(
        sqlalchemy_url(config.get_main_option("sqlalchemy.url") or "sqlite:///data/catalog.sqlite3")
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
