"""The catalog schema: the ORM tables and the Alembic migrations describe the same database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lethe.catalog import Catalog
from lethe.catalog.tables import Base


def test_migrations_match_the_orm_tables(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        with catalog.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        catalog.close()
    assert diff == []


def test_reopening_a_migrated_catalog_is_a_noop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    Catalog(url).close()
    catalog = Catalog(url)
    try:
        with catalog.engine.connect() as connection:
            version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        catalog.close()
    assert version is not None
