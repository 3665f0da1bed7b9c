"""Repository over the catalog database. Returns dataclasses, never ORM rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

import numpy as np
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Row, Select, create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from lethe.catalog import audit_log, dialects
from lethe.catalog.audit_log import AuditEntry, AuditRecord, Verification
from lethe.catalog.privacy_tables import ErasedImageRow
from lethe.catalog.tables import FacelessImageRow, FaceRow, ImageRow, SourceRow
from lethe.errors import CatalogError, ConflictError, LawfulBasisError, NotFoundError
from lethe.types import Box, Embedding, FaceRecord


class Sealer(Protocol):
    """What the catalog needs of a key ring (:class:`lethe.keyring.KeyRing`) to store templates
    sealed: a data key per source, and templates bound to their source, photo and face."""

    def ensure(self, source_id: int) -> None: ...

    def seal_template(self, source_id: int, image_sha256: str, face_id: int, vector: bytes) -> bytes: ...

    def open_template(self, source_id: int, image_sha256: str, face_id: int, blob: bytes) -> bytes: ...


class SourceDeclaration(Protocol):
    """A validated source declaration (:class:`lethe.privacy.sources.SourceSpec`)."""

    @property
    def name(self) -> str: ...
    @property
    def lawful_basis(self) -> str: ...
    @property
    def art9_condition(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def jurisdiction(self) -> str: ...
    @property
    def retention_days(self) -> int: ...
    @property
    def mode(self) -> str: ...
    @property
    def legal_reference(self) -> str | None: ...
    @property
    def lia_reference(self) -> str | None: ...
    @property
    def collection(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Source:
    id: int
    name: str
    lawful_basis: str
    art9_condition: str
    purpose: str
    jurisdiction: str
    retention_days: int
    status: str
    created_at: datetime
    mode: str = "all_faces"
    legal_reference: str | None = None
    lia_reference: str | None = None
    collection: str = "operator_controlled"
    event_code: str | None = None
    guest_downloads: bool = False
    guest_browse: bool = False


@dataclass(frozen=True, slots=True)
class ImageMeta:
    sha256: str
    uri: str
    width: int
    height: int
    size_bytes: int
    format: str
    source_url: str | None = None
    captured_at: datetime | None = None
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class FaceInfo:
    face_id: int
    image_id: int
    image_uri: str
    source_name: str
    source_url: str | None
    box: Box
    crop_path: str
    quality: float
    detector_score: float


def _source(row: SourceRow) -> Source:
    return Source(
        id=row.id,
        name=row.name,
        lawful_basis=row.lawful_basis,
        art9_condition=row.art9_condition,
        purpose=row.purpose,
        jurisdiction=row.jurisdiction,
        retention_days=row.retention_days,
        status=row.status,
        created_at=row.created_at,
        mode=row.mode,
        legal_reference=row.legal_reference,
        lia_reference=row.lia_reference,
        collection=row.collection,
        event_code=row.event_code,
        guest_downloads=bool(row.guest_downloads),
        guest_browse=bool(row.guest_browse),
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StaleImage:
    """A photo with faces whose templates another model made: face id -> box."""

    image_id: int
    uri: str
    sha256: str
    source_id: int
    faces: dict[int, Box]


def _sealed_templates() -> Select[tuple[int, bytes, int, str]]:
    """Face id, sealed template, and what its AAD binds it to: source id and photo hash."""
    return select(FaceRow.id, FaceRow.embedding, ImageRow.source_id, ImageRow.sha256).join(
        ImageRow, FaceRow.image_id == ImageRow.id
    )


def _open_templates(keys: Sealer, rows: Sequence[Row[tuple[int, bytes, int, str]]]) -> Embedding:
    """Decrypt rows of :func:`_sealed_templates` into one float32 matrix, in row order."""
    plain = bytearray().join(keys.open_template(sid, sha, fid, blob) for fid, blob, sid, sha in rows)
    return np.frombuffer(plain, dtype=np.float32).reshape(len(rows), -1)


class Catalog:
    """Opens (and migrates) the catalog database at ``url``: SQLite or PostgreSQL (see
    :mod:`lethe.catalog.dialects` for what differs).

    Templates are stored sealed (see :mod:`lethe.keyring`): the methods that write or read them need
    a :class:`Sealer`, given with :meth:`attach_sealer` (the store does it, once the key ring, whose
    keys live in this catalog, is open); everything else works without one.

    Every method that writes takes the :class:`~lethe.catalog.audit_log.AuditRecord` of its action
    (built by the privacy layer's policy, :mod:`lethe.privacy.audit`) and appends it in the same
    transaction."""

    def __init__(self, url: str, *, template_model: str | None = None) -> None:
        self.keyring: Sealer | None = None
        #: When set (the engine sets the configured embedder's model sha256), the methods that list
        #: faces for the vector index or read templates see only this model's faces: templates of
        #: different models are never compared. Faces of other models stay stored (until
        #: ``lethe index reembed`` moves them) and are still reached by erasure, retention and orders.
        self.template_model = template_model
        try:
            self.url = dialects.sqlalchemy_url(url)
            self.database: Engine = create_engine(self.url, future=True, **dialects.engine_options(self.url))
            dialects.configure(self.database)
            self._migrate()
        except SQLAlchemyError as exc:
            raise CatalogError(
                f"cannot open catalog: {exc.__class__.__name__}: {exc.args[0] if exc.args else ''}"
            ) from exc
        self._sessions = sessionmaker(self.database, expire_on_commit=False)

    def _migrate(self) -> None:
        script_location = str(resources.files("lethe.catalog") / "migrations")
        config = Config()
        config.set_main_option("script_location", script_location)
        with (
            self.database.connect() as connection,
            dialects.foreign_keys_off_on_sqlite(connection),
            connection.begin(),
        ):
            dialects.lock_for_migration(connection)
            config.attributes["connection"] = connection
            current = MigrationContext.configure(connection).get_current_revision()
            if current == ScriptDirectory.from_config(config).get_current_head():
                return  # nothing to migrate (the usual open)
            broken_before = dialects.broken_references(connection)
            command.upgrade(config, "head")
            dialects.check_foreign_keys(connection, broken_before)

    def session(self) -> Session:
        return self._sessions()

    def attach_sealer(self, sealer: Sealer) -> None:
        self.keyring = sealer

    def _keys(self) -> Sealer:
        if self.keyring is None:
            raise CatalogError("templates are encrypted: attach a key ring to the catalog first")
        return self.keyring

    def close(self) -> None:
        self.database.dispose()

    # -- sources ---------------------------------------------------------------------------------

    def record(self, entry: AuditRecord) -> AuditEntry:
        """Write a standalone audit entry (for actions with no catalog change, e.g. a search)."""
        with self.session() as session, session.begin():
            return self._audit(session, entry)

    def _audit(self, session: Session, entry: AuditRecord) -> AuditEntry:
        return audit_log.append(session, entry, at=now_utc())

    def verify_audit(self) -> Verification:
        with self.session() as session:
            return audit_log.verify(session)

    def add_source(self, spec: SourceDeclaration, *, audit_as: AuditRecord, status: str = "active") -> Source:
        row = SourceRow(
            name=spec.name,
            lawful_basis=spec.lawful_basis,
            art9_condition=spec.art9_condition,
            purpose=spec.purpose,
            jurisdiction=spec.jurisdiction,
            retention_days=spec.retention_days,
            status=status,
            created_at=now_utc(),
            mode=spec.mode,
            legal_reference=spec.legal_reference,
            lia_reference=spec.lia_reference,
            collection=spec.collection,
        )
        try:
            with self.session() as session, session.begin():
                session.add(row)
                session.flush()
                self._audit(session, audit_as.with_details(source_id=row.id))
        except IntegrityError as exc:
            raise ConflictError(f"a source named {spec.name!r} already exists") from exc
        return _source(row)

    def source(self, name: str) -> Source:
        with self.session() as session:
            row = session.scalar(select(SourceRow).where(SourceRow.name == name))
            if row is None:
                raise NotFoundError(f"no source named {name!r}; register it with `lethe source add`")
            return _source(row)

    def sources(self) -> list[Source]:
        with self.session() as session:
            return [_source(r) for r in session.scalars(select(SourceRow).order_by(SourceRow.name))]

    def source_by_event_code(self, code: str) -> Source | None:
        """The source whose guest page has this event code (``None``: no such code)."""
        with self.session() as session:
            row = session.scalar(select(SourceRow).where(SourceRow.event_code == code))
            return _source(row) if row is not None else None

    def set_guest(
        self, name: str, *, event_code: str | None, downloads: bool, browse: bool, audit_as: AuditRecord
    ) -> Source:
        """Set the guest page of an ``enrolled_only`` source: its event code (``None``: no guest
        page) and what guests may do (download their photos, browse every photo). Not personal
        data, but audited (``audit_as``)."""
        with self.session() as session, session.begin():
            row = session.scalar(select(SourceRow).where(SourceRow.name == name))
            if row is None:
                raise NotFoundError(f"no source named {name!r}; register it with `lethe source add`")
            if row.mode != "enrolled_only":
                raise LawfulBasisError(
                    f"source {name!r} indexes all faces: a guest page needs an enrolled_only source, "
                    "where only the faces of people who consented are stored"
                )
            row.event_code, row.guest_downloads, row.guest_browse = event_code, downloads, browse
            self._audit(
                session,
                audit_as.with_details(
                    source_id=row.id, enabled=event_code is not None, downloads=downloads, browse=browse
                ),
            )
            session.flush()
            return _source(row)

    def source_counts(self) -> dict[int, tuple[int, int]]:
        """source id -> (images, faces)."""
        with self.session() as session:
            image_rows = session.execute(
                select(ImageRow.source_id, func.count()).group_by(ImageRow.source_id)
            ).all()
            face_rows = session.execute(
                select(ImageRow.source_id, func.count(FaceRow.id))
                .join(FaceRow, FaceRow.image_id == ImageRow.id)
                .group_by(ImageRow.source_id)
            ).all()
        images: dict[int, int] = {int(sid): int(n) for sid, n in image_rows}
        faces: dict[int, int] = {int(sid): int(n) for sid, n in face_rows}
        return {sid: (int(images.get(sid, 0)), int(faces.get(sid, 0))) for sid in images}

    # -- images and faces ------------------------------------------------------------------------

    def known_hashes(self, source_id: int, hashes: Iterable[str]) -> set[str]:
        """Hashes already ingested for the source (with faces, or noted as holding none), or erased
        from any source (tombstones hold everywhere: an erased photo offered to another source stays
        out too)."""
        return self._hashes_found(
            hashes,
            lambda chunk: [
                select(ImageRow.sha256).where(ImageRow.source_id == source_id, ImageRow.sha256.in_(chunk)),
                select(FacelessImageRow.sha256).where(
                    FacelessImageRow.source_id == source_id, FacelessImageRow.sha256.in_(chunk)
                ),
                select(ErasedImageRow.sha256).where(ErasedImageRow.sha256.in_(chunk)),
            ],
        )

    def erased_hashes(self, hashes: Iterable[str]) -> set[str]:
        """Of ``hashes``, those of photos erased from any source (their tombstones)."""
        return self._hashes_found(
            hashes, lambda chunk: [select(ErasedImageRow.sha256).where(ErasedImageRow.sha256.in_(chunk))]
        )

    def _hashes_found(
        self, hashes: Iterable[str], queries: Callable[[list[str]], list[Select[tuple[str]]]]
    ) -> set[str]:
        """The hashes the ``queries`` of each chunk of 500 (a bound on SQL parameters) find."""
        wanted = list(set(hashes))
        found: set[str] = set()
        with self.session() as session:
            for start in range(0, len(wanted), 500):
                for query in queries(wanted[start : start + 500]):
                    found.update(session.scalars(query))
        return found

    def checkpoint(self) -> None:
        """Make the rows deleted so far physically gone from the database files: SQLite's
        write-ahead log is checkpointed and truncated, PostgreSQL's tables holding personal data are
        rewritten (``VACUUM FULL``). See :func:`lethe.catalog.dialects.purge`."""
        dialects.purge(self.database)

    def add_images(
        self,
        source_id: int,
        items: Sequence[tuple[ImageMeta, Sequence[FaceRecord]]],
        *,
        detector: str,
        embedder: str,
        model_sha256: str,
        crop_path_for: Callable[[int], str],
        audit_as: AuditRecord,
        before_commit: Callable[[list[tuple[int, FaceRecord]]], None] | None = None,
        faceless: Sequence[str] = (),
        links: Callable[[Session, list[tuple[int, FaceRecord]]], None] | None = None,
    ) -> list[tuple[int, list[int]]]:
        """Insert images with their faces in one transaction; returns (image id, face ids) per item.
        ``faceless``: hashes of photos with no face to store, noted in the same transaction with no
        row of their own (no path: :class:`~lethe.catalog.tables.FacelessImageRow`).

        ``crop_path_for(face_id) -> str`` names where each face's crop is; ``before_commit`` gets
        every new (face id, face) once the ids are known and before the commit: the engine writes
        the crops there, so a committed face always has its crop (an exception rolls back);
        ``links`` gets them with the session, to write rows that refer to the new faces (the
        consents they matched) in the same transaction.
        Images whose hash is already present for the source are skipped (empty face list, id -1),
        also when another process stores the same photo at the same time.
        """
        created = now_utc()
        results: list[tuple[int, list[int]]] = []
        keys = self._keys()
        keys.ensure(source_id)  # before the write transaction: a new key is committed on its own
        with self.session() as session, session.begin():
            # Writers queue on the audit head first (PostgreSQL; SQLite has one writer at a time):
            # concurrent ingests then never wait on each other's photos in opposite orders.
            audit_log.lock_head(session)
            insert_image = dialects.insert_ignoring_duplicates(
                self.database.dialect.name, ImageRow, "source_id", "sha256"
            ).returning(ImageRow.id)
            for meta, faces in items:
                image_id = session.scalar(
                    insert_image.values(
                        source_id=source_id,
                        sha256=meta.sha256,
                        uri=meta.uri,
                        source_url=meta.source_url,
                        captured_at=meta.captured_at,
                        caption=meta.caption,
                        width=meta.width,
                        height=meta.height,
                        size_bytes=meta.size_bytes,
                        format=meta.format,
                        ingested_at=created,
                    )
                )
                if image_id is None:
                    results.append((-1, []))
                    continue
                face_rows = _insert_faces(
                    session,
                    keys,
                    source_id,
                    image_id,
                    meta.sha256,
                    faces,
                    detector=detector,
                    embedder=embedder,
                    model_sha256=model_sha256,
                    crop_path_for=crop_path_for,
                    at=created,
                )
                results.append((image_id, [r.id for r in face_rows]))
            if faceless:
                insert_faceless = dialects.insert_ignoring_duplicates(
                    self.database.dialect.name, FacelessImageRow, "source_id", "sha256"
                )
                session.execute(insert_faceless, [{"source_id": source_id, "sha256": h} for h in faceless])
            new = [r for r in results if r[0] >= 0]
            self._audit(
                session,
                audit_as.with_details(
                    source_id=source_id,
                    images=len(new),
                    faces=sum(len(f) for _, f in new),
                    image_ids=[i for i, _ in new],
                    no_face=len(faceless),
                ),
            )
            if before_commit is not None:
                new_faces = [
                    (face_id, face)
                    for (_, face_ids), (_, faces) in zip(results, items, strict=True)
                    for face_id, face in zip(face_ids, faces, strict=False)  # none for a skipped photo
                ]
                if links is not None:
                    links(session, new_faces)
                before_commit(new_faces)
        return results

    def add_faces(
        self,
        image_id: int,
        faces: Sequence[FaceRecord],
        *,
        detector: str,
        embedder: str,
        model_sha256: str,
        crop_path_for: Callable[[int], str],
        audit_as: AuditRecord,
        before_commit: Callable[[list[tuple[int, FaceRecord]]], None],
        links: Callable[[Session, list[tuple[int, FaceRecord]]], None] | None = None,
        also: Callable[[Session], None] | None = None,
    ) -> list[int]:
        """Insert faces found later in a photo already stored (a consent's scan); the new face ids.
        The hooks are :meth:`add_images`'s; ``also`` writes more in the same transaction."""
        created = now_utc()
        keys = self._keys()
        with self.session() as session, session.begin():
            audit_log.lock_head(session)
            image = session.get(ImageRow, image_id)
            if image is None:
                raise NotFoundError(f"no photo {image_id}")
            keys.ensure(image.source_id)
            rows = _insert_faces(
                session, keys, image.source_id, image.id, image.sha256, faces, detector=detector,
                embedder=embedder, model_sha256=model_sha256, crop_path_for=crop_path_for, at=created,
            )  # fmt: skip
            new_faces = [(row.id, face) for row, face in zip(rows, faces, strict=True)]
            self._audit(
                session,
                audit_as.with_details(source_id=image.source_id, image_id=image.id, faces=len(rows)),
            )
            if links is not None:
                links(session, new_faces)
            if also is not None:
                also(session)
            if new_faces:
                before_commit(new_faces)
        return [row.id for row in rows]

    def count_faces(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count(FaceRow.id))) or 0)

    def count_images(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count(ImageRow.id))) or 0)

    def _of_model(self, query: Any) -> Any:
        return (
            query if self.template_model is None else query.where(FaceRow.model_sha256 == self.template_model)
        )

    def face_ids(self) -> np.ndarray:
        """Every face id of the template model, sorted (int64)."""
        with self.session() as session:
            ids = session.scalars(self._of_model(select(FaceRow.id)).order_by(FaceRow.id)).all()
        return np.asarray(ids, dtype=np.int64)

    def iter_embeddings(self, batch: int = 50_000) -> Iterator[tuple[np.ndarray, Embedding]]:
        """Yield (ids, plaintext vectors) in id order, ``batch`` rows at a time.

        Decryption is cheap next to the read: 100k templates in 0.6 s (0.34 s of it the SELECT), so
        about 6 s per million faces on one core."""
        keys = self._keys()
        last = 0
        with self.session() as session:
            while True:
                rows = session.execute(
                    self._of_model(_sealed_templates())
                    .where(FaceRow.id > last)
                    .order_by(FaceRow.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                yield ids, _open_templates(keys, rows)
                last = int(ids[-1])

    def face_templates(self, face_ids: Iterable[int], *, any_model: bool = False) -> dict[int, Embedding]:
        """face id -> plaintext template (float32); faces that do not exist, or whose template another
        model made (unless ``any_model``), are left out.

        Raises :class:`~lethe.errors.KeyShreddedError` when a face's source key was shredded."""
        keys = self._keys()
        wanted = sorted({int(f) for f in face_ids})
        out: dict[int, Embedding] = {}
        with self.session() as session:
            for start in range(0, len(wanted), 500):
                rows = session.execute(
                    (_sealed_templates() if any_model else self._of_model(_sealed_templates())).where(
                        FaceRow.id.in_(wanted[start : start + 500])
                    )
                ).all()
                if rows:
                    out.update(zip((int(r[0]) for r in rows), _open_templates(keys, rows), strict=True))
        return out

    def photos_of_other_models(self, after_image_id: int, limit: int) -> list[StaleImage]:
        """Photos (by id, after ``after_image_id``) holding faces whose template another model than
        the template model made: what ``lethe index reembed`` moves, ``limit`` photos at a time."""
        if self.template_model is None:
            raise CatalogError("no template model set")
        stale = FaceRow.model_sha256 != self.template_model
        box = (FaceRow.box_left, FaceRow.box_top, FaceRow.box_right, FaceRow.box_bottom)
        with self.session() as session:
            image_ids = session.scalars(
                select(FaceRow.image_id)
                .where(stale, FaceRow.image_id > after_image_id)
                .group_by(FaceRow.image_id)
                .order_by(FaceRow.image_id)
                .limit(limit)
            ).all()
            rows = session.execute(
                select(ImageRow.id, ImageRow.uri, ImageRow.sha256, ImageRow.source_id, FaceRow.id, *box)
                .join(FaceRow, FaceRow.image_id == ImageRow.id)
                .where(stale, ImageRow.id.in_(image_ids))
                .order_by(ImageRow.id, FaceRow.id)
            ).all()
        photos: dict[int, StaleImage] = {}
        for image_id, uri, sha, source_id, face_id, *corners in rows:
            photo = photos.setdefault(
                image_id, StaleImage(int(image_id), str(uri), str(sha), int(source_id), {})
            )
            photo.faces[int(face_id)] = Box(*(int(c) for c in corners))
        return list(photos.values())

    def replace_templates(
        self,
        photo: StaleImage,
        templates: dict[int, Embedding],
        *,
        embedder: str,
        audit_as: AuditRecord,
    ) -> None:
        """Store the template model's templates for faces of ``photo`` (one transaction)."""
        if self.template_model is None:
            raise CatalogError("no template model set")
        keys = self._keys()
        with self.session() as session, session.begin():
            for face_id, vector in templates.items():
                row = session.get(FaceRow, face_id)
                if row is None:
                    continue  # erased meanwhile
                plain = np.asarray(vector, dtype=np.float32).tobytes()
                row.embedding = keys.seal_template(photo.source_id, photo.sha256, face_id, plain)
                row.model_sha256 = self.template_model
                row.embedder = embedder
            self._audit(session, audit_as)

    def face_source_ids(self, face_ids: Iterable[int]) -> dict[int, int]:
        """face id -> source id; faces that do not exist are left out."""
        wanted = sorted({int(f) for f in face_ids})
        out: dict[int, int] = {}
        with self.session() as session:
            for start in range(0, len(wanted), 500):
                out.update(
                    (int(fid), int(sid))
                    for fid, sid in session.execute(
                        select(FaceRow.id, ImageRow.source_id)
                        .join(ImageRow, FaceRow.image_id == ImageRow.id)
                        .where(FaceRow.id.in_(wanted[start : start + 500]))
                    ).all()
                )
        return out

    def faces(self, face_ids: Sequence[int]) -> dict[int, FaceInfo]:
        if not face_ids:
            return {}
        with self.session() as session:
            rows = session.execute(
                select(FaceRow, ImageRow.uri, ImageRow.source_url, SourceRow.name)
                .join(ImageRow, FaceRow.image_id == ImageRow.id)
                .join(SourceRow, ImageRow.source_id == SourceRow.id)
                .where(FaceRow.id.in_(list(face_ids)))
            ).all()
        return {
            face.id: FaceInfo(
                face_id=face.id,
                image_id=face.image_id,
                image_uri=uri,
                source_name=source_name,
                source_url=source_url,
                box=Box(face.box_left, face.box_top, face.box_right, face.box_bottom),
                crop_path=face.crop_path,
                quality=face.quality,
                detector_score=face.detector_score,
            )
            for face, uri, source_url, source_name in rows
        }

    def face_sources(self) -> tuple[np.ndarray, np.ndarray]:
        """Every face id of the template model (sorted) and the id of its source, as two aligned int64
        arrays (one query:
        what an index rebuild stores beside the vectors)."""
        with self.session() as session:
            rows = session.execute(
                self._of_model(
                    select(FaceRow.id, ImageRow.source_id).join(ImageRow, FaceRow.image_id == ImageRow.id)
                ).order_by(FaceRow.id)
            ).all()
        pairs = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])

    def face_ids_of_sources(self, source_ids: Sequence[int]) -> np.ndarray:
        with self.session() as session:
            ids = session.scalars(
                select(FaceRow.id)
                .join(ImageRow, FaceRow.image_id == ImageRow.id)
                .where(ImageRow.source_id.in_(list(source_ids)))
            ).all()
        return np.asarray(ids, dtype=np.int64)


