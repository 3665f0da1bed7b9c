"""What differs between the catalog's two databases, and nothing else.

SQLite (the default: ``catalog.sqlite3`` in the data folder) and PostgreSQL
(``LETHE_CATALOG_URL=postgresql://user:password@host:port/dbname``, driven by psycopg 3) run the
same Alembic migrations and the same repository code. What differs:

*URLs*
    ``postgresql://`` and ``postgres://`` as users write them mean psycopg 3
    (``postgresql+psycopg://``); any other URL goes to SQLAlchemy as given.
*Connections*
    SQLite: foreign keys on, write-ahead log, ``secure_delete`` (freed pages are zeroed), a 30 s busy
    timeout. PostgreSQL: connections are checked before use (a restarted server costs no request).
*Migrations*
    On PostgreSQL a transaction-level advisory lock makes processes that open a fresh catalog at the
    same time migrate it one after the other (the DDL is transactional; the second finds it done).
    On SQLite they run with foreign keys off (Alembic's batch mode copies and drops tables, which
    would cascade), checked before the commit.
*Inserts that may meet a duplicate*
    ``INSERT ... ON CONFLICT DO NOTHING`` on both: two processes ingesting the same photo store it
    once, and neither fails.
*Purge* (:func:`purge`, after every erasure, shredding and request closure)
    Deleted rows must be physically gone from the database files. SQLite overwrites them
    (``secure_delete``); the write-ahead log, which still holds the old pages, is checkpointed and
    truncated. PostgreSQL keeps a deleted or updated row's old version in the table file until a
    vacuum, and a plain ``VACUUM`` marks the space free without overwriting it (the bytes stay in
    the file until a later insert lands there): the purge runs ``VACUUM (FULL)`` on the tables that
    hold personal data, which rewrites them into new files; the old files are truncated when it
    commits. It takes an exclusive lock on each table while it copies it (searches wait), and
    cannot drop a row version that a still-open transaction may see. What PostgreSQL keeps outside
    its table files (the write-ahead log, WAL archives, replicas, backups) is docs/operations.md's
    subject.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.dml import Insert

from lethe.catalog.tables import Base
from lethe.errors import CatalogError

#: Tables whose rows hold personal data (templates, photos, keys, contact addresses, landmarks):
#: the ones the PostgreSQL purge rewrites.
PERSONAL_TABLES = (
    "face",
    "image",
    "source_key",
    "request",
    "request_probe",
    "request_probe_blob",
    "suppression",
    "audit_text",
    "search_log",
)
#: Any constant, the same in every process: the advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x4C45_5448_4501
#: How long a purge waits for the tables' exclusive locks before it gives up (the erasure job it
#: belongs to stays pending and is resumed on the next start).
PURGE_LOCK_TIMEOUT_S = 60


def sqlalchemy_url(url: str) -> str:
    """The URL SQLAlchemy is given: plain PostgreSQL URLs mean psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def engine_options(url: str) -> dict[str, Any]:
    """Keyword arguments for ``create_engine`` on this URL's database."""
    if make_url(url).get_backend_name() == "postgresql":
        return {
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": 10, "application_name": "lethe"},
        }
    return {}


def configure(engine: Engine) -> None:
    """Per-connection settings (SQLite's pragmas); a SQLite file is made private first."""
    if engine.dialect.name == "sqlite":
        if engine.url.database and engine.url.database != ":memory:":
            _private_sqlite_file(Path(engine.url.database))
        event.listen(engine, "connect", _sqlite_pragmas)


def _private_sqlite_file(path: Path) -> None:
    """Create the database file with mode 0600 before SQLite does (SQLite would use the umask, often
    0644), or take group/other access off an existing one. SQLite gives its write-ahead log, shared
    memory and journal files the database file's mode. Best effort: a file this process does not own
    is left as it is (SQLite then reports what is wrong)."""
    with contextlib.suppress(FileExistsError, FileNotFoundError, PermissionError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        with contextlib.suppress(OSError):
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted rows are overwritten with zeros, so erased templates do not linger in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextlib.contextmanager
def foreign_keys_off_on_sqlite(connection: Connection) -> Iterator[None]:
    """Migrations run on SQLite with foreign keys off. Alembic's batch mode changes a table by
    copying it, dropping the old one and renaming the copy; with foreign keys on, dropping a table
    that others reference with ``ON DELETE CASCADE`` (``source``, ``image``) deletes their rows
    (every photo and face of the catalog when 0014 adds columns to ``source``). The pragma is a no-op
    inside a transaction, so it is set before the migration's transaction and set back after it;
    :func:`check_foreign_keys` verifies the result before the commit."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        yield
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def broken_references(connection: Connection) -> int:
    """On SQLite, how many rows refer to rows that do not exist (0 elsewhere: PostgreSQL enforces
    them throughout)."""
    if connection.dialect.name != "sqlite":
        return 0
    return len(connection.exec_driver_sql("PRAGMA foreign_key_check").all())


def check_foreign_keys(connection: Connection, before: int) -> None:
    """Inside the migration transaction on SQLite: refuse to commit a migration that left more rows
    referring to missing rows than there were before it (a catalog edited by hand may hold some:
    it still opens, so that ``lethe audit verify`` can say what was done to it)."""
    after = broken_references(connection)
    if after > before:
        raise CatalogError(f"the migration left {after - before} row(s) referring to missing rows")


def lock_for_migration(connection: Connection) -> None:
    """Inside the migration transaction: wait for any other process migrating the same catalog."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")


def insert_ignoring_duplicates(dialect_name: str, table: type[Base], *unique: str) -> Insert:
    """``INSERT ... ON CONFLICT (unique) DO NOTHING``; with ``RETURNING`` a duplicate returns no row."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    if dialect_name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    raise CatalogError(f"unsupported catalog database {dialect_name!r} (SQLite or PostgreSQL)")


def purge(engine: Engine) -> None:
    """Make rows deleted (or overwritten) so far physically gone from the database files."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elif engine.dialect.name == "postgresql":
        tables = ", ".join(PERSONAL_TABLES)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"SET lock_timeout = '{PURGE_LOCK_TIMEOUT_S}s'")
            try:
                connection.exec_driver_sql(f"VACUUM (FULL) {tables}")
            except OperationalError as exc:
                raise CatalogError(
                    f"could not purge deleted rows (VACUUM FULL): {exc.orig or exc}; "
                    "run it again when no other session holds the catalog's tables"
                ) from exc
