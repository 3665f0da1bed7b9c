"""Crash safety: a Lethe process SIGKILLed at random points of an ingest, an index rebuild and an
erasure loses nothing, duplicates nothing and brings back nothing (see ``crash_harness.py``).

One point per operation here (each kind of kill, and a second kill during a restart, at least
once); ``make soak`` runs ``bench/crash_soak.py``, which kills each operation at many points of
both kinds, a third of them twice. The points are drawn from a seeded generator
(``LETHE_TEST_CRASH_SEED``, default fixed) as fractions of the operation's persistence events and
of its duration, so a failure reproduces."""

from __future__ import annotations

import fcntl
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from lethe.engine import Lethe

import crash_harness as harness
from conftest import backend_settings, consent_source, copy_gallery, make_settings

pytestmark = pytest.mark.storage

SEED = int(os.environ.get("LETHE_TEST_CRASH_SEED", "2026"))
#: The kind of kill each operation gets here, and whether its restart is killed again: the ingest
#: (crop journal, batches) before a persistence event and again while it recovers, the rebuild at
#: a random time (inside FAISS's or SQLite's C code too), the erasure before a persistence event.
SLICE = {"ingest": ("event", True), "rebuild": ("timed", False), "erase": ("event", False)}


def settings_for(data: Path) -> dict[str, object]:
    return {"workers": 1, **backend_settings(data)}


def copier(gallery: Path) -> harness.Copier:
    def copy(base: Path, workdir: Path) -> Path:
        assert base == gallery
        return copy_gallery(base, workdir)

    return copy


