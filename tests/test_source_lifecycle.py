"""A source's life after ``source add`` (newcomer review, row 5): edit its declaration, suspend and
resume it, delete it — through the engine, the API and the CLI, on real photos in real sources."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lethe.catalog.privacy_tables import ErasedImageRow, SourceKeyRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FacelessImageRow, FaceRow, ImageRow, SourceRow
from lethe.cli import app
from lethe.engine import Lethe
from lethe.errors import ConflictError, InputError, LawfulBasisError, PrivacyError

from api_support import add_user, assert_error, bearer, serve
from conftest import consent_source, copy_gallery, erased_bytes, make_settings, occurrences, use_data_dir

pytestmark = pytest.mark.storage

PURPOSE = "test: source lifecycle"


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """ "events" (Kit Harington, Rose Leslie, one photo with no face) and "press" (Joe Biden)."""
    data = tmp_path_factory.mktemp("two_sources") / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source("events", "FR"))
        lethe.add_source(consent_source("press", "DE"))
        for person in ("kit_harington", "rose_leslie"):
            assert lethe.ingest("events", fixtures_dir / "identities" / person).errors == []
        assert lethe.ingest("events", fixtures_dir / "no_face").errors == []
        assert lethe.ingest("press", fixtures_dir / "identities" / "joe_biden").faces == 2
    return data


@pytest.fixture
def data(two_sources: Path, tmp_path: Path) -> Path:
    return copy_gallery(two_sources, tmp_path)


@pytest.fixture
def lethe(data: Path) -> Iterator[Lethe]:
    with Lethe(make_settings(data)) as engine:
        yield engine


def faces_of(lethe: Lethe, source: str) -> set[int]:
    with lethe.catalog.session() as session:
        return set(
            session.scalars(
                select(FaceRow.id)
                .join(ImageRow, FaceRow.image_id == ImageRow.id)
                .join(SourceRow, ImageRow.source_id == SourceRow.id)
                .where(SourceRow.name == source)
            )
        )


def found(lethe: Lethe, probe: Path) -> set[str]:
    """The sources of every face a search sees, however weak the match."""
    result = lethe.search(probe.read_bytes(), top_k=100, threshold=-1.0, purpose=PURPOSE)
    return {m.source for m in result.matches}


def kit(fixtures_dir: Path) -> Path:
    return fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"


# -- delete ----------------------------------------------------------------------------------------


def test_deleting_a_source_erases_every_byte_of_it_and_search_no_longer_finds_it(
    lethe: Lethe, data: Path, fixtures_dir: Path
) -> None:
    events, press = faces_of(lethe, "events"), faces_of(lethe, "press")
    assert len(events) == 5 and len(press) == 2
    source_id = lethe.catalog.source("events").id
    with lethe.catalog.session() as session:
        assert session.scalars(select(FacelessImageRow).where(FacelessImageRow.source_id == source_id)).all()
    doomed = erased_bytes(lethe, sorted(events))
    assert occurrences(data, doomed)  # the method sees them before
    assert found(lethe, kit(fixtures_dir)) == {"events", "press"}

    with pytest.raises(InputError, match="again to confirm"):
        lethe.source_lifecycle.delete("events", confirm="event", actor="admin")
    assert faces_of(lethe, "events") == events  # nothing lost by a wrong confirmation

    answer = lethe.source_lifecycle.delete("events", confirm="events", actor="admin")
    assert answer["status"] == "deleted" and answer["erased_faces"] == 5
    receipt = lethe.gate.receipt(int(answer["erasure_job_id"]))  # type: ignore[call-overload]
    assert receipt is not None and sorted(receipt.erased_faces) == sorted(events)
    assert occurrences(data, doomed) == []
    assert faces_of(lethe, "events") == set() and faces_of(lethe, "press") == press
    assert found(lethe, kit(fixtures_dir)) == {"press"}
    assert set(lethe.index.ids().tolist()) == press
    with lethe.catalog.session() as session:
        assert session.scalars(select(ImageRow).where(ImageRow.source_id == source_id)).all() == []
        assert (
            session.scalars(select(FacelessImageRow).where(FacelessImageRow.source_id == source_id)).all()
            == []
        )
        # Not a data subject's erasure: its photos may be registered again under another source.
        assert (
            session.scalars(select(ErasedImageRow).where(ErasedImageRow.source_id == source_id)).all() == []
        )
        assert session.get(SourceKeyRow, source_id) is None
    assert {s.name: s.status for s in lethe.catalog.sources()} == {"events": "deleted", "press": "active"}
    with pytest.raises(LawfulBasisError, match="deleted"):
        lethe.ingest("events", fixtures_dir / "identities" / "kit_harington")
    actions = [e.action for e in lethe.audit_entries()]
    assert {"source.delete", "erasure.planned", "erasure.done", "source.purge"} <= set(actions)
    assert lethe.verify_audit().ok


def test_a_source_is_not_deleted_while_a_verified_access_request_may_need_it(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    requests = lethe.requests
    access = requests.open(kind="access", photos=[kit(fixtures_dir).read_bytes()], contact="k@example.org").id
    requests.verify(access, actor="dpo", method="id_document", attested=True)
    with pytest.raises(PrivacyError, match=f"access request.* {access}"):
        lethe.source_lifecycle.delete("events", confirm="events", actor="admin")
    assert len(faces_of(lethe, "events")) == 5
    assert lethe.catalog.source("events").status == "active"


# -- suspend / resume ------------------------------------------------------------------------------


def test_a_suspended_source_leaves_search_refuses_ingest_and_still_answers_rights_requests(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    events = faces_of(lethe, "events")
    assert lethe.source_lifecycle.suspend("events", actor="admin") == {
        "source": "events",
        "status": "suspended",
        "was": "active",
    }
    assert found(lethe, kit(fixtures_dir)) == {"press"}
    images = lethe.catalog.count_images()
    with pytest.raises(LawfulBasisError, match="suspended"):
        lethe.ingest("events", fixtures_dir / "identities" / "barack_obama")
    assert lethe.catalog.count_images() == images
    with pytest.raises(ConflictError):
        lethe.source_lifecycle.suspend("events", actor="admin")

    # The person's right of access still reaches the suspended source's faces.
    requests = lethe.requests
    access = requests.open(kind="access", photos=[kit(fixtures_dir).read_bytes()], contact="k@example.org").id
    requests.verify(access, actor="dpo", method="id_document", attested=True)
    answer = requests.run(access, actor="op", auto_only=True)
    export = json.loads((requests.export_path(access) / "export.json").read_text())
    assert answer["faces"] >= 1 and {e["source"] for e in export["faces"]} == {"events"}

    assert lethe.source_lifecycle.resume("events", actor="admin")["status"] == "active"
    assert found(lethe, kit(fixtures_dir)) == {"events", "press"}
    assert faces_of(lethe, "events") == events
    with pytest.raises(ConflictError):
        lethe.source_lifecycle.resume("events", actor="admin")
    assert [e.details["was"] for e in lethe.audit_entries(action="source.suspend")] == ["active"]
    assert lethe.verify_audit().ok


def test_a_stop_order_keeps_a_suspended_source_suspended_and_resume_respects_the_order(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    lethe.source_lifecycle.suspend("press", actor="admin")
    order = lethe.orders.stop("DE", then_delete=False, actor="admin")
    assert order["sources_restricted"] == 0
    lethe.orders.lift(int(order["order_id"]), reason="issued in error, test", actor="admin")  # type: ignore[call-overload]
    assert lethe.catalog.source("press").status == "suspended"  # lifting an order never resumes it

    second = lethe.orders.stop("DE", then_delete=False, actor="admin")
    answer = lethe.source_lifecycle.resume("press", actor="admin")
    assert answer["status"] == "restricted" and answer["orders_in_force"] == [second["order_id"]]
    assert "press" not in found(lethe, fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    lethe.orders.lift(int(second["order_id"]), reason="withdrawn by the regulator", actor="admin")  # type: ignore[call-overload]
    assert lethe.catalog.source("press").status == "active"


# -- edit ------------------------------------------------------------------------------------------


def test_an_edit_is_validated_audited_before_and_after_and_retention_applies_at_the_next_sweep(
    lethe: Lethe,
) -> None:
    with pytest.raises(LawfulBasisError, match="retention"):
        lethe.source_lifecycle.edit("events", {"retention_days": 0}, actor="admin")
    with pytest.raises(LawfulBasisError, match="scraped"):
        lethe.source_lifecycle.edit("events", {"collection": "web_scrape"}, actor="admin")
    with pytest.raises(InputError, match="jurisdiction"):
        lethe.source_lifecycle.edit("events", {"jurisdiction": "DE"}, actor="admin")
    assert lethe.catalog.source("events").retention_days == 365  # nothing changed by a refusal

    answer = lethe.source_lifecycle.edit(
        "events",
        {
            "purpose": "guests find their photos of the gala",
            "retention_days": 30,
            "basis": "public_task",
        },
        actor="admin",
    )
    assert answer["changed"] == ["basis", "purpose", "retention_days"]
    assert "next retention sweep" in str(answer["retention_note"])
    assert any("rests on a law" in w for w in answer["warnings"])  # type: ignore[attr-defined]
    source = lethe.catalog.source("events")
    assert (source.retention_days, source.lawful_basis) == (30, "public_task")
    assert source.purpose == "guests find their photos of the gala"
    (entry,) = lethe.audit_entries(action="source.edit")
    assert entry.details["before"] == {"basis": "consent", "retention_days": 365}
    assert entry.details["after"] == {"basis": "public_task", "retention_days": 30}
    assert "purpose" not in json.dumps(entry.details["before"])  # free text stays off the chain
    assert lethe.verify_audit().ok

    events = faces_of(lethe, "events")
    assert lethe.retention.expired_faces() == []  # stored today: nothing expires yet
    later = now_utc() + timedelta(days=31)
    assert set(lethe.retention.expired_faces(now=later)) == events  # the new period, at the next sweep


# -- API and CLI -----------------------------------------------------------------------------------


def test_the_api_edits_suspends_resumes_and_deletes_for_admins_only(data: Path, fixtures_dir: Path) -> None:
    with serve(data, ingest_root=fixtures_dir) as client:
        admin = bearer(add_user(client, "ada", "admin", "operator"))
        operator = bearer(add_user(client, "otto", "operator"))
        assert_error(client.post("/api/sources/events/suspend", headers=operator), 403)
        answer = client.patch("/api/sources/events", json={"retention_days": 90}, headers=admin)
        assert answer.status_code == 200 and answer.json()["changed"] == ["retention_days"]
        assert_error(client.patch("/api/sources/events", json={"purpose": None}, headers=admin), 422)
        assert_error(client.patch("/api/sources/nope", json={"retention_days": 9}, headers=admin), 404)
        assert client.post("/api/sources/events/suspend", headers=admin).json()["status"] == "suspended"
        assert_error(client.post("/api/sources/events/suspend", headers=admin), 409)
        assert client.post("/api/sources/events/resume", headers=admin).json()["status"] == "active"

        # Refused while an ingest job runs into it (37 photos and a model to load: it is running).
        job = client.post(
            "/api/ingest", json={"source": "events", "path": str(fixtures_dir / "identities")}, headers=admin
        )
        assert job.status_code == 202, job.text
        progress = f"/api/ingest/{job.json()['id']}"
        refused = client.post("/api/sources/events/delete", json={"confirm": "events"}, headers=admin)
        assert_error(refused, 409, "conflict")
        assert "ingest job" in refused.text
        client.post(f"{progress}/cancel", headers=admin)
        deadline = time.monotonic() + 120
        while (
            client.get(progress, headers=admin).json()["state"] == "running" and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert_error(
            client.post("/api/sources/events/delete", json={"confirm": "Events"}, headers=admin), 422
        )
        deleted = client.post("/api/sources/events/delete", json={"confirm": "events"}, headers=admin)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["status"] == "deleted" and deleted.json()["erased_faces"] >= 5
        listed = {s["source"]: s for s in client.get("/api/sources", headers=admin).json()["sources"]}
        assert listed["events"]["status"] == "deleted" and listed["events"]["faces"] == 0


def test_the_cli_edits_suspends_resumes_and_deletes(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_data_dir(monkeypatch, data)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> dict[str, object]:
        result = runner.invoke(app, ["--actor", "ada", *args, "--json"], input=stdin)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    assert run("source", "edit", "press", "--retention-days", "60")["changed"] == ["retention_days"]
    refused = runner.invoke(app, ["--actor", "ada", "source", "edit", "press", "--collection", "cctv"])
    assert refused.exit_code == 4 and "CCTV" in refused.output
    assert run("source", "suspend", "press")["status"] == "suspended"
    assert run("source", "resume", "press")["status"] == "active"
    wrong = runner.invoke(app, ["--actor", "ada", "source", "delete", "press"], input="pres\n")
    assert wrong.exit_code == 2 and "again to confirm" in wrong.output
    assert run("source", "delete", "press", stdin="press\n")["erased_faces"] == 2
    listed = runner.invoke(app, ["source", "list", "--json"])
    press = next(s for s in json.loads(listed.stdout)["sources"] if s["source"] == "press")
    assert press["status"] == "deleted" and press["faces"] == 0
