"""The catalog's contract, run on every database it supports: SQLite and PostgreSQL behave the same,
from the migrations to concurrent writers and the purge of deleted rows.

The PostgreSQL cases run on the test server of ``pg_server.py`` and skip, saying why, without one.
These tests choose their databases themselves, so they are not marked ``storage`` (the second,
PostgreSQL pass of ``make test`` would only repeat them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, inspect, select

from lethe.catalog import Catalog, ImageMeta
from lethe.catalog.dialects import sqlalchemy_url
from lethe.catalog.tables import AuditEntryRow, AuditHeadRow, Base, FaceRow
from lethe.engine import Lethe
from lethe.errors import CatalogError, ConflictError, LetheError, NotFoundError
from lethe.keyring import KeyRing
from lethe.model_ids import SFACE_SHA256
from lethe.privacy import audit
from lethe.privacy.audit import AuditRecord
from lethe.types import Box, FaceRecord, l2_normalise

from conftest import catalog_files, child_env, consent_source, make_settings, postgres_catalog

BACKENDS = ["sqlite", "postgresql"]
SOURCE_ADDED = audit.record("tester", "source.add", {})
TESTS = Path(__file__).resolve().parent
LETHE = Path(sys.executable).with_name("lethe")


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty catalog database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    return postgres_catalog(tmp_path / "catalog")


def open_catalog(url: str, keys: Path) -> Catalog:
    catalog = Catalog(url)
    catalog.attach_sealer(KeyRing(keys, catalog))
    return catalog


@pytest.fixture
def catalog(url: str, tmp_path: Path) -> Iterator[Catalog]:
    catalog = open_catalog(url, tmp_path / "keys")
    yield catalog
    catalog.close()


def photo(number: int) -> tuple[ImageMeta, list[FaceRecord]]:
    """A made-up photo with 1 to 3 faces, the same for the same number (in any process)."""
    rng = np.random.default_rng(number)
    meta = ImageMeta(
        sha256=hashlib.sha256(f"photo {number}".encode()).hexdigest(),
        uri=f"/photos/{number}.jpg",
        width=640,
        height=480,
        size_bytes=10_000 + number,
        format="JPEG",
        source_url=f"https://example.org/{number}" if number % 2 else None,
        captured_at=datetime(2024, 5, 1, 12, number % 60, tzinfo=UTC),
    )
    faces = [
        FaceRecord(
            box=Box(60 * i, 20, 60 * i + 50, 70),
            detector_score=0.99,
            landmarks=tuple((60.0 * i + k, 40.0 + k) for k in range(5)),
            quality=0.5 + 0.1 * i,
            embedding=l2_normalise(rng.normal(size=128))[0],
            crop_jpeg=b"",
        )
        for i in range(1 + number % 3)
    ]
    return meta, faces


def store(catalog: Catalog, source_id: int, numbers: list[int]) -> list[tuple[int, list[int]]]:
    return catalog.add_images(
        source_id,
        [photo(n) for n in numbers],
        detector="test",
        embedder="test",
        model_sha256=SFACE_SHA256,
        crop_path_for=lambda face_id: f"{face_id}.sealed",
        audit_as=AuditRecord("tester", "ingest", {}),
    )


def all_templates(catalog: Catalog) -> dict[int, np.ndarray]:
    return {
        int(i): v
        for ids, vectors in catalog.iter_embeddings(batch=7)
        for i, v in zip(ids, vectors, strict=True)
    }


# -- schema -----------------------------------------------------------------------------------------


def test_migrations_match_the_orm_tables(url: str) -> None:
    catalog = Catalog(url)
    try:
        with catalog.database.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        catalog.close()
    assert diff == []


def test_reopening_a_migrated_catalog_is_a_noop(url: str) -> None:
    first = Catalog(url)
    with first.database.connect() as connection:
        tables = sorted(inspect(connection).get_table_names())
    first.close()
    catalog = Catalog(url)
    try:
        with catalog.database.connect() as connection:
            version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            assert sorted(inspect(connection).get_table_names()) == tables
    finally:
        catalog.close()
    assert version is not None and "face" in tables


def test_plain_postgresql_urls_mean_psycopg() -> None:
    assert (
        sqlalchemy_url("postgresql://u:p%40ss@db:5433/lethe") == "postgresql+psycopg://u:p%40ss@db:5433/lethe"
    )
    assert sqlalchemy_url("postgres://u@db/lethe") == "postgresql+psycopg://u@db/lethe"
    assert sqlalchemy_url("postgresql+psycopg://u@db/lethe") == "postgresql+psycopg://u@db/lethe"
    assert sqlalchemy_url("sqlite:////tmp/c.sqlite3") == "sqlite:////tmp/c.sqlite3"


def test_an_unreachable_server_is_one_error_without_the_password() -> None:
    with pytest.raises(CatalogError, match="cannot open catalog") as caught:
        Catalog("postgresql://lethe:s3cret-pw@127.0.0.1:1/lethe")
    assert "s3cret-pw" not in str(caught.value)


# -- behaviour --------------------------------------------------------------------------------------


def test_sources_are_unique_and_found_by_name(catalog: Catalog) -> None:
    added = catalog.add_source(consent_source("events", "FR"), audit_as=SOURCE_ADDED)
    catalog.add_source(consent_source("archive", "DE"), audit_as=SOURCE_ADDED)
    with pytest.raises(ConflictError, match="already exists"):
        catalog.add_source(consent_source("events", "IT"), audit_as=SOURCE_ADDED)
    with pytest.raises(NotFoundError):
        catalog.source("nope")
    found = catalog.source("events")
    assert found == added and found.created_at.tzinfo is not None
    assert [s.name for s in catalog.sources()] == ["archive", "events"]
    # Every write is audited; the refused one rolled back with its entry.
    assert catalog.verify_audit().ok and catalog.verify_audit().entries == 2


def test_images_and_faces_round_trip_and_duplicates_are_skipped(catalog: Catalog) -> None:
    source_id = catalog.add_source(consent_source(), audit_as=SOURCE_ADDED).id
    first = store(catalog, source_id, [1, 2, 3, 2])
    assert [image_id >= 0 for image_id, _ in first] == [True, True, True, False]
    assert [len(faces) for _, faces in first] == [2, 3, 1, 0]
    again = store(catalog, source_id, [3, 4])
    assert again[0] == (-1, []) and again[1][0] > max(i for i, _ in first)
    assert catalog.count_images() == 4 and catalog.count_faces() == 2 + 3 + 1 + 2
    face_ids = [f for _, faces in first + again for f in faces]
    assert catalog.face_ids().tolist() == sorted(face_ids)
    assert catalog.source_counts() == {source_id: (4, 8)}
    assert catalog.known_hashes(source_id, [photo(n)[0].sha256 for n in (1, 4, 5)]) == {
        photo(1)[0].sha256,
        photo(4)[0].sha256,
    }
    # Templates come back exactly, in id order, whatever the batch size.
    expected = {
        face_id: record.embedding
        for n, (_, ids) in zip([1, 2, 3, 4], [first[0], first[1], first[2], again[1]], strict=True)
        for face_id, record in zip(ids, photo(n)[1], strict=True)
    }
    templates = all_templates(catalog)
    assert list(templates) == sorted(expected)
    for face_id, vector in expected.items():
        assert np.array_equal(templates[face_id], vector)
    assert sorted(catalog.face_templates([*face_ids, 10**12])) == sorted(face_ids)
    info = catalog.faces(first[1][1])
    face = info[first[1][1][1]]
    assert (face.image_uri, face.source_name, face.source_url) == ("/photos/2.jpg", "events", None)
    assert face.box == Box(60, 20, 110, 70) and face.crop_path == f"{face.face_id}.sealed"
    assert catalog.verify_audit().ok and catalog.verify_audit().entries == 3  # the source, two batches


def test_deleted_faces_leave_no_bytes_in_the_catalog_files(catalog: Catalog, url: str) -> None:
    """Erasure's part in the catalog: after the purge (``checkpoint``) the sealed templates of the
    deleted faces are in none of the database's files, and the kept ones still are."""
    source_id = catalog.add_source(consent_source(), audit_as=SOURCE_ADDED).id
    stored = store(catalog, source_id, list(range(12)))
    face_ids = sorted(f for _, faces in stored for f in faces)
    doomed, kept = face_ids[::2], face_ids[1::2]
    with catalog.session() as session:
        rows = session.execute(select(FaceRow.id, FaceRow.embedding)).all()
    sealed = {int(face_id): bytes(blob) for face_id, blob in rows}
    if catalog.database.dialect.name == "postgresql":
        # What autovacuum does now and then: sample every column into the planner's statistics.
        with catalog.database.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    catalog.checkpoint()
    before = b"".join(catalog_files(url).values())
    assert all(sealed[f] in before for f in face_ids), "the check must see the stored bytes"
    with catalog.session() as session, session.begin():  # what an erasure deletes in the catalog
        session.execute(delete(FaceRow).where(FaceRow.id.in_(doomed)))
    catalog.checkpoint()
    after = b"".join(catalog_files(url).values())
    assert [f for f in doomed if sealed[f] in after] == []
    assert all(sealed[f] in after for f in kept)
    assert sorted(all_templates(catalog)) == kept


