"""The breach and serious-incident register (issue 19 item 6; GDPR Arts. 33-34, AI Act Art. 73): the
clocks run from awareness and mark an overdue incident, each Art. 73 category has its deadline, every
step is audited, bad input records nothing, the drafts name the affected sources' counts and the audit
chain's head, the Art. 34(3)(a) answer follows where the master key actually is, only the dpo and
admin roles reach the register, and its pages show the overdue mark in red and in words."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from lethe.catalog import audit_log
from lethe.catalog.incident_tables import IncidentEventRow, IncidentRow, IncidentSourceRow
from lethe.catalog.tables import AuditEntryRow
from lethe.cli import app as cli_app
from lethe.engine import Lethe
from lethe.errors import InputError, NotFoundError, PrivacyError
from lethe.privacy import incident_drafts
from lethe.privacy.encryption_state import encryption_state
from lethe.privacy.incident_drafts import drafts, pack_files, sha256_of
from lethe.privacy.incidents import Incidents

from api_support import add_user, assert_error, bearer, login, serve
from conftest import consent_source, copy_gallery, make_settings, use_data_dir

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
#: AI Act Art. 73 as published in the Official Journal: (2) 15 days, (3) 2 days for a widespread
#: infringement or a serious incident of Art. 3(49)(b), (4) 10 days in the event of a death.
ART73_DAYS = {
    "death": 10,
    "health": 15,
    "critical_infrastructure": 2,
    "fundamental_rights": 15,
    "property_or_environment": 15,
    "widespread_infringement": 2,
}


@pytest.fixture
def lethe(tmp_path: Path) -> Iterator[Lethe]:
    with Lethe(make_settings(tmp_path / "data")) as engine:
        engine.add_source(consent_source("events"))
        yield engine


def _counts(engine: Lethe) -> tuple[int, int, int, int]:
    """Audit entries, incidents, their steps and their source rows: what a refused call must leave."""
    with engine.catalog.session() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (AuditEntryRow, IncidentRow, IncidentEventRow, IncidentSourceRow)
        )


def _open(incidents: Incidents, hours_ago: float, **extra: object) -> int:
    return incidents.open(
        actor="dpo-ann",
        description="a backup disk of the data folder was stolen",
        aware_at=NOW - timedelta(hours=hours_ago),
        now=NOW,
        **extra,  # type: ignore[arg-type]
    ).id


def _clock(incidents: Incidents, incident_id: int, recipient: str, now: datetime = NOW) -> dict[str, object]:
    clocks = incidents.get(incident_id).as_dict(now)["clocks"]
    return next(c for c in clocks if c["recipient"] == recipient)


# -- the clocks -------------------------------------------------------------------------------------


def test_the_72_hour_clock_marks_an_incident_overdue_unless_notified_in_time(lethe: Lethe) -> None:
    incidents = lethe.incidents
    late = _open(incidents, 73)
    authority = _clock(incidents, late, "supervisory_authority")
    assert authority["state"] == "overdue" and authority["overdue"] is True
    assert authority["due_at"] == (NOW - timedelta(hours=1)).isoformat()
    assert "was due 2026-12-07 11:00 UTC, 1 h 00 min ago" in str(authority["words"])
    assert incidents.get(late).overdue(NOW) and [i.id for i in incidents.overdue(now=NOW)] == [late]

    in_time = _open(incidents, 73)
    incidents.notify(
        in_time, actor="dpo-ann", recipient="supervisory_authority", at=NOW - timedelta(hours=5), now=NOW
    )
    met = _clock(incidents, in_time, "supervisory_authority")
    assert met["state"] == "met" and met["overdue"] is False
    assert not incidents.get(in_time).overdue(NOW)

    # notified after the deadline: no longer overdue, but late (the reasons for the delay are due)
    incidents.notify(late, actor="dpo-ann", recipient="supervisory_authority", now=NOW)
    after = _clock(incidents, late, "supervisory_authority")
    assert (
        after["state"] == "late"
        and after["overdue"] is False
        and "reasons for the delay" in str(after["words"])
    )

    running = _open(incidents, 10)
    clock = _clock(incidents, running, "supervisory_authority")
    assert clock["state"] == "running" and "in 2 days 14 h" in str(clock["words"])
    # the same incident, seen 63 hours later by the service's clock: overdue, without any sleep
    assert (
        _clock(incidents, running, "supervisory_authority", NOW + timedelta(hours=63))["state"] == "overdue"
    )


@pytest.mark.parametrize(("category", "days"), sorted(ART73_DAYS.items()))
def test_each_serious_incident_category_has_its_art73_deadline(
    lethe: Lethe, category: str, days: int
) -> None:
    incidents = lethe.incidents
    hours = days * 24
    past = _open(incidents, hours + 1, personal_data_breach=False, ai_category=category)
    before = _open(incidents, hours - 1, personal_data_breach=False, ai_category=category)
    overdue = _clock(incidents, past, "market_surveillance_authority")
    assert overdue["state"] == "overdue" and overdue["due_at"] == (NOW - timedelta(hours=1)).isoformat()
    assert _clock(incidents, before, "market_surveillance_authority")["state"] == "running"
    # a serious incident alone has no GDPR clock
    assert [c["recipient"] for c in incidents.get(past).as_dict(NOW)["clocks"]] == [
        "market_surveillance_authority"
    ]


def test_the_data_subjects_are_pending_never_overdue_until_told_or_decided(lethe: Lethe) -> None:
    incidents = lethe.incidents
    number = _open(incidents, 500)
    subjects = _clock(incidents, number, "data_subjects")
    assert subjects["state"] == "pending" and subjects["overdue"] is False and subjects["due_at"] is None
    incidents.decide(
        number,
        actor="dpo-ann",
        recipient="data_subjects",
        ground="art34_3_b",
        reason="the stolen disk was recovered sealed within the hour",
        now=NOW,
    )
    decided = _clock(incidents, number, "data_subjects")
    assert decided["state"] == "decided" and "Art. 34(3)(b)" in str(decided["words"])


# -- every step is audited --------------------------------------------------------------------------


def test_every_step_is_audited_with_its_text_off_the_chain(lethe: Lethe) -> None:
    incidents = lethe.incidents
    start = _counts(lethe)[0]
    number = incidents.open(
        actor="dpo-ann",
        description="a backup disk of the data folder was stolen",
        aware_at=NOW - timedelta(hours=30),
        sources=["events"],
        now=NOW,
    ).id
    incidents.act(number, actor="dpo-ann", action="master key rotated (lethe keys rotate)", now=NOW)
    incidents.notify(
        number, actor="dpo-ann", recipient="supervisory_authority", reference="CNIL-2026-77", now=NOW
    )
    incidents.decide(
        number,
        actor="dpo-ann",
        recipient="data_subjects",
        ground="art34_3_a",
        reason="the key file sits on another disk that was not taken",
        now=NOW,
    )
    closed = incidents.close(number, actor="dpo-ann", note="the police returned the disk", now=NOW)
    assert not closed.open and [s.kind for s in closed.steps] == ["action", "notified", "decided", "closed"]

    entries = lethe.audit_entries(limit=5)[::-1]
    assert [e.action for e in entries] == [
        "incident.open",
        "incident.action",
        "incident.notify",
        "incident.decide",
        "incident.close",
    ]
    assert _counts(lethe)[0] == start + 5
    assert all(e.details["incident"] == number for e in entries)
    assert entries[0].details["sources"] == [lethe.catalog.source("events").id]
    assert entries[2].details["within_deadline"] is True and entries[2].details["reference"] == "CNIL-2026-77"
    # a decision on Art. 34(3)(a) records where the master key was (here: in the data folder)
    assert entries[3].details["ground"] == "art34_3_a"
    assert entries[3].details["master_key_placement"] == "data_folder"
    # the free texts are erasable texts of the entries, never in the chained details
    with lethe.catalog.session() as session:
        chained = " ".join(session.scalars(select(AuditEntryRow.details).where(AuditEntryRow.seq > start)))
    for text in ("backup disk", "master key rotated", "CNIL-2026-77", "another disk", "police"):
        assert text not in chained
    assert closed.description == "a backup disk of the data folder was stolen"
    assert [s.text for s in closed.steps][0] == "master key rotated (lethe keys rotate)"
    assert lethe.verify_audit().ok


def test_closing_is_refused_while_a_duty_is_open_and_a_closed_incident_takes_no_step(lethe: Lethe) -> None:
    incidents = lethe.incidents
    number = _open(incidents, 80)
    before = _counts(lethe)
    with pytest.raises(PrivacyError, match="cannot be closed: .*, 8 h 00 min ago"):
        incidents.close(number, actor="dpo-ann", now=NOW)
    assert _counts(lethe) == before
    incidents.notify(number, actor="dpo-ann", recipient="supervisory_authority", now=NOW)
    with pytest.raises(PrivacyError, match="cannot be closed: pending"):
        incidents.close(number, actor="dpo-ann", now=NOW)
    incidents.notify(number, actor="dpo-ann", recipient="data_subjects", now=NOW)
    incidents.close(number, actor="dpo-ann", now=NOW)
    before = _counts(lethe)
    with pytest.raises(PrivacyError, match="is closed"):
        incidents.act(number, actor="dpo-ann", action="one more thing", now=NOW)
    assert _counts(lethe) == before


# -- bad input: a clear error, nothing recorded -----------------------------------------------------


def test_bad_input_is_a_clear_error_and_records_nothing(lethe: Lethe) -> None:
    incidents = lethe.incidents
    number = _open(incidents, 5)
    before = _counts(lethe)
    future = NOW + timedelta(minutes=5)
    cases: list[tuple[type[Exception], str, object]] = [
        (NotFoundError, "no incident 999", lambda: incidents.get(999)),
        (NotFoundError, "no incident 999", lambda: incidents.act(999, actor="a", action="x-ray", now=NOW)),
        (
            NotFoundError,
            "no incident 999",
            lambda: incidents.notify(999, actor="a", recipient="supervisory_authority", now=NOW),
        ),
        (
            InputError,
            "in the future",
            lambda: incidents.open(actor="a", description="a laptop was lost", aware_at=future, now=NOW),
        ),
        (
            NotFoundError,
            "no source named 'nosuch'",
            lambda: _open(incidents, 1, sources=["events", "nosuch"]),
        ),
        (InputError, "time zone", lambda: _open(incidents, 1, detected_at=datetime(2026, 12, 7, 10, 0))),
        (
            InputError,
            "detected_at is after aware_at",
            lambda: _open(incidents, 3, detected_at=NOW - timedelta(hours=1)),
        ),
        (InputError, "unknown serious-incident category", lambda: _open(incidents, 1, ai_category="meteor")),
        (
            InputError,
            "breach, a serious incident, or both",
            lambda: _open(incidents, 1, personal_data_breach=False),
        ),
        (
            InputError,
            "at least 10 characters",
            lambda: incidents.open(actor="a", description="oops", aware_at=NOW, now=NOW),
        ),
        (
            InputError,
            "unknown recipient",
            lambda: incidents.notify(number, actor="a", recipient="the press", now=NOW),
        ),
        (
            InputError,
            "in the future",
            lambda: incidents.notify(
                number, actor="a", recipient="supervisory_authority", at=future, now=NOW
            ),
        ),
        (
            InputError,
            "no ground",
            lambda: incidents.decide(
                number,
                actor="a",
                recipient="supervisory_authority",
                ground="art34_3_a",
                reason="x" * 20,
                now=NOW,
            ),
        ),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()  # type: ignore[operator]
        assert _counts(lethe) == before, message


# -- the drafts ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("default_models")
def test_the_drafts_name_the_sources_counts_the_window_and_the_audit_head(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data, dpo_contact="dpo@example.org")) as engine:
        images, faces = engine.catalog.source_counts()[engine.catalog.source("events").id]
        assert faces > 0
        probe = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
        found = engine.search(probe, purpose="incident test: who is this", actor="op-olga")
        assert found.matches
        number = engine.incidents.open(
            actor="dpo-ann",
            description="the admin laptop with a copy of the catalog was stolen",
            aware_at=datetime.now(UTC) - timedelta(hours=2),
            ai_category="fundamental_rights",
            sources=["events"],
            window_start=datetime(2000, 1, 1, tzinfo=UTC),
        ).id
        incident = engine.incidents.get(number)
        made = drafts(engine.store, incident, now=datetime.now(UTC))
        with engine.catalog.session() as session:
            head = audit_log.head(session)

    assert sorted(made["drafts"]) == [
        "data_subjects",
        "market_surveillance_authority",
        "supervisory_authority",
    ]
    authority = made["drafts"]["supervisory_authority"]
    fields = authority["fields"]
    assert f"{faces} face template(s)" in fields["a_records"][0]
    assert f"{images} photo record(s)" in fields["a_records"][1]
    assert any(f"{faces} face(s) in {images} photo(s)" in line for line in fields["a_data_subjects"])
    assert fields["b_contact"] == "dpo@example.org"
    assert fields["authorities_of_the_sources_countries"] == [
        "Commission nationale de l'informatique et des libertés (CNIL)"
    ]
    assert fields["art34_3_a"]["master_key_placement"] == "data_folder"
    assert fields["window"]["searches"] == 1 and fields["window"]["searches_of_affected_sources"] == 1
    assert fields["window"]["faces_returned"] == len({m.face_id for m in found.matches})
    assert fields["window"]["ingests_into_affected_sources"] >= 1
    assert fields["window"]["images_ingested"] == images and fields["window"]["faces_ingested"] == faces
    assert "c_likely_consequences" in authority["to_complete"] and "controller" in authority["to_complete"]
    assert "b_contact" not in authority["to_complete"]
    # the evidence: the audit chain's head when it was made, and the draft's own sha256
    assert authority["evidence"]["audit_head"] == {"seq": head[0], "hash": head[1]}
    assert authority["sha256"] == sha256_of({k: v for k, v in authority.items() if k != "sha256"})
    assert f"{faces} face template(s)" in authority["text"] and head[1] in json.dumps(authority["evidence"])
    msa = made["drafts"]["market_surveillance_authority"]["fields"]
    assert msa["deadline"] == "Art. 73(2): 15 days after awareness" and msa["member_states"] == ["FR"]
    assert msa["report_type"].startswith("initial report") and msa["ai_system"]["model_sha256"]
    # the names in the draft are sources' and the controller's: never a face, a template or a person
    assert "op-olga" not in json.dumps(made["drafts"])


def test_a_notification_keeps_the_sha256_of_the_draft_it_was_made_from(lethe: Lethe) -> None:
    lethe.incidents.clock = lambda: NOW
    number = _open(lethe.incidents, 10, sources=["events"])
    expected = drafts(lethe.store, lethe.incidents.get(number), now=NOW)["drafts"]["supervisory_authority"]
    notified = incident_drafts.notify(
        lethe.incidents, number, actor="dpo-ann", recipient="supervisory_authority"
    )
    assert notified.steps[-1].draft_sha256 == expected["sha256"]
    assert lethe.audit_entries(limit=1)[0].details["draft_sha256"] == expected["sha256"]


# -- the Art. 34(3)(a) answer -------------------------------------------------------------------------


def _private_folder(parent: Path) -> Path:
    folder = Path(tempfile.mkdtemp(dir=parent))
    os.chmod(folder, 0o700)
    return folder


def test_the_art34_3_a_answer_follows_where_the_master_key_is(tmp_path: Path) -> None:
    with Lethe(make_settings(tmp_path / "inside")) as engine:
        inside = encryption_state(engine.store)
    assert inside.placement == "data_folder" and inside.answer.startswith("No,")
    assert "inside that same folder" in inside.answer

    same_disk = _private_folder(tmp_path)
    with Lethe(make_settings(tmp_path / "beside", master_key_file=same_disk / "master.key")) as engine:
        beside = encryption_state(engine.store)
    assert beside.placement == "same_filesystem" and beside.answer.startswith("Only against a copy")
    assert "a stolen disk" in beside.answer and str(same_disk / "master.key") in beside.answer

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system (/dev/shm) to put the master key on")
    other_disk = _private_folder(shm)
    try:
        with Lethe(make_settings(tmp_path / "apart", master_key_file=other_disk / "master.key")) as engine:
            apart = encryption_state(engine.store)
    finally:
        shutil.rmtree(other_disk)
    assert apart.placement == "separate_filesystem" and apart.answer.startswith(
        "For the templates and crops only"
    )
    # whatever the key's place, what Lethe never encrypts is named as such, never a bare "yes"
    for state in (inside, beside, apart):
        unprotected = " ".join(h.what for h in state.not_protected)
        assert "photo metadata" in unprotected and "the photos themselves" in unprotected
        assert "the audit log" in unprotected
        assert any("face templates" in h.what for h in state.protected)


# -- the API: the dpo and admin roles only ------------------------------------------------------------


def test_only_the_dpo_and_admin_roles_reach_the_register_and_bad_input_records_nothing(
    tmp_path: Path,
) -> None:
    with serve(tmp_path / "data") as client:
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        engine.add_source(consent_source("events"))
        tokens = {
            role: add_user(client, f"only-{role}", role) for role in ("operator", "monitor", "dpo", "admin")
        }
        aware = (datetime.now(UTC) - timedelta(hours=73)).isoformat()
        body = {
            "description": "a laptop with a catalog copy was lost",
            "aware_at": aware,
            "sources": ["events"],
        }
        before = _counts(engine)
        for role in ("operator", "monitor"):
            assert_error(
                client.post("/api/incidents", headers=bearer(tokens[role]), json=body), 403, "forbidden"
            )
            assert_error(client.get("/api/incidents", headers=bearer(tokens[role])), 403, "forbidden")
        unknown = client.post(
            "/api/incidents", headers=bearer(tokens["dpo"]), json=body | {"sources": ["nosuch"]}
        )
        assert "nosuch" in str(assert_error(unknown, 404, "not_found")["message"])
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        refused = client.post(
            "/api/incidents", headers=bearer(tokens["dpo"]), json=body | {"aware_at": future}
        )
        assert "in the future" in str(assert_error(refused, 422, "invalid_input")["message"])
        assert _counts(engine) == before

        opened = client.post("/api/incidents", headers=bearer(tokens["dpo"]), json=body)
        assert opened.status_code == 201, opened.text
        number = opened.json()["id"]
        assert opened.json()["overdue"] is True
        listed = client.get("/api/incidents", headers=bearer(tokens["admin"])).json()
        assert listed["overdue"] == [number]
        assert_error(client.get(f"/api/incidents/{number}", headers=bearer(tokens["operator"])), 403)
        made = client.get(f"/api/incidents/{number}/drafts", headers=bearer(tokens["admin"])).json()
        assert sorted(made["drafts"]) == ["data_subjects", "supervisory_authority"]
        notified = client.post(
            f"/api/incidents/{number}/notifications",
            headers=bearer(tokens["dpo"]),
            json={"recipient": "supervisory_authority", "note": "late: the theft was reported on a weekend"},
        )
        assert notified.status_code == 200 and notified.json()["overdue"] is False
        recorded = notified.json()["steps"][-1]["draft_sha256"]
        assert len(recorded) == 64 and engine.audit_entries(limit=1)[0].details["draft_sha256"] == recorded
        refused_close = client.post(f"/api/incidents/{number}/close", headers=bearer(tokens["dpo"]))
        assert "pending" in str(assert_error(refused_close, 409, "refused")["message"])
        decided = client.post(
            f"/api/incidents/{number}/decisions",
            headers=bearer(tokens["dpo"]),
            json={
                "recipient": "data_subjects",
                "ground": "no_high_risk",
                "reason": "only box coordinates were on it",
            },
        )
        assert decided.status_code == 200, decided.text
        closed = client.post(f"/api/incidents/{number}/close", headers=bearer(tokens["dpo"]), json={})
        assert closed.status_code == 200 and closed.json()["open"] is False
        assert_error(client.get("/api/incidents/999999", headers=bearer(tokens["dpo"])), 404, "not_found")


# -- the pages ----------------------------------------------------------------------------------------


def test_the_pages_show_the_overdue_mark_in_red_and_in_words(tmp_path: Path) -> None:
    with serve(tmp_path / "data", login_rate_per_minute=1000) as client:
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        engine.add_source(consent_source("events"))
        for role in ("operator", "dpo", "admin"):
            add_user(client, role, role)
        aware = datetime.now(UTC) - timedelta(hours=73)
        number = engine.incidents.open(
            actor="dpo", description="a backup disk was stolen", aware_at=aware, sources=["events"]
        ).id
        calm = engine.incidents.open(
            actor="dpo", description="a misdirected e-mail with a photo list", aware_at=datetime.now(UTC)
        ).id

        login(client, "dpo")
        page = client.get("/incidents")
        assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
        rows = page.text.split("<tr")
        late_row = next(r for r in rows if f'href="/incidents/{number}"' in r)
        calm_row = next(r for r in rows if f'href="/incidents/{calm}"' in r)
        assert 'class="overdue"' in late_row and "overdue-marker" in late_row and "1 h 00 min ago" in late_row
        assert f"was due {(aware + timedelta(hours=72)):%Y-%m-%d %H:%M} UTC" in late_row
        assert 'class="overdue"' not in calm_row and "overdue-marker" not in calm_row
        assert 'href="/incidents"' in page.text.split("</nav>")[0]  # in the DPO's navigation

        detail = client.get(f"/incidents/{number}").text
        assert "overdue-marker" in detail and "Notification of a personal data breach" in detail
        assert "Art. 34(3)(a)" in detail and "inside that same folder" in detail
        assert client.get("/incidents/999999").status_code == 404
        dashboard = client.get("/").text
        assert f'href="/incidents/{number}"' in dashboard and "Incidents overdue" in dashboard
        assert f'href="/incidents/{calm}"' not in dashboard

        login(client, "admin")
        assert client.get(f"/incidents/{number}").status_code == 200
        login(client, "operator")
        assert client.get("/incidents", follow_redirects=False).status_code == 403
        assert client.get(f"/incidents/{number}", follow_redirects=False).status_code == 403
        assert 'href="/incidents' not in client.get("/").text
        client.cookies.clear()
        assert client.get(f"/incidents/{number}", follow_redirects=False).status_code == 303


# -- the command line and the evidence pack ------------------------------------------------------------


def test_the_cli_opens_lists_drafts_notifies_and_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    with Lethe(make_settings(data)) as engine:
        engine.add_source(consent_source("events"))
    use_data_dir(monkeypatch, data)
    runner = CliRunner()
    aware = (datetime.now(UTC) - timedelta(hours=73)).strftime("%Y-%m-%dT%H:%M")  # no zone: UTC

    def ok(*args: str) -> dict[str, object]:
        result = runner.invoke(cli_app, ["incident", *args, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    opened = ok(
        "open", "--description", "a backup disk was stolen", "--aware-at", aware, "--source", "events"
    )
    number = str(opened["id"])
    assert opened["overdue"] is True and opened["aware_at"].endswith("+00:00")  # type: ignore[union-attr]
    assert ok("list")["overdue"] == [opened["id"]]
    drafted = ok("draft", number, "--to", "supervisory_authority")
    assert list(drafted["drafts"]) == ["supervisory_authority"]  # type: ignore[call-overload]
    text = runner.invoke(cli_app, ["incident", "draft", number])
    assert (
        text.exit_code == 0
        and "Notification of a personal data breach" in text.stdout
        and "sha256" in text.stdout
    )

    bad = runner.invoke(
        cli_app, ["incident", "open", "--description", "a laptop was lost", "--aware-at", "tomorrow"]
    )
    assert bad.exit_code == 2 and "not an ISO 8601 time" in bad.output
    missing = runner.invoke(cli_app, ["incident", "show", "999"])
    assert missing.exit_code == 3 and "no incident 999" in missing.output
    refused = runner.invoke(cli_app, ["incident", "close", number])
    assert refused.exit_code == 4 and "cannot be closed" in refused.output

    ok("update", number, "--action", "master key rotated")
    ok("notify", number, "--to", "supervisory_authority", "--reference", "CNIL-77", "--note", "late: weekend")
    ok(
        "notify",
        number,
        "--to",
        "data_subjects",
        "--ground",
        "no_high_risk",
        "--reason",
        "only metadata was on it",
    )
    closed = ok("close", number)
    assert closed["open"] is False
    kinds = [s["kind"] for s in closed["steps"]]  # type: ignore[union-attr]
    assert kinds == ["action", "notified", "decided", "closed"]


def test_pack_files_hold_the_register_with_its_clocks_and_drafts(lethe: Lethe) -> None:
    late = _open(lethe.incidents, 80, sources=["events"])
    _open(lethe.incidents, 1)
    files = pack_files(lethe.store, now=NOW)
    assert sorted(files) == ["incidents.html", "incidents.json"]
    register = json.loads(files["incidents.json"])
    assert register["overdue"] == [late] and len(register["incidents"]) == 2
    first = register["incidents"][0]
    assert first["id"] == late and first["clocks"][0]["state"] == "overdue"
    assert first["drafts"]["supervisory_authority"]["sha256"]
    assert register["encryption"]["master_key_placement"] == "data_folder"
    html = files["incidents.html"].decode()
    assert f"Incident {late}" in html and "OVERDUE" in html and "Art. 34(3)(a)" in html