@pytest.fixture(scope="module")
def empty_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the source declared and nothing ingested."""
    data = tmp_path_factory.mktemp("empty") / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source())
    return data


def _biden_faces(gallery: Path, fixtures_dir: Path) -> list[int]:
    with Lethe(make_settings(gallery)) as lethe:
        infos = lethe.catalog.faces(lethe.catalog.face_ids().tolist())
    root = str((fixtures_dir / "identities" / "joe_biden").resolve())
    return sorted(f for f, info in infos.items() if info.image_uri.startswith(root))


@pytest.fixture(scope="module")
def setups(
    tmp_path_factory: pytest.TempPathFactory, gallery: Path, empty_folder: Path, fixtures_dir: Path
) -> Callable[[str], harness.Setup]:
    made: dict[str, harness.Setup] = {}

    def setup(op: str) -> harness.Setup:
        if op not in made:
            workdir = tmp_path_factory.mktemp(f"reference-{op}")
            if op == "ingest":
                # Commits every 4 photos: several batches, so kills land between and inside them.
                operation = harness.Operation("ingest", target=fixtures_dir, commit_every=4)
                made[op] = harness.prepare(
                    operation, empty_folder, workdir, settings_for, copier(empty_folder)
                )
            elif op == "rebuild":
                operation = harness.Operation("rebuild")
                made[op] = harness.prepare(operation, gallery, workdir, settings_for, copier(gallery))
            else:
                operation = harness.Operation("erase", faces=_biden_faces(gallery, fixtures_dir))
                assert len(operation.faces) >= 2
                made[op] = harness.prepare(operation, gallery, workdir, settings_for, copier(gallery))
        return made[op]

    return setup


def _points() -> list[tuple[str, str, float, float | None]]:
    """(operation, kind, where in it, where in the restart for a second kill or None)."""
    assert set(SLICE) == set(harness.OPERATIONS)
    rng = random.Random(SEED)
    points = []
    for op in harness.OPERATIONS:
        kind, twice = SLICE[op]
        fraction = rng.random()
        points.append((op, kind, fraction, rng.random() if twice else None))
    return points


def _name(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize(("op", "kind", "fraction", "again"), _points(), ids=_name)
def test_killed_at_a_random_point_nothing_is_lost_duplicated_or_resurrected(
    setups: Callable[[str], harness.Setup],
    tmp_path: Path,
    op: str,
    kind: str,
    fraction: float,
    again: float | None,
) -> None:
    setup = setups(op)
    events = len(setup.events)
    assert events, "the operation has persistence events to crash at"
    second = None if again is None else 1 + int(again * events)  # counted from the restart's open
    if kind == "event":
        at = 1 + int(fraction * events)
        result = harness.trial(setup, tmp_path, kill_at=at, second_kill_at=second)
        assert result.outcome.killed, f"not killed at event {at} of {events}"
    else:
        result = harness.trial(setup, tmp_path, delay=fraction * setup.seconds, second_kill_at=second)
    where = f"{result.outcome.point} {result.outcome.event} in {result.outcome.where}"
    if result.second is not None:
        where += f", then at {result.second.point} {result.second.event} in {result.second.where}"
    assert result.after_kill == [], f"after a kill at {where}: {result.after_kill}"
    assert result.after_rerun == [], f"after a kill at {where} and a rerun: {result.after_rerun}"


def test_killed_between_writing_crops_and_committing_their_faces(
    setups: Callable[[str], harness.Setup], tmp_path: Path
) -> None:
    """Found by the harness: crops were written after their faces committed, so a kill between
    left faces without crops for good (a rerun skips stored photos). Crops now come first, under
    a journal the next open uses to delete the crops of faces that never committed."""
    setup = setups("ingest")
    first_crop = setup.events.index("os.rename crops/<face>.tmp") + 1
    result = harness.trial(setup, tmp_path, kill_at=first_crop + 1)  # one crop in place, no commit
    assert result.outcome.killed and result.outcome.where.startswith("storage.atomic_write")
    assert result.after_kill == [] and result.after_rerun == []


def test_open_cleans_up_after_a_crash_only_when_nobody_writes(
    setups: Callable[[str], harness.Setup], tmp_path: Path
) -> None:
    """What a killed writer leaves (a crop journal naming faces never committed, their crops, a
    half-written journal, an index temporary file) is deleted on open — but not while another
    process holds the write lock: then it is that writer's work in progress."""
    setup = setups("rebuild")
    data = setup.copy(setup.base, tmp_path)
    with harness.open_engine(data, setup.settings) as lethe:
        stored = lethe.catalog.face_ids().tolist()
        ghost = max(stored) + 1
        lethe.crops.begin([ghost, stored[0]])
        lethe.crops.write(ghost, b"\xff\xd8 not committed", source_id=1)
        lethe.crops.settle()
        lethe.crops.begin([ghost, stored[0]])
        index_dir = data / "index"
        leftovers = [
            index_dir / f".{name}.x1.tmp" for name in ("faces.faiss", "faces.meta.json", "milvus.meta.json")
        ] + [lethe.crops.root / ".pending.journal.x2.tmp"]
        for path in leftovers:
            path.write_bytes(b"half")
    holder = os.open(data / ".write.lock", os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with harness.open_engine(data, setup.settings) as lethe:  # a writer is alive: hands off
            assert lethe.crops.path(ghost).exists() and all(p.exists() for p in leftovers)
    finally:
        os.close(holder)
    with harness.open_engine(data, setup.settings) as lethe:
        assert not lethe.crops.path(ghost).exists() and not lethe.crops.pending()
        assert lethe.crops.path(stored[0]).exists()  # its face committed: kept
        remaining = sorted(p.name for p in leftovers if p.exists())
        # each backend cleans its own files; the other backend's names are none of its business
        faiss_files = [".faces.faiss.x1.tmp", ".faces.meta.json.x1.tmp"]
        milvus = lethe.index.stats()["backend"] == "milvus"
        assert remaining == (faiss_files if milvus else [".milvus.meta.json.x1.tmp"])
        for name in remaining:
            (index_dir / name).unlink()
        assert harness.check(lethe, data, setup.expected, finished=True) == []


def test_the_harness_sees_a_broken_invariant(setups: Callable[[str], harness.Setup], tmp_path: Path) -> None:
    """The checks can fail: a crop deleted behind Lethe's back and a vector removed are reported."""
    setup = setups("rebuild")
    data = setup.copy(setup.base, tmp_path)
    with harness.open_engine(data, setup.settings) as lethe:
        victim, other = lethe.catalog.face_ids().tolist()[:2]
        lethe.crops.path(victim).unlink()
        (lethe.crops.path(other).parent / f".{other}.sealed.x.tmp").write_bytes(b"half")
        problems = harness.check(lethe, data, setup.expected, finished=True)
    assert "1 faces without a crop" in problems
    assert any(p.startswith("left over:") for p in problems)
