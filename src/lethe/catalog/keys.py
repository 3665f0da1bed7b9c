"""The wrapped data keys' rows (``source_key``): read, create, delete, re-wrap in one transaction.
What the keys are and how they wrap, seal and shred is the key ring's (:mod:`lethe.keyring`), which
is the only user of this repository."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from lethe.catalog.privacy_tables import SourceKeyRow
from lethe.catalog.tables import FaceRow, ImageRow
from lethe.errors import CatalogError

if TYPE_CHECKING:
    from lethe.catalog.repository import Catalog


class KeyRows:
    """The ``source_key`` rows of one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def wrapped(self, key_id: int) -> bytes | None:
        with self.catalog.session() as session:
            row = session.get(SourceKeyRow, key_id)
            return None if row is None else row.wrapped_key

    def count(self) -> int:
        with self.catalog.session() as session:
            return int(session.scalar(select(func.count()).select_from(SourceKeyRow)) or 0)

    def faces_of(self, source_id: int) -> int:
        """How many faces of the source are stored (sealed under its key)."""
        with self.catalog.session() as session:
            return int(
                session.scalar(
                    select(func.count(FaceRow.id))
                    .join(ImageRow, FaceRow.image_id == ImageRow.id)
                    .where(ImageRow.source_id == source_id)
                )
                or 0
            )

    def create(self, key_id: int, wrapped: bytes) -> bytes | None:
        """Store a new wrapped key; None when stored, else the one another process stored first."""
        row = SourceKeyRow(source_id=key_id, wrapped_key=wrapped, created_at=datetime.now(UTC))
        try:
            with self.catalog.session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            existing = self.wrapped(key_id)
            if existing is None:
                raise
            return existing
        return None

    def delete(self, key_id: int) -> bool:
        """Delete the row (the key is gone for good once the catalog is purged); whether it existed."""
        with self.catalog.session() as session, session.begin():
            row = session.get(SourceKeyRow, key_id)
            if row is not None:
                session.delete(row)
        return row is not None

    def rewrap_all(self, rewrap: Callable[[int, bytes], bytes]) -> int:
        """Replace every wrapped key by ``rewrap(key_id, wrapped)`` in one transaction, committed
        durably (``synchronous=FULL`` on SQLite); returns how many. A key created meanwhile makes it
        fail (:class:`CatalogError`) and roll back."""
        with self.catalog.database.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.exec_driver_sql("PRAGMA synchronous=FULL")
                conn.commit()
            try:
                with conn.begin():
                    rows = conn.execute(select(SourceKeyRow.source_id, SourceKeyRow.wrapped_key)).all()
                    for key_id, wrapped in rows:
                        conn.execute(
                            update(SourceKeyRow)
                            .where(SourceKeyRow.source_id == key_id)
                            .values(wrapped_key=rewrap(key_id, wrapped))
                        )
                    # The first UPDATE took the write lock: a key created since the SELECT shows here.
                    if conn.scalar(select(func.count()).select_from(SourceKeyRow)) != len(rows):
                        raise CatalogError("a data key was created during the rotation; run it again")
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    conn.commit()
        return len(rows)