def _insert_faces(
    session: Session,
    keys: Sealer,
    source_id: int,
    image_id: int,
    image_sha256: str,
    faces: Sequence[FaceRecord],
    *,
    detector: str,
    embedder: str,
    model_sha256: str,
    crop_path_for: Callable[[int], str],
    at: datetime,
) -> list[FaceRow]:
    """Face rows of one photo, their templates sealed once their ids (part of the AAD) are known."""
    face_rows = [
        FaceRow(
            image_id=image_id,
            box_left=f.box.left,
            box_top=f.box.top,
            box_right=f.box.right,
            box_bottom=f.box.bottom,
            landmarks=[list(p) for p in f.landmarks],
            detector=detector,
            detector_score=f.detector_score,
            quality=f.quality,
            embedder=embedder,
            model_sha256=model_sha256,
            embedding=b"",  # sealed below, once the face id (part of its AAD) is known
            crop_path="",
            created_at=at,
        )
        for f in faces
    ]
    session.add_all(face_rows)
    session.flush()
    for row, f in zip(face_rows, faces, strict=True):
        vector = np.asarray(f.embedding, dtype=np.float32).tobytes()
        row.embedding = keys.seal_template(source_id, image_sha256, row.id, vector)
        row.crop_path = crop_path_for(row.id)
    return face_rows