def test_a_naive_datetime_is_refused_with_a_catalog_error(catalog: Catalog) -> None:
    """A datetime without a zone cannot be stored as UTC: the catalog refuses it with an error of
    Lethe's tree (not SQLAlchemy's ``StatementError``), and the photo's transaction is rolled back."""
    source_id = catalog.add_source(consent_source(), audit_as=SOURCE_ADDED).id
    entries = catalog.verify_audit().entries
    meta, faces = photo(1)
    naive = dataclasses.replace(meta, captured_at=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(CatalogError, match="naive datetime") as caught:
        catalog.add_images(
            source_id,
            [(naive, faces)],
            detector="test",
            embedder="test",
            model_sha256=SFACE_SHA256,
            crop_path_for=lambda face_id: f"{face_id}.sealed",
            audit_as=AuditRecord("tester", "ingest", {}),
        )
    assert isinstance(caught.value, LetheError)
    assert catalog.count_images() == 0 and catalog.count_faces() == 0
    assert catalog.verify_audit().ok and catalog.verify_audit().entries == entries  # none for it
    assert [image_id >= 0 for image_id, _ in store(catalog, source_id, [1])] == [True]  # still usable


# -- concurrent writers -----------------------------------------------------------------------------

WRITER = r"""
import json, sys, time
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from test_catalog import open_catalog, store

url, keys, numbers, go = sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4]), Path(sys.argv[5])
catalog = open_catalog(url, keys)
source_id = catalog.source("events").id
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
new = 0
for start in range(0, len(numbers), 4):
    new += sum(image_id >= 0 for image_id, _ in store(catalog, source_id, numbers[start : start + 4]))
catalog.close()
print(json.dumps({"new": new}), flush=True)
"""


def test_concurrent_writers_store_every_photo_exactly_once(url: str, tmp_path: Path) -> None:
    """Two processes write overlapping photos, in opposite orders, into one catalog at once (no
    engine lock between them): every photo and face is stored once, nothing is lost, the audit
    chain holds, and the source key and the audit head both writers create are made once."""
    setup = open_catalog(url, tmp_path / "keys")
    setup.add_source(consent_source(), audit_as=SOURCE_ADDED)
    with setup.session() as session, session.begin():  # an empty log: the writers race to start it
        session.execute(delete(AuditEntryRow))
        session.execute(delete(AuditHeadRow))
    setup.close()
    first, second = list(range(0, 60)), list(reversed(range(30, 90)))
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(TESTS), url, str(tmp_path / "keys"), json.dumps(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (first, second)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        go.touch()
        results = [writer.communicate(timeout=120) for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    for writer, (_, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err[-3000:]
    new = [json.loads(out)["new"] for out, _ in results]
    everything = sorted(set(first) | set(second))
    assert sum(new) == len(everything)
    catalog = open_catalog(url, tmp_path / "keys")
    try:
        assert catalog.count_images() == len(everything)
        expected = sorted(r.embedding.tobytes() for n in everything for r in photo(n)[1])
        assert sorted(v.tobytes() for v in all_templates(catalog).values()) == expected
        audit = catalog.verify_audit()
        assert audit.ok and audit.entries == 30
    finally:
        catalog.close()


def test_two_ingest_commands_at_once_store_every_photo_once(
    url: str, tmp_path: Path, fixtures_dir: Path
) -> None:
    """`lethe ingest` twice at once, on overlapping folders of real photos, into one data folder
    and catalog: every photo once, every face indexed once, one audit chain."""
    people = {"a": ["joe_biden", "rose_leslie"], "b": ["rose_leslie", "tom_cruise"]}
    for folder, names in people.items():
        for name in names:
            shutil.copytree(fixtures_dir / "identities" / name, tmp_path / folder / name)
    data = tmp_path / "data"
    data.mkdir()
    settings = make_settings(data, catalog_url=url)
    with Lethe(settings) as lethe:
        lethe.add_source(consent_source())
    env = child_env()
    env.update(LETHE_DATA_DIR=str(data), LETHE_CATALOG_URL=url, LETHE_WORKERS="1")
    commands = [
        subprocess.Popen(
            [str(LETHE), "ingest", "events", str(tmp_path / folder), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for folder in people
    ]
    results = [command.communicate(timeout=300) for command in commands]
    for command, (_, err) in zip(commands, results, strict=True):
        assert command.returncode == 0, err[-3000:]
    reports = [json.loads(out) for out, _ in results]
    files = [p for folder in people for p in sorted((tmp_path / folder).rglob("*")) if p.is_file()]
    photos = {p.read_bytes() for p in files}
    assert sum(r["images"] for r in reports) == len(photos)
    assert sum(r["images"] + r["skipped"] for r in reports) == len(files)
    assert all(r["errors"] == [] for r in reports)
    with Lethe(settings) as lethe:
        assert lethe.catalog.count_images() == len(photos)
        assert sorted(lethe.index.ids().tolist()) == lethe.catalog.face_ids().tolist()
        assert lethe.catalog.count_faces() == sum(r["faces"] for r in reports)
        assert lethe.verify_audit().ok
