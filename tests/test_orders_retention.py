"""A regulator's jurisdiction stop (restrict, then delete once access requests are answered) and
retention purges, on real photos in real sources."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from lethe.catalog.privacy_tables import LegalOrderRow, SourceKeyRow
from lethe.catalog.tables import AuditEntryRow, AuditTextRow, FaceRow, ImageRow, SourceRow
from lethe.engine import Lethe
from lethe.errors import InputError, KeyShreddedError, LawfulBasisError, NotFoundError, PrivacyError

from conftest import (
    FIXTURE_AUTO_THRESHOLD,
    backend_env,
    child_env,
    consent_source,
    copy_gallery,
    erased_bytes,
    index_holds_plaintext,
    make_settings,
    occurrences,
)

pytestmark = pytest.mark.storage

PURPOSE = "test: orders"
LETHE = Path(sys.executable).with_name("lethe")


@pytest.fixture(scope="module")
def two_countries(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """FR source "events" (Kit Harington, Rose Leslie) and DE source "press" (Joe Biden)."""
    data = tmp_path_factory.mktemp("two_countries") / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source("events", "FR"))
        lethe.add_source(consent_source("press", "DE"))
        for person in ("kit_harington", "rose_leslie"):
            assert lethe.ingest("events", fixtures_dir / "identities" / person).errors == []
        assert lethe.ingest("press", fixtures_dir / "identities" / "joe_biden").faces == 2
    return data


@pytest.fixture
def data(two_countries: Path, tmp_path: Path) -> Path:
    return copy_gallery(two_countries, tmp_path)


@pytest.fixture
def lethe(data: Path) -> Iterator[Lethe]:
    with Lethe(make_settings(data)) as engine:
        yield engine


def faces_by_source(lethe: Lethe) -> dict[str, set[int]]:
    with lethe.catalog.session() as session:
        rows = session.execute(
            select(SourceRow.name, FaceRow.id)
            .join(ImageRow, ImageRow.source_id == SourceRow.id)
            .join(FaceRow, FaceRow.image_id == ImageRow.id)
        ).all()
    out: dict[str, set[int]] = {}
    for name, face_id in rows:
        out.setdefault(name, set()).add(int(face_id))
    return out


def status(lethe: Lethe) -> dict[str, str]:
    return {s.name: s.status for s in lethe.catalog.sources()}


def biden_photos(fixtures_dir: Path) -> list[Path]:
    return sorted((fixtures_dir / "identities" / "joe_biden").iterdir())


def everything(lethe: Lethe, probe: Path) -> list[tuple[int, str]]:
    result = lethe.search(probe.read_bytes(), top_k=100, threshold=-1.0, purpose=PURPOSE)
    return [(m.face_id, m.source) for m in result.matches]


def run_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env.update(
        LETHE_DATA_DIR=str(data), LETHE_WORKERS="1", LETHE_ERASURE_AUTO_THRESHOLD=str(FIXTURE_AUTO_THRESHOLD)
    )
    env.update(backend_env(data))
    return subprocess.run(
        [str(LETHE), *args], capture_output=True, text=True, env=env, timeout=300, cwd=data.parent
    )


# -- jurisdiction stop -----------------------------------------------------------------------------


def test_a_stopped_jurisdiction_never_appears_in_results_and_takes_no_ingest(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    german = faces_by_source(lethe)["press"]
    french = faces_by_source(lethe)["events"]
    assert len(german) == 2 and len(french) == 5
    probe = biden_photos(fixtures_dir)[0]
    assert {f for f, _ in everything(lethe, probe)} == german | french  # visible before the order

    result = lethe.orders.stop("de", then_delete=False, actor="dpo", reference="BfDI-2025-17")
    assert result["sources_restricted"] == 1 and result["state"] == "executed"
    assert status(lethe) == {"events": "active", "press": "restricted"}
    for photo in biden_photos(fixtures_dir):
        hits = everything(lethe, photo)
        assert {f for f, _ in hits} == french and {s for _, s in hits} == {"events"}
        assert lethe.search(photo.read_bytes(), purpose=PURPOSE).no_match
    for name in ("john1.jpeg", "john2.jpeg"):
        hits = everything(lethe, fixtures_dir / "identities" / "kit_harington" / name)
        assert german.isdisjoint(f for f, _ in hits)
    # Hidden, not deleted.
    assert faces_by_source(lethe)["press"] == german
    images = lethe.catalog.count_images()
    with pytest.raises(LawfulBasisError, match="restricted"):
        lethe.ingest("press", fixtures_dir / "identities" / "barack_obama")
    assert lethe.catalog.count_images() == images
    # Another stop of the same country restricts nothing more; a bad code changes nothing.
    assert lethe.orders.stop("DE", then_delete=False, actor="dpo")["sources_restricted"] == 0
    with pytest.raises(InputError, match="ISO 3166"):
        lethe.orders.stop("XX", then_delete=False, actor="dpo")
    listed = lethe.orders.list_orders()
    assert [(o["jurisdiction"], o["state"]) for o in listed] == [("DE", "executed")] * 2
    proof = listed[0]["proof"]
    assert isinstance(proof, dict) and proof["faces_hidden"] == 2 and len(proof["newly_restricted"]) == 1
    assert listed[0]["reference"] == "BfDI-2025-17" and listed[0]["issued_by"] == "dpo"
    stops = lethe.audit_entries(action="order.stop")
    assert [e.details["sources_restricted"] for e in stops] == [0, 1]
    assert lethe.verify_audit().ok


def test_then_delete_waits_for_open_access_requests_and_then_erases_and_shreds(
    lethe: Lethe, data: Path, fixtures_dir: Path
) -> None:
    german, french = faces_by_source(lethe)["press"], faces_by_source(lethe)["events"]
    press_id = lethe.catalog.source("press").id
    doomed = erased_bytes(lethe, sorted(german))
    found = occurrences(data, doomed)  # sealed templates and crops; plaintext only in a Milvus index
    assert len(found) >= (6 if index_holds_plaintext() else 4)
    assert index_holds_plaintext() or not any(hit.startswith("plaintext") for hit in found)
    requests = lethe.requests
    access = requests.open(
        kind="access", photos=[biden_photos(fixtures_dir)[0].read_bytes()], contact="jb@example.org"
    ).id
    # Only a verified request holds an order back (an unverified one is anyone's: security review 10).
    requests.verify(access, actor="dpo", method="id_document", attested=True)

    result = lethe.orders.stop("DE", then_delete=True, actor="dpo")
    assert result["sources_restricted"] == 1
    assert result["state"] == "pending_delete" and result["waiting_for_requests"] == [access]
    # Nothing deleted while the access request is open, but already hidden from search.
    assert faces_by_source(lethe)["press"] == german
    assert all(lethe.crops.path(f).is_file() for f in german)
    assert set(lethe.index.ids().tolist()) == german | french
    assert status(lethe)["press"] == "restricted"
    assert "press" not in {s for _, s in everything(lethe, biden_photos(fixtures_dir)[1])}
    (retry,) = lethe.orders.complete_pending(actor="dpo")
    assert retry["state"] == "pending_delete" and faces_by_source(lethe)["press"] == german

    # The person's right of access reaches the restricted source.
    answer = requests.run(access, actor="op", auto_only=True)
    assert answer["state"] == "answered" and answer["faces"] == 2
    export = json.loads((requests.export_path(access) / "export.json").read_text())
    assert {(e["face_id"], e["source"], e["jurisdiction"]) for e in export["faces"]} == {
        (f, "press", "DE") for f in german
    }

    (done,) = lethe.orders.complete_pending(actor="dpo")
    assert done["state"] == "completed" and done["erased_faces"] == 2 and done["faces_remaining"] == 0
    assert status(lethe) == {"events": "active", "press": "deleted"}
    assert faces_by_source(lethe) == {"events": french}
    assert set(lethe.index.ids().tolist()) == french
    assert not any(lethe.crops.path(f).exists() for f in german)
    with lethe.catalog.session() as session:
        assert session.get(SourceKeyRow, press_id) is None
        assert session.get(SourceKeyRow, lethe.catalog.source("events").id) is not None
        order = session.scalars(select(LegalOrderRow)).one()
    assert order.state == "completed" and order.completed_at is not None
    proof = json.loads(order.proof or "{}")
    assert proof["faces_remaining"] == 0 and proof["erased_faces"] == 2
    assert proof["keys_shredded"] == [press_id] and proof["faces_hidden"] == 2
    with pytest.raises(KeyShreddedError):
        lethe.keyring.open(press_id, doomed["sealed template"][0], b"anything")
    assert occurrences(data, doomed) == []
    assert lethe.orders.complete_pending() == []
    assert lethe.verify_audit().ok
    with pytest.raises(LawfulBasisError, match="deleted"):
        lethe.ingest("press", fixtures_dir / "identities" / "joe_biden")


def test_then_delete_with_no_open_request_erases_at_once(lethe: Lethe, fixtures_dir: Path) -> None:
    french = faces_by_source(lethe)["events"]
    answered = lethe.requests.open(
        kind="access", photos=[biden_photos(fixtures_dir)[0].read_bytes()], contact="a@example.org"
    ).id
    lethe.requests.verify(answered, actor="dpo", method="id_document", attested=True)
    lethe.requests.run(answered, actor="op")
    # An erasure request still open does not hold the order back (only access requests do).
    lethe.requests.open(
        kind="erasure", photos=[biden_photos(fixtures_dir)[1].read_bytes()], contact="b@example.org"
    )
    # A country already restricted by an earlier order: the new order deletes what that one hid.
    assert lethe.orders.stop("DE", then_delete=False, actor="dpo")["sources_restricted"] == 1
    result = lethe.orders.stop("DE", then_delete=True, actor="dpo")
    assert result["sources_restricted"] == 0
    assert (result["state"], result["erased_faces"], result["faces_remaining"]) == ("completed", 2, 0)
    assert faces_by_source(lethe) == {"events": french}
    assert status(lethe) == {"events": "active", "press": "deleted"}


def test_unverified_access_requests_do_not_hold_a_deletion_order_back(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    """Security review, finding 10: anonymous portal access requests (confirmed or not) and desk
    requests nobody verified kept every ``then_delete`` order pending; only a verified access
    request that may still need the stopped source's faces holds it now."""
    german, french = faces_by_source(lethe)["press"], faces_by_source(lethe)["events"]
    requests = lethe.requests
    photo = biden_photos(fixtures_dir)[0].read_bytes()
    unconfirmed = requests.open(
        kind="access", photos=[photo], contact="a@example.org", channel="portal", confirm_contact=True
    )
    confirmed = requests.open(
        kind="access", photos=[photo], contact="b@example.org", channel="portal", confirm_contact=True
    )
    message = json.loads((lethe.settings.data_dir / "outbox" / f"request-{confirmed.id}.json").read_text())
    requests.confirm_contact(confirmed.ref, str(message["code"]))
    desk = requests.open(kind="access", photos=[photo], contact="c@example.org")
    # A verified access request, not run yet, may still need the source: it holds the order.
    strict = requests.open(kind="access", photos=[photo], contact="d@example.org")
    requests.verify(strict.id, actor="dpo", method="id_document", attested=True)
    assert [requests.get(r).state for r in (unconfirmed.id, confirmed.id, desk.id)] == [
        "unconfirmed",
        "received",
        "received",
    ]

    result = lethe.orders.stop("DE", then_delete=True, actor="dpo", reference="BfDI-2026-7")
    # the verified one holds it (not run yet: it might need the source); the others do not
    assert result["state"] == "pending_delete" and result["waiting_for_requests"] == [strict.id]
    ran = requests.run(strict.id, actor="dpo", auto_only=True)
    assert ran["faces"] == 2 and ran["state"] == "answered"
    (done,) = lethe.orders.complete_pending(actor="dpo")
    assert done["state"] == "completed" and done["erased_faces"] == len(german) == 2
    assert faces_by_source(lethe) == {"events": french}
    assert [requests.get(r).state for r in (unconfirmed.id, confirmed.id, desk.id)] == [
        "unconfirmed",
        "received",
        "received",
    ]


