"""The service's scheduled maintenance: retention purges and pending order deletions on a timer."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from lethe.api.maintenance import Maintenance, run_once
from lethe.catalog.tables import ImageRow
from lethe.engine import Lethe

from conftest import catalog_sql, copy_gallery, make_settings

pytestmark = pytest.mark.storage


def _age_photos(data: Path, days: int, names: tuple[str, ...]) -> None:
    """Pretend some photos were ingested ``days`` ago (retention is counted from ingestion)."""
    past = datetime.now(UTC) - timedelta(days=days)
    with catalog_sql(data) as db:
        for name in names:
            db.execute(update(ImageRow).where(ImageRow.uri.like(f"%/{name}")).values(ingested_at=past))


def test_a_pass_purges_expired_faces_and_nothing_else(gallery: Path, tmp_path: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    _age_photos(data, 400, ("biden.jpg", "obama1.jpg"))  # the gallery's source keeps faces 365 days
    with Lethe(make_settings(data)) as lethe:
        before = lethe.catalog.count_faces()
        result = run_once(lethe)
        assert result["retention"]["erased_faces"] == 2  # type: ignore[index]
        assert lethe.catalog.count_faces() == before - 2
        assert run_once(lethe)["retention"]["erased_faces"] == 0  # type: ignore[index]
        actors = {e.actor for e in lethe.audit_entries(action="erasure.done")}
    assert actors == {"service:maintenance"}


def test_the_timer_runs_passes_until_stopped(gallery: Path, tmp_path: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    _age_photos(data, 400, ("img2.jpg",))
    with Lethe(make_settings(data)) as lethe:
        before = lethe.catalog.count_faces()
        maintenance = Maintenance(lethe, interval_s=0.2)
        maintenance.start()
        deadline = time.monotonic() + 30
        while maintenance.passes < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        maintenance.stop()
        assert maintenance.passes >= 2
        assert lethe.catalog.count_faces() == before - 1
        done = maintenance.passes
        time.sleep(0.5)
        assert maintenance.passes == done  # stopped means stopped


def test_interval_zero_means_off(engine: Lethe) -> None:
    maintenance = Maintenance(engine, interval_s=0)
    maintenance.start()
    time.sleep(0.3)
    maintenance.stop()
    assert maintenance.passes == 0
