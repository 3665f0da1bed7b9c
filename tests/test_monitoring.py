"""Misuse detection and the monitoring report (issue 18, EU AI Act Arts. 14(4)(a) and 72): alerts
raised from the real search log, once per finding, acknowledged by an overseer; an aggregated report
with no personal data. History is made by real searches of fixture photos; time is moved by giving
the scan its ``now`` and the settings their thresholds, never by sleeping."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from test_cli import LETHE, run

from lethe.engine import Lethe
from lethe.errors import NotFoundError
from lethe.privacy import audit
from lethe.privacy.monitoring import outside_working_hours

from api_support import add_user, assert_error, bearer, jpeg, login, serve
from conftest import REVIEW_AUTO_THRESHOLD, REVIEW_FLOOR_THRESHOLD, child_env, copy_gallery, make_settings

pytestmark = pytest.mark.usefixtures("default_models")


@contextmanager
def opened(data: Path, **settings: object) -> Iterator[Lethe]:
    with Lethe(make_settings(data, **settings)) as engine:
        yield engine


def _photo(fixtures_dir: Path, person: str, name: str) -> bytes:
    return (fixtures_dir / "identities" / person / name).read_bytes()


def _first_photo(fixtures_dir: Path, person: str) -> bytes:
    return sorted((fixtures_dir / "identities" / person).iterdir())[0].read_bytes()


def _mirrored(data: bytes) -> bytes:
    """The same face, not the same bytes: a probe close to a stored face, not a copy of one."""
    out = io.BytesIO()
    ImageOps.mirror(Image.open(io.BytesIO(data)).convert("RGB")).save(out, "JPEG", quality=90)
    return out.getvalue()


def _search(engine: Lethe, probe: bytes, actor: str, times: int = 1, **kwargs: object) -> None:
    for i in range(times):
        engine.search(probe, purpose=f"case {i}: who is this", actor=actor, **kwargs)  # type: ignore[arg-type]


def _kinds(alerts: list[object]) -> list[str]:
    return [a.kind for a in alerts]  # type: ignore[attr-defined]


def test_repeated_probe_alerts_once_per_burst_and_not_below_the_threshold(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    biden = _photo(fixtures_dir, "joe_biden", "biden.jpg")
    with opened(data, alert_repeated_probe=3) as engine:
        _search(engine, biden, "olga", 2)
        _search(engine, _photo(fixtures_dir, "barack_obama", "obama.jpg"), "vera", 1)
        assert "repeated_probe" not in _kinds(engine.monitoring.scan_for_misuse())

        _search(engine, biden, "vera")  # the third search of the same photo, by someone else
        (alert,) = [a for a in engine.monitoring.scan_for_misuse() if a.kind == "repeated_probe"]
        assert alert.details["probe_sha256"] == hashlib.sha256(biden).hexdigest()
        assert alert.details["searches"] == 3 and alert.details["operators"] == 2
        assert "repeated_probe" not in _kinds(engine.monitoring.scan_for_misuse())  # not again

        _search(engine, biden, "olga", 2)  # two more: not a new burst yet
        assert "repeated_probe" not in _kinds(engine.monitoring.scan_for_misuse())
        _search(engine, biden, "olga")
        assert "repeated_probe" in _kinds(engine.monitoring.scan_for_misuse())  # a new burst
        # out of the window: the same searches scanned two days later raise nothing
        later = engine.monitoring.scan_for_misuse(datetime.now(UTC) + timedelta(days=2))
        assert "repeated_probe" not in _kinds(later)
        stored = [e for e in engine.audit_entries(limit=200) if e.action == "alert.repeated_probe"]
        assert len(stored) == 2
        assert engine.verify_audit().ok


def test_volume_alert_compares_an_operator_with_their_own_history(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = _first_photo(fixtures_dir, "kit_harington")
    with opened(data, alert_daily_searches=2, alert_volume_factor=2.0, alert_repeated_probe=1000) as engine:
        _search(engine, probe, "vera")
        (real,) = engine.audit_entries(action="search", limit=1)
        # vera's usual work: three searches a day for the 30 days before (entries of the same shape)
        now = datetime.now(UTC)
        with engine.catalog.session() as session, session.begin():
            for day in range(30):
                for hour in range(3):
                    at = now - timedelta(days=day + 1, hours=hour + 1)
                    details = {k: v for k, v in real.details.items() if k not in ("purpose", "texts")}
                    audit.append(session, actor="vera", action="search", details=details, at=at)
        _search(engine, probe, "vera", 3)  # four today: above the limit, not above twice her median
        _search(engine, probe, "olga", 3)  # three today, no history: an anomaly
        at = datetime.now(UTC) + timedelta(minutes=1)
        (alert,) = engine.monitoring.scan_for_misuse(at)
        assert alert.kind == "volume" and alert.details["operator"] == "olga"
        assert alert.details["searches"] == 3 and alert.details["median_daily"] == 0
        assert engine.monitoring.scan_for_misuse(at) == []  # the same finding is not raised again

        _search(engine, probe, "vera", 3)  # seven today: above twice her median of three
        (alert,) = engine.monitoring.scan_for_misuse()
        assert alert.details["operator"] == "vera" and alert.details["median_daily"] == 3
        assert engine.verify_audit().ok


def test_off_hours_alert_in_the_working_time_zone(gallery: Path, tmp_path: Path, fixtures_dir: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = _first_photo(fixtures_dir, "rose_leslie")
    now = datetime.now(UTC)
    closed = "14:00-16:00" if now.hour < 12 else "02:00-04:00"  # hours that do not hold the present
    with opened(data, working_hours="00:00-24:00", working_weekends=True) as engine:
        _search(engine, probe, "olga", 2)
        assert engine.monitoring.scan_for_misuse() == []  # every hour of every day is worked
    with opened(data, working_hours=closed, working_weekends=True) as engine:
        (alert,) = engine.monitoring.scan_for_misuse()
        assert alert.kind == "off_hours" and alert.details["operator"] == "olga"
        assert alert.details["searches"] == 2 and alert.details["working_hours"] == closed
        assert engine.monitoring.scan_for_misuse() == []  # not again
        _search(engine, probe, "olga")
        (again,) = engine.monitoring.scan_for_misuse()
        assert again.details["searches"] == 1  # only the new search


def test_working_hours_are_read_in_their_time_zone_and_weekends_are_optional(tmp_path: Path) -> None:
    paris = make_settings(tmp_path, working_hours="08:00-19:00", working_timezone="Europe/Paris")
    monday_0730_utc = datetime(2027, 3, 1, 7, 30, tzinfo=UTC)  # 08:30 in Paris
    assert not outside_working_hours(monday_0730_utc, paris)
    assert outside_working_hours(monday_0730_utc, make_settings(tmp_path, working_hours="08:00-19:00"))
    assert outside_working_hours(datetime(2027, 3, 1, 18, 30, tzinfo=UTC), paris)  # 19:30 in Paris
    saturday = datetime(2027, 3, 6, 10, 0, tzinfo=UTC)
    assert outside_working_hours(saturday, paris)
    weekends = make_settings(
        tmp_path, working_hours="08:00-19:00", working_timezone="Europe/Paris", working_weekends=True
    )
    assert not outside_working_hours(saturday, weekends)
    assert not outside_working_hours(saturday, make_settings(tmp_path))  # no working hours: no alert
    for bad in (
        {"working_hours": "19:00-08:00"},
        {"working_hours": "8-19"},
        {"working_timezone": "Mars/Base"},
    ):
        with pytest.raises(Exception, match="working|time zone|pattern"):
            make_settings(tmp_path, **bad)


def test_a_use_left_open_over_many_searches_alerts_once_and_a_closed_one_not(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = _first_photo(fixtures_dir, "tom_cruise")
    with opened(data, alert_open_use_searches=3, alert_repeated_probe=1000) as engine:
        _search(engine, probe, "olga", 2)
        assert engine.monitoring.scan_for_misuse() == []
        case = engine.uses.open(actor="vera", purpose="a closed case")
        _search(engine, probe, "vera", 3, use=case.id)
        engine.uses.close(case.id, actor="vera")
        _search(engine, probe, "olga")
        (alert,) = engine.monitoring.scan_for_misuse()
        assert alert.kind == "open_uses" and alert.details["operator"] == "olga"
        assert alert.details["searches"] == 3 and alert.details["use"] != case.id
        _search(engine, probe, "olga")
        assert engine.monitoring.scan_for_misuse() == []  # that use raised its alert already


def test_alerts_are_listed_and_acknowledged_by_an_overseer_and_shown_on_the_dashboard(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = {"probe": jpeg(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")}
    with serve(data, alert_repeated_probe=2) as client:
        operator = bearer(add_user(client, "olga", "operator"))
        dpo = bearer(add_user(client, "dana", "dpo"))
        for _ in range(2):
            found = client.post("/api/search", headers=operator, data={"purpose": "who is it"}, files=probe)
            assert found.status_code == 200, found.text
        assert_error(client.get("/api/monitoring/alerts", headers=operator), 403)
        assert_error(client.post("/api/monitoring/scan", headers=operator), 403)
        scanned = client.post("/api/monitoring/scan", headers=dpo)
        assert scanned.status_code == 200 and scanned.json()["raised"] == 1
        (alert,) = client.get("/api/monitoring/alerts", headers=dpo).json()["alerts"]
        assert alert["kind"] == "repeated_probe" and alert["open"] is True

        login(client, "dana")
        page = client.get("/")
        assert "Misuse alerts" in page.text and f"lethe monitor ack {alert['seq']}" in page.text
        client.cookies.clear()
        login(client, "olga")
        assert "Misuse alerts" not in client.get("/").text  # an operator does not see them
        client.cookies.clear()

        assert_error(client.post(f"/api/monitoring/alerts/{alert['seq']}/ack", headers=operator), 403)
        search_seq = client.get("/api/audit", headers=dpo, params={"action": "search"}).json()["entries"][0][
            "seq"
        ]
        assert_error(client.post(f"/api/monitoring/alerts/{search_seq}/ack", headers=dpo), 404)
        acked = client.post(f"/api/monitoring/alerts/{alert['seq']}/ack", headers=dpo)
        assert acked.status_code == 200 and acked.json()["open"] is False
        assert acked.json()["acknowledged_by"]
        again = client.post(f"/api/monitoring/alerts/{alert['seq']}/ack", headers=dpo)
        assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
        assert client.get("/api/monitoring/alerts", headers=dpo).json()["alerts"] == []
        everything = client.get("/api/monitoring/alerts", headers=dpo, params={"all": "true"}).json()
        assert [a["seq"] for a in everything["alerts"]] == [alert["seq"]]
        acks = client.get("/api/audit", headers=dpo, params={"action": "alert.ack"}).json()["entries"]
        assert len(acks) == 1 and acks[0]["details"]["alert_seq"] == alert["seq"]


def test_acknowledging_what_is_not_an_alert_is_refused(engine: Lethe) -> None:
    with pytest.raises(NotFoundError):
        engine.monitoring.acknowledge(1, actor="dana")


def test_the_report_counts_by_week_and_band_flags_drift_and_holds_no_personal_data(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    biden, biden2 = (
        _photo(fixtures_dir, "joe_biden", "biden.jpg"),
        _photo(fixtures_dir, "joe_biden", "biden2.jpg"),
    )
    dog = (fixtures_dir / "no_face" / "dog.jpg").read_bytes()
    bands = {
        "erasure_auto_threshold": REVIEW_AUTO_THRESHOLD,
        "erasure_review_threshold": REVIEW_FLOOR_THRESHOLD,
    }
    with opened(data, drift_tolerance=0.001, alert_repeated_probe=2, **bands) as engine:
        _search(engine, _mirrored(biden), "olga", 2)  # the same face, mirrored: below 1.0
        _search(engine, dog, "vera")  # no face: a failure to acquire
        _search(engine, biden, "olga", 2, threshold=0.5)  # a new threshold; exact copies score 1.0
        engine.monitoring.scan_for_misuse()
        probes = [e.details["probe_sha256"] for e in engine.audit_entries(action="search", limit=10)]

        opened_request = engine.requests.open(
            kind="erasure", photos=[biden2], contact="someone@example.org", actor="desk"
        )
        engine.requests.verify(opened_request.id, actor="dana", method="id_document", attested=True)
        engine.requests.run(opened_request.id, actor="dana", auto_only=True)
        pending = engine.requests.candidates(opened_request.id, pending_only=True)
        assert pending, "the review band holds a candidate with these thresholds"
        for i, candidate in enumerate(pending):
            engine.requests.decide(opened_request.id, candidate.face_id, confirm=i == 0, actor="dana")

        report = engine.monitoring_report(actor="dana")
        (week,) = report["weeks"]
        assert week["searches"] == 5 and week["operators"] == 2
        assert week["no_face"] == 1 and week["failure_to_acquire_rate"] == 0.2
        assert week["searches_with_match"] == 4
        assert sum(week["matches_by_band"].values()) >= 4 and week["matches_by_band"]["automatic"] >= 2
        review = week["review_decisions"]["review"]
        assert review["confirmed"] == 1 and review["rejected"] == len(pending) - 1
        assert week["alerts"] == {"repeated_probe": 2}

        first, second = report["score_periods"]
        assert first["threshold"] != second["threshold"] and second["changed"] == ["threshold"]
        assert first["searches"] == 3 and first["matched"] == 2 and second["top_score_median"] == 1.0
        assert len(first["top_score_deciles"]) == 9
        assert second["drift"] is True and report["drift_flagged"] is True
        assert first["model_sha256"] == engine.model_sha256

        text = json.dumps(report)
        for secret in [*probes, "olga", "vera", "dana", "desk", "someone@example.org", "biden", "dog.jpg"]:
            assert secret not in text
        assert "face_id" not in text and "seq" not in text and "purpose" not in text
        assert engine.audit_entries(action="report.monitoring", limit=1)
        assert engine.verify_audit().ok


def test_cli_scan_alerts_ack_and_report_with_the_audit_still_verifying(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = str(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    for _ in range(2):
        assert run(data, "search", probe, "--purpose", "the same photo", "--json").returncode == 0
    env = {"LETHE_ALERT_REPEATED_PROBE": "2"}
    scanned = run_env(data, env, "monitor", "scan", "--json")
    assert scanned.returncode == 0, scanned.stderr
    assert json.loads(scanned.stdout)["raised"] == 1
    assert json.loads(run_env(data, env, "monitor", "scan", "--json").stdout)["raised"] == 0
    (alert,) = json.loads(run(data, "monitor", "alerts", "--json").stdout)["alerts"]
    acked = run(data, "monitor", "ack", str(alert["seq"]), "--json")
    assert acked.returncode == 0 and json.loads(acked.stdout)["open"] is False
    assert json.loads(run(data, "monitor", "alerts", "--json").stdout)["alerts"] == []
    missing = run(data, "monitor", "ack", "1", "--json")
    assert missing.returncode != 0 and missing.stderr.strip().count("\n") == 0

    out = tmp_path / "report.json"
    made = run(data, "monitor", "report", "--since", "2000-01-01", "--out", str(out), "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["weeks"] == 1
    report = json.loads(out.read_text())
    assert report["weeks"][0]["searches"] == 2 and "biden" not in out.read_text()
    verified = json.loads(run(data, "audit", "verify", "--json").stdout)
    assert verified["ok"] is True


def run_env(data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``run`` with settings of its own in the environment."""
    full = child_env()
    full.update(LETHE_DATA_DIR=str(data), LETHE_WORKERS="1", **env)
    return subprocess.run([str(LETHE), *args], capture_output=True, text=True, env=full, timeout=300)