def test_cli_order_stop_contract(data: Path, fixtures_dir: Path) -> None:
    stopped = run_cli(data, "order", "stop", "--jurisdiction", "DE", "--json")
    assert stopped.returncode == 0, stopped.stderr
    payload = json.loads(stopped.stdout)
    assert payload["sources_restricted"] == 1
    probe = str(biden_photos(fixtures_dir)[1])
    found = run_cli(data, "search", probe, "--purpose", "test", "--top", "100", "--threshold", "-1", "--json")
    assert found.returncode == 0, found.stderr
    matches = json.loads(found.stdout)["matches"]
    assert matches and {m["source"] for m in matches} == {"events"}
    refused = run_cli(data, "ingest", "press", str(fixtures_dir / "identities" / "barack_obama"), "--json")
    assert refused.returncode == 4 and refused.stdout == "" and "restricted" in refused.stderr
    bad = run_cli(data, "order", "stop", "--jurisdiction", "Germany", "--json")
    assert bad.returncode == 2 and bad.stdout == ""
    listed = json.loads(run_cli(data, "order", "list", "--json").stdout)
    assert [o["jurisdiction"] for o in listed["orders"]] == ["DE"]


# -- lifting an order (security review, section 21) ------------------------------------------------


def test_lifting_an_order_brings_back_only_the_sources_no_other_order_in_force_holds(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    german = faces_by_source(lethe)["press"]
    probe = biden_photos(fixtures_dir)[0]
    first = lethe.orders.stop("DE", then_delete=False, actor="ada", reference="BfDI-1")
    second = lethe.orders.stop("DE", then_delete=False, actor="ada", reference="BfDI-2")
    france = lethe.orders.stop("FR", then_delete=False, actor="ada", reference="CNIL-1")
    assert (first["sources_restricted"], second["sources_restricted"]) == (1, 0)
    assert status(lethe) == {"events": "restricted", "press": "restricted"} and everything(lethe, probe) == []

    reason = "the BfDI withdrew order 1 on appeal (decision of 2026-12-01)"
    lifted = lethe.orders.lift(int(first["order_id"]), reason=reason, actor="ada")
    # press is still restricted by the second DE order, events by the FR one
    assert lifted == {"order_id": first["order_id"], "state": "lifted", "sources_reactivated": 0,
                      "sources_kept_restricted": 1}  # fmt: skip
    assert status(lethe) == {"events": "restricted", "press": "restricted"} and everything(lethe, probe) == []

    lifted = lethe.orders.lift(int(second["order_id"]), reason="order 2 was issued in error", actor="ada")
    assert lifted["sources_reactivated"] == 1 and lifted["sources_kept_restricted"] == 0
    # the German source is searchable again; the French one, still under its order, is not
    assert status(lethe) == {"events": "restricted", "press": "active"}
    assert {f for f, _ in everything(lethe, probe)} == german
    assert lethe.search(probe.read_bytes(), purpose=PURPOSE).matches  # at the real threshold too
    states = {o["id"]: o["state"] for o in lethe.orders.list_orders()}
    assert [states[int(o["order_id"])] for o in (first, second, france)] == ["lifted", "lifted", "executed"]
    (listed,) = [o for o in lethe.orders.list_orders() if o["id"] == second["order_id"]]
    assert listed["proof"]["sources_reactivated"] == [2] and listed["proof"]["lifted_by"] == "ada"  # type: ignore[index]

    # audited, the reason off the chain (erasable text beside it)
    entries = lethe.audit_entries(action="order.lift")
    assert [e.details["order_id"] for e in entries] == [second["order_id"], first["order_id"]]
    with lethe.catalog.session() as session:
        chained = session.get(AuditEntryRow, entries[1].seq)
        assert chained is not None and "BfDI withdrew" not in json.dumps(chained.details)
        texts = session.scalars(select(AuditTextRow.text).where(AuditTextRow.seq == entries[1].seq)).all()
        assert texts == [reason]
    assert lethe.verify_audit().ok

    with pytest.raises(PrivacyError, match="lifted"):  # only an order in force can be lifted
        lethe.orders.lift(int(first["order_id"]), reason="once more, to be sure", actor="ada")
    with pytest.raises(InputError, match="reason"):
        lethe.orders.lift(int(france["order_id"]), reason="because", actor="ada")
    with pytest.raises(NotFoundError):
        lethe.orders.lift(999, reason="an order that never was", actor="ada")
    assert status(lethe)["events"] == "restricted" and {f for f, _ in everything(lethe, probe)} == german


def test_lifting_a_pending_deletion_cancels_it_and_a_deletion_that_ran_cannot_be_lifted(
    data: Path, fixtures_dir: Path
) -> None:
    with Lethe(make_settings(data)) as lethe:
        german = faces_by_source(lethe)["press"]
        access = lethe.requests.open(
            kind="access", photos=[biden_photos(fixtures_dir)[0].read_bytes()], contact="jb@example.org"
        ).id
        lethe.requests.verify(access, actor="dpo", method="id_document", attested=True)
        pending = lethe.orders.stop("DE", then_delete=True, actor="ada")
        assert pending["state"] == "pending_delete"
        lethe.orders.lift(int(pending["order_id"]), reason="the regulator suspended the order", actor="ada")
        assert lethe.orders.complete_pending(actor="system") == []  # nothing pending any more
        lethe.requests.run(access, actor="dpo", auto_only=True)  # answered: it holds no order back
        assert faces_by_source(lethe)["press"] == german and status(lethe)["press"] == "active"

        done = lethe.orders.stop("DE", then_delete=True, actor="ada")
        assert done["state"] == "completed" and "press" not in faces_by_source(lethe)
        with pytest.raises(PrivacyError, match="deletion ran"):
            lethe.orders.lift(int(done["order_id"]), reason="too late for this one", actor="ada")
        assert status(lethe)["press"] == "deleted"
    refused = run_cli(
        data, "order", "lift", str(done["order_id"]), "--reason", "too late for this one", "--json"
    )
    assert refused.returncode == 4 and refused.stdout == "" and "deletion ran" in refused.stderr


def test_cli_order_lift_and_a_stop_on_a_country_without_sources_warns(data: Path, fixtures_dir: Path) -> None:
    nowhere = run_cli(data, "order", "stop", "--jurisdiction", "JP", "--json")
    assert nowhere.returncode == 0, nowhere.stderr
    payload = json.loads(nowhere.stdout)
    assert payload["sources_restricted"] == 0 and payload["warning"] == "no source has jurisdiction JP"
    assert "warning: no source has jurisdiction JP" in nowhere.stderr
    stopped = json.loads(run_cli(data, "order", "stop", "--jurisdiction", "DE", "--json").stdout)
    assert stopped["sources_restricted"] == 1 and "warning" not in stopped
    lifted = run_cli(
        data, "order", "lift", str(stopped["order_id"]), "--reason", "withdrawn by the BfDI", "--json"
    )
    assert lifted.returncode == 0, lifted.stderr
    assert json.loads(lifted.stdout)["sources_reactivated"] == 1
    probe = str(biden_photos(fixtures_dir)[1])
    found = run_cli(data, "search", probe, "--purpose", "test", "--top", "100", "--threshold", "-1", "--json")
    assert {m["source"] for m in json.loads(found.stdout)["matches"]} == {"events", "press"}
    listed = json.loads(run_cli(data, "order", "list", "--json").stdout)["orders"]
    assert [(o["jurisdiction"], o["state"], o["warning"]) for o in listed] == [
        ("JP", "executed", "no source has jurisdiction JP"), ("DE", "lifted", None),
    ]  # fmt: skip


# -- retention -------------------------------------------------------------------------------------


def _age(lethe: Lethe, uris: list[str], days: float) -> None:
    with lethe.catalog.session() as session, session.begin():
        session.execute(
            update(ImageRow)
            .where(ImageRow.uri.in_(uris))
            .values(ingested_at=datetime.now(UTC) - timedelta(days=days))
        )


def test_retention_purge_erases_exactly_the_expired_faces(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    root = fixtures_dir.resolve()
    old = [
        "identities/joe_biden/biden.jpg",
        "identities/joe_biden/biden2.jpg",
        "group_labelled/two_people.jpg",
    ]
    recent = ["identities/rose_leslie/img1.jpg", "group_labelled/kit_with_rose.jpg"]
    with Lethe(make_settings(data)) as lethe:
        with lethe.catalog.session() as session, session.begin():
            session.execute(update(SourceRow).where(SourceRow.name == "events").values(retention_days=30))
            uri_faces = session.execute(select(ImageRow.uri, FaceRow.id).join(FaceRow)).all()
        _age(lethe, [str(root / p) for p in old], days=31)
        _age(lethe, [str(root / p) for p in recent], days=29)
        expired = sorted(f for uri, f in uri_faces if str(Path(uri).relative_to(root)) in old)
        assert len(expired) == 4
        everyone = set(lethe.catalog.face_ids().tolist())
        images = lethe.catalog.count_images()
        assert lethe.retention.expired_faces() == expired
        # Two days from now the 29-day-old photos are past the 30 days too.
        later = lethe.retention.expired_faces(datetime.now(UTC) + timedelta(days=2))
        assert len(later) == len(expired) + 3

        result = lethe.retention.purge(actor="scheduler")
        assert result["erased_faces"] == 4 and result["erased_images"] == 3
        assert set(lethe.catalog.face_ids().tolist()) == everyone - set(expired)
        assert set(lethe.index.ids().tolist()) == everyone - set(expired)
        assert lethe.catalog.count_images() == images - 3
        assert not any(lethe.crops.path(f).exists() for f in expired)
        entries = [e for e in lethe.audit_entries(limit=5) if e.action.startswith("erasure.")]
        assert [e.action for e in entries] == ["erasure.done", "erasure.rows", "erasure.planned"]
        assert all(e.actor == "scheduler" for e in entries)
        assert entries[2].details["reason"] == "retention" and entries[1].details["face_ids"] == expired
        # Retention is per photo, not per person: Biden's face in a recent group photo stays.
        for probe in biden_photos(fixtures_dir):
            found = lethe.search(probe.read_bytes(), top_k=50, purpose=PURPOSE).matches
            assert [Path(m.image).name for m in found] == ["obama_and_biden.jpg"]
        # Nothing more to do: no new job, no new entry.
        seq = lethe.audit_entries(limit=1)[0].seq
        assert lethe.retention.purge() == {"erased_faces": 0, "erased_images": 0, "expired_probes": 0}
        assert lethe.audit_entries(limit=1)[0].seq == seq
        assert lethe.verify_audit().ok
    # The command does the same, for whatever has expired since.
    with Lethe(make_settings(data)) as lethe:
        _age(lethe, [str(root / p) for p in recent], days=45)
    purged = run_cli(data, "retention", "run", "--json")
    assert purged.returncode == 0, purged.stderr
    assert json.loads(purged.stdout)["erased_faces"] == 3
    with Lethe(make_settings(data)) as lethe:
        assert len(lethe.catalog.face_ids()) == len(everyone) - 7


def test_a_source_registered_in_a_stopped_country_starts_restricted_and_is_freed_with_the_order(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    order = lethe.orders.stop("DE", then_delete=False, actor="ada", reference="BfDI-3")
    late = lethe.add_source(consent_source("late", "DE"))
    assert late.status == "restricted"  # before this fix: active, so searchable in a stopped country
    with pytest.raises(LawfulBasisError):
        lethe.ingest("late", fixtures_dir / "identities" / "rose_leslie")
    assert [e.details["source_id"] for e in lethe.audit_entries(action="order.cover")] == [late.id]
    lethe.orders.lift(int(order["order_id"]), reason="the BfDI withdrew order 3 on appeal", actor="ada")
    assert status(lethe)["late"] == "active"
    assert lethe.add_source(consent_source("later", "DE")).status == "active"  # no order in force now
