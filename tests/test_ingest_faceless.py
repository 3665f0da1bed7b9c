"""Photos with no face leave no row (security review, section 21: a home-folder walk stored 79 icons
as catalog rows, each with its file path). Ingest keeps of such a photo only its content hash per
source, so that the next run over the folder skips it without decoding it again; the report counts
them (``no_face``) among its new ``images``; catalogs that stored them as rows before are cleaned up
by migration 0013."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from lethe.catalog import Catalog
from lethe.catalog.dialects import sqlalchemy_url
from lethe.engine import Lethe

from conftest import catalog_files, catalog_url, consent_source, make_settings, postgres_catalog

pytestmark = pytest.mark.storage

FACE_PHOTO = "identities/joe_biden/biden.jpg"


def home_walk(fixtures_dir: Path, folder: Path) -> tuple[Path, list[str]]:
    """A folder like a home-folder walk: the fixtures' photos with no face (under names no fixture
    uses) beside one photo of a person. (folder, the no-face photos' names)."""
    folder.mkdir()
    names = []
    for photo in sorted((fixtures_dir / "no_face").iterdir()):
        name = f"icon-{photo.stem}-x7q{photo.suffix}"
        shutil.copy(photo, folder / name)
        names.append(name)
    shutil.copy(fixtures_dir / FACE_PHOTO, folder / "person.jpg")
    return folder, names


def test_a_photo_with_no_face_leaves_no_row_and_no_path_and_is_skipped_next_time(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    folder, icons = home_walk(fixtures_dir, tmp_path / "home")
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source())
        report = lethe.ingest("events", folder, actor="operator")
        assert report.errors == []
        counted = report.as_dict()
        assert (counted["images"], counted["faces"], counted["no_face"], counted["skipped"]) == (
            len(icons) + 1,
            1,
            len(icons),
            0,
        )
        assert lethe.catalog.count_images() == 1  # the person's photo only
        (entry,) = lethe.audit_entries(action="ingest", limit=5)
        assert (entry.details["images"], entry.details["no_face"]) == (1, len(icons))

        # Nothing in the catalog's files names an icon (the finding: their paths were rows).
        files = catalog_files(catalog_url(data))
        for name in icons:
            assert not any(name.encode() in content for content in files.values()), name
        assert any(b"person.jpg" in content for content in files.values())  # the check can see a path

        # The next run skips them by their hash, without decoding them again.
        again = lethe.ingest("events", folder, actor="operator")
        assert (again.images, again.faces, again.no_face, again.skipped) == (0, 0, 0, len(icons) + 1)

        # Another source is another collection: its own record of what it holds.
        lethe.add_source(consent_source("press", "DE"))
        other = lethe.ingest("press", folder, actor="operator")
        assert (other.images, other.faces, other.no_face, other.skipped) == (len(icons) + 1, 1, len(icons), 0)
        assert lethe.catalog.count_images() == 2


# -- migration 0013 ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    return postgres_catalog(tmp_path / "catalog")


def _migrate(url: str, revision: str) -> None:
    engine = sa.create_engine(sqlalchemy_url(url))
    config = Config()
    config.set_main_option("script_location", str(resources.files("lethe.catalog") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_the_migration_moves_rows_of_photos_with_no_face_to_their_hashes(url: str) -> None:
    """A catalog of before 0013 holding two photos, one with a face and one without (the icons):
    after the upgrade the photo with no face has no row (no path) but its hash, the other is
    untouched."""
    _migrate(url, "0011")
    engine = sa.create_engine(sqlalchemy_url(url))
    tables = sa.MetaData()
    tables.reflect(engine, only=["source", "image", "face"])
    source, image, face = (tables.tables[n] for n in ("source", "image", "face"))
    at = datetime(2026, 12, 1, tzinfo=UTC)
    shas = [hashlib.sha256(n.encode()).hexdigest() for n in ("person", "icon")]
    with engine.begin() as connection:
        source_id = connection.execute(
            sa.insert(source).returning(source.c.id),
            {"name": "home", "lawful_basis": "consent", "art9_condition": "explicit_consent",
             "purpose": "a home folder", "jurisdiction": "FR", "retention_days": 30, "status": "active",
             "created_at": at},
        ).scalar_one()  # fmt: skip
        ids = [
            connection.execute(
                sa.insert(image).returning(image.c.id),
                {"source_id": source_id, "sha256": sha, "uri": f"/home/u/{name}", "width": 10, "height": 10,
                 "size_bytes": 100, "format": "PNG", "ingested_at": at},
            ).scalar_one()
            for sha, name in zip(shas, ("person.jpg", "icon-favicon.png"), strict=True)
        ]  # fmt: skip
        connection.execute(
            sa.insert(face),
            {"image_id": ids[0], "box_left": 0, "box_top": 0, "box_right": 5, "box_bottom": 5,
             "landmarks": [[1.0, 1.0]] * 5, "detector": "yunet", "detector_score": 0.99, "quality": 0.5,
             "embedder": "sface", "model_sha256": "0" * 64, "embedding": b"sealed", "crop_path": "1.sealed",
             "created_at": at},
        )  # fmt: skip
    engine.dispose()

    catalog = Catalog(url)  # migrates to the head
    try:
        with catalog.database.connect() as connection:
            rows = connection.execute(sa.text("SELECT sha256, uri FROM image")).all()
            faceless = connection.execute(sa.text("SELECT source_id, sha256 FROM faceless_image")).all()
        assert [tuple(r) for r in rows] == [(shas[0], "/home/u/person.jpg")]
        assert [tuple(r) for r in faceless] == [(source_id, shas[1])]
        assert catalog.known_hashes(source_id, shas) == set(shas)  # a re-ingest skips both
    finally:
        catalog.close()
