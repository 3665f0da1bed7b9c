"""Data-subject requests (GDPR Arts. 12, 15, 17, 21) on real photos: due dates and the state
machine, the review band, objections that keep a person out, the access export, and the
command-line contract of ``lethe request``."""

from __future__ import annotations

import hashlib
import html
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update
from test_erasure import face_labels

from lethe.catalog.privacy_tables import (
    RequestCandidateRow,
    RequestProbeBlobRow,
    RequestProbeRow,
    RequestRow,
    SuppressionRow,
)
from lethe.catalog.tables import AuditEntryRow, FaceRow, ImageRow
from lethe.engine import Lethe
from lethe.errors import ConflictError, InputError, NotFoundError, PrivacyError
from lethe.imaging import decode_image
from lethe.privacy.access_words import ROLE_WORDS
from lethe.privacy.requests import add_months

from conftest import (
    FIXTURE_AUTO_THRESHOLD,
    REVIEW_FLOOR_THRESHOLD,
    backend_env,
    catalog_files,
    child_env,
    copy_gallery,
    make_settings,
)

pytestmark = pytest.mark.storage

PURPOSE = "test: requests"
LETHE = Path(sys.executable).with_name("lethe")


def photo(fixtures_dir: Path, person: str, name: str | None = None) -> Path:
    folder = fixtures_dir / "identities" / person
    return folder / name if name else sorted(folder.iterdir())[0]


def images_of(expected_faces: list[dict[str, str]], person: str) -> set[str]:
    """Paths (relative to the fixtures folder) of every photo the person is in."""
    return {r["path"] for r in expected_faces if person in r["identities"].split(";")}


def faces_of(lethe: Lethe, fixtures_dir: Path, expected_faces: list[dict[str, str]], person: str) -> set[int]:
    return {f for f, who in face_labels(lethe, fixtures_dir, expected_faces).items() if who == person}


def face_ids_in(lethe: Lethe, fixtures_dir: Path, paths: set[str]) -> set[int]:
    uris = [str((fixtures_dir / p).resolve()) for p in paths]
    with lethe.catalog.session() as session:
        return set(session.scalars(select(FaceRow.id).join(ImageRow).where(ImageRow.uri.in_(uris))))


def pixels(data: bytes) -> np.ndarray:
    return decode_image(data, max_pixels=50_000_000).pixels


def table_count(lethe: Lethe, row: type) -> int:
    with lethe.catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(row)) or 0)


def run_cli(data: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env.update(
        {
            "LETHE_DATA_DIR": str(data),
            "LETHE_WORKERS": "1",
            "LETHE_ERASURE_AUTO_THRESHOLD": str(FIXTURE_AUTO_THRESHOLD),
        }
        | backend_env(data)
        | env_extra
    )
    return subprocess.run(
        [str(LETHE), *args], capture_output=True, text=True, env=env, timeout=300, cwd=data.parent
    )


def cli_json(data: Path, *args: str, **env_extra: str) -> dict[str, object]:
    result = run_cli(data, *args, "--json", **env_extra)
    assert result.returncode == 0, result.stderr
    payload: dict[str, object] = json.loads(result.stdout)  # exactly one JSON object
    return payload


# -- due dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2025, 1, 31, 9, 30, tzinfo=UTC), 1, datetime(2025, 2, 28, 9, 30, tzinfo=UTC)),
        (datetime(2024, 1, 31, 9, 30, tzinfo=UTC), 1, datetime(2024, 2, 29, 9, 30, tzinfo=UTC)),
        (datetime(2025, 3, 31, tzinfo=UTC), 1, datetime(2025, 4, 30, tzinfo=UTC)),
        (datetime(2025, 12, 15, tzinfo=UTC), 1, datetime(2026, 1, 15, tzinfo=UTC)),
        (datetime(2025, 12, 31, tzinfo=UTC), 2, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2025, 11, 30, tzinfo=UTC), 3, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2025, 10, 31, tzinfo=UTC), 3, datetime(2026, 1, 31, tzinfo=UTC)),
        (datetime(2025, 5, 15, 23, 59, tzinfo=UTC), 12, datetime(2026, 5, 15, 23, 59, tzinfo=UTC)),
    ],
)
def test_add_months_is_calendar_months_clamped_to_the_last_day(
    start: datetime, months: int, expected: datetime
) -> None:
    assert add_months(start, months) == expected


def _open(lethe: Lethe, fixtures_dir: Path, kind: str = "erasure", person: str = "joe_biden") -> int:
    return lethe.requests.open(
        kind=kind,
        photos=[photo(fixtures_dir, person).read_bytes()],
        contact="person@example.org",
        actor="op",
    ).id


def _backdate(lethe: Lethe, request_id: int, days: int) -> datetime:
    received = datetime.now(UTC) - timedelta(days=days)
    with lethe.catalog.session() as session, session.begin():
        session.execute(
            update(RequestRow)
            .where(RequestRow.id == request_id)
            .values(received_at=received, due_at=add_months(received, 1))
        )
    return received


def test_due_date_is_one_month_after_receipt_and_overdue_requests_are_marked(
    engine: Lethe, fixtures_dir: Path
) -> None:
    requests = engine.requests
    late, fresh, closed = (_open(engine, fixtures_dir) for _ in range(3))
    view = requests.get(fresh)
    assert view.state == "received" and view.kind == "erasure"
    assert abs((view.received_at - datetime.now(UTC)).total_seconds()) < 60
    assert view.due_at == add_months(view.received_at, 1)
    assert not view.overdue and view.as_dict()["overdue"] is False
    assert [v.overdue for v in requests.list_requests()] == [False, False, False]

    received = _backdate(engine, late, days=40)
    _backdate(engine, closed, days=50)
    requests.reject(closed, reason="the requester withdrew the request", actor="op")
    listed = {v.id: v for v in requests.list_requests()}
    assert listed[late].overdue and listed[late].as_dict()["overdue"] is True
    assert listed[late].due_at == add_months(received, 1) < datetime.now(UTC)
    assert not listed[fresh].overdue
    assert not listed[closed].overdue, "a closed request is never overdue"
    # Ordered by due date; open_only leaves out the closed one.
    assert [v.id for v in requests.list_requests()] == [closed, late, fresh]
    assert [v.id for v in requests.list_requests(open_only=True)] == [late, fresh]
    assert [v.id for v in requests.list_requests(state="rejected")] == [closed]


def test_extension_needs_a_reason_and_is_granted_once(engine: Lethe, fixtures_dir: Path) -> None:
    requests = engine.requests
    request_id = _open(engine, fixtures_dir)
    view = requests.get(request_id)
    for reason in ("", "   ", "busy", "  too many  "):
        with pytest.raises(InputError, match="reason"):
            requests.extend(request_id, reason=reason, actor="op")
    assert requests.get(request_id).due_at == view.due_at
    assert requests.get(request_id).extension_reason is None

    extended = requests.extend(request_id, reason="  3000 photos to review by hand  ", actor="op")
    assert extended.due_at == add_months(view.received_at, 3)
    assert extended.extension_reason == "3000 photos to review by hand"
    assert extended.state == "received"
    with pytest.raises(ConflictError, match="already extended"):  # a state conflict, not a privacy rule
        requests.extend(request_id, reason="and another three months please", actor="op")
    assert requests.get(request_id).due_at == extended.due_at
    assert any("extended to" in str(e["note"]) for e in requests.events(request_id))
    assert [e.details["request_id"] for e in engine.audit_entries(action="request.extend")] == [request_id]


def test_reject_closes_the_request_and_deletes_the_requesters_photos(
    engine: Lethe, fixtures_dir: Path
) -> None:
    requests = engine.requests
    probe = photo(fixtures_dir, "rose_leslie").read_bytes()
    request_id = requests.open(kind="access", photos=[probe], contact="r@example.org", actor="op").id
    other = _open(engine, fixtures_dir)
    assert requests.probe_photos(request_id) == [probe]
    assert table_count(engine, RequestProbeBlobRow) == 2

    for blank in ("", "  "):
        with pytest.raises(InputError, match="reason"):
            requests.reject(request_id, reason=blank, actor="op")
    assert requests.get(request_id).state == "received" and requests.probe_photos(request_id) == [probe]
    view = requests.reject(request_id, reason="identity could not be verified", actor="op")
    assert view.state == "rejected" and view.closed_at is not None and view.answered_at is None
    assert view.outcome == {"rejected": "identity could not be verified"}
    assert view.probe_hashes == [hashlib.sha256(probe).hexdigest()]
    assert requests.probe_photos(request_id) == []
    with engine.catalog.session() as session:
        blobs = session.execute(
            select(RequestProbeBlobRow.probe_id)
            .join(RequestProbeRow)
            .where(RequestProbeRow.request_id == request_id)
        ).all()
        probe_row = session.scalars(
            select(RequestProbeRow).where(RequestProbeRow.request_id == request_id)
        ).one()
    assert blobs == []
    assert probe_row.sha256 == hashlib.sha256(probe).hexdigest() and probe_row.deleted_at is not None
    assert table_count(engine, RequestProbeBlobRow) == 1  # the other request keeps its photo
    # A closed request cannot be run, verified, extended, decided or rejected again.
    with pytest.raises(PrivacyError, match="rejected"):
        requests.run(request_id, actor="op")
    with pytest.raises(PrivacyError):
        requests.verify(request_id, actor="op", method="id_document", attested=True)
    with pytest.raises(PrivacyError):
        requests.extend(request_id, reason="a perfectly good reason", actor="op")
    with pytest.raises(PrivacyError):
        requests.decide(request_id, 1, confirm=True, actor="op")
    with pytest.raises(PrivacyError):
        requests.reject(request_id, reason="again", actor="op")
    assert requests.get(request_id).state == "rejected"
    assert requests.get(other).state == "received"
    assert engine.verify_audit().ok


def test_unknown_requests_and_non_candidates_are_not_found(engine: Lethe, fixtures_dir: Path) -> None:
    requests = engine.requests
    request_id = _open(engine, fixtures_dir)
    with pytest.raises(NotFoundError):
        requests.decide(request_id, 12345, confirm=True, actor="op")
    with pytest.raises(NotFoundError):
        requests.get(request_id + 100)
    with pytest.raises(NotFoundError):
        requests.run(request_id + 100, actor="op")
    assert table_count(engine, RequestCandidateRow) == 0


@pytest.mark.parametrize(
    ("kind", "photos", "contact", "problem"),
    [
        ("erasure", ["no_face/dog.jpg"], "a@example.org", "no detectable face"),
        ("erasure", ["identities/joe_biden/biden.jpg", "no_face/eagle.jpg"], "a@example.org", "photo 2"),
        ("access", [], "a@example.org", "at least one photo"),
        ("erasure", ["identities/joe_biden/biden.jpg"], "   ", "contact"),
        ("erasure", ["identities/joe_biden/biden.jpg"], "x" * 321, "contact"),
        ("deletion", ["identities/joe_biden/biden.jpg"], "a@example.org", "kind"),
    ],
)
def test_a_request_that_cannot_be_used_is_refused_and_nothing_is_stored(
    engine: Lethe, fixtures_dir: Path, kind: str, photos: list[str], contact: str, problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        engine.requests.open(
            kind=kind, photos=[(fixtures_dir / p).read_bytes() for p in photos], contact=contact
        )
    for row in (RequestRow, RequestProbeRow, RequestProbeBlobRow, AuditEntryRow):
        assert table_count(engine, row) == 0, row.__tablename__


def test_the_contact_address_and_photos_are_stored_sealed(engine: Lethe, fixtures_dir: Path) -> None:
    probe = photo(fixtures_dir, "kit_harington").read_bytes()
    request_id = engine.requests.open(
        kind="objection", photos=[probe], contact="kit.person@example.org", actor="op"
    ).id
    assert engine.requests.contact(request_id) == "kit.person@example.org"
    database = b"".join(catalog_files(engine.settings.resolved_catalog_url).values())
    assert b"kit.person@example.org" not in database
    assert probe[1000:1400] not in database


# -- the review band -------------------------------------------------------------------------------


def test_review_band_waits_for_a_reviewer_and_only_confirmed_faces_are_erased(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]]
) -> None:
    data = copy_gallery(gallery, tmp_path)
    strict = {"erasure_auto_threshold": 0.999, "erasure_review_threshold": REVIEW_FLOOR_THRESHOLD}
    probe = photo(fixtures_dir, "joe_biden", "biden.jpg")
    with Lethe(make_settings(data, **strict)) as lethe:
        biden = faces_of(lethe, fixtures_dir, expected_faces, "joe_biden")
        everyone = set(lethe.catalog.face_ids().tolist())
        # Biden's faces that are not (near-)exact duplicates of the probe photo.
        templates = lethe.catalog.face_templates(biden)
        probe_face = face_ids_in(lethe, fixtures_dir, {"identities/joe_biden/biden.jpg"})
        (probe_id,) = probe_face
        duplicates = {f for f in biden if float(templates[f] @ templates[probe_id]) >= 0.999}
        similar = biden - duplicates
        assert probe_id in duplicates and len(similar) >= 2

        requests = lethe.requests
        request_id = requests.open(
            kind="erasure", photos=[probe.read_bytes()], contact="jb@example.org", actor="op"
        ).id
        requests.verify(request_id, actor="dpo", method="id_document", attested=True)
        first = requests.run(request_id, actor="op", auto_only=True)
        assert first["erased_faces"] == len(duplicates)
        assert first["review_candidates"] == len(similar) > 0
        assert first["state"] == "in_review"
        assert set(lethe.catalog.face_ids().tolist()) == everyone - duplicates
        pending = requests.candidates(request_id, pending_only=True)
        assert {c.face_id for c in pending} == similar
        assert all(c.band == "review" and REVIEW_FLOOR_THRESHOLD <= c.score < 0.999 for c in pending)
        assert len(requests.probe_photos(request_id)) == 1, "the photo is kept while the request is open"

    # `request answer` refuses while candidates wait for a decision.
    env = {
        "LETHE_ERASURE_AUTO_THRESHOLD": "0.999",
        "LETHE_ERASURE_REVIEW_THRESHOLD": str(REVIEW_FLOOR_THRESHOLD),
    }
    refused = run_cli(data, "request", "answer", str(request_id), "--json", **env)
    assert refused.returncode == 4 and refused.stdout == ""
    assert "wait for a decision" in refused.stderr and refused.stderr.strip().count("\n") == 0

    with Lethe(make_settings(data, **strict)) as lethe:
        requests = lethe.requests
        assert requests.get(request_id).state == "in_review"
        confirmed, *rejected = sorted(similar)
        assert requests.decide(request_id, confirmed, confirm=True, actor="reviewer").decision == "confirmed"
        for face_id in rejected:
            requests.decide(request_id, face_id, confirm=False, actor="reviewer")
        assert requests.candidates(request_id, pending_only=True) == []
        second = requests.run(request_id, actor="op", auto_only=False)
        assert second["erased_faces"] == len(duplicates) + 1
        assert second["review_candidates"] == 0 and second["remaining_after_verify"] == 0
        assert second["state"] == "answered"
        # Only the confirmed face went; the rejected ones stay (the reviewer said: not the person).
        assert set(lethe.catalog.face_ids().tolist()) == everyone - duplicates - {confirmed}
        assert set(rejected) <= set(lethe.index.ids().tolist())
        assert requests.probe_photos(request_id) == []
        decided = {c.face_id: (c.decision, c.decided_by) for c in requests.candidates(request_id)}
        assert decided[confirmed] == ("confirmed", "reviewer")
        assert all(decided[f] == ("rejected", "reviewer") for f in rejected)
        view = requests.get(request_id)
        assert view.answered_at is not None and view.outcome is not None
        assert view.outcome["erased_faces"] == len(duplicates) + 1
        with pytest.raises(PrivacyError):
            requests.run(request_id, actor="op")
        assert lethe.verify_audit().ok


def test_a_request_rejected_after_a_partial_erasure_keeps_the_record_of_it(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    strict = {"erasure_auto_threshold": 0.999, "erasure_review_threshold": REVIEW_FLOOR_THRESHOLD}
    with Lethe(make_settings(data, **strict)) as lethe:
        requests = lethe.requests
        request_id = requests.open(
            kind="erasure", photos=[photo(fixtures_dir, "joe_biden", "biden.jpg").read_bytes()],
            contact="jb@example.org", actor="op",
        ).id  # fmt: skip
        requests.verify(request_id, actor="dpo", method="id_document", attested=True)
        first = requests.run(request_id, actor="op", auto_only=True)
        assert first["state"] == "in_review" and int(first["erased_faces"]) >= 1  # type: ignore[call-overload]
        view = requests.reject(request_id, reason="the requester withdrew the request", actor="op")
        assert view.state == "rejected" and view.outcome is not None
        assert view.outcome["rejected"] == "the requester withdrew the request"
        assert view.outcome["erased_faces"] == first["erased_faces"]
        assert requests.probe_photos(request_id) == []
        assert requests.list_requests(open_only=True) == []


def test_an_objection_recorded_by_another_process_applies_at_once(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = photo(fixtures_dir, "kit_harington", "john2.jpeg").read_bytes()
    with Lethe(make_settings(data)) as service, Lethe(make_settings(data)) as cli:
        assert service.search(probe, purpose=PURPOSE).matches
        request_id = cli.requests.open(
            kind="objection", photos=[photo(fixtures_dir, "kit_harington").read_bytes()],
            contact="k@example.org",
        ).id  # fmt: skip
        cli.requests.verify(request_id, actor="dpo", method="id_document", attested=True)
        assert cli.requests.run(request_id, actor="op", auto_only=True)["suppressed"] is True
        assert cli.search(probe, purpose=PURPOSE).no_match
        assert service.search(probe, purpose=PURPOSE).no_match


# -- objection -------------------------------------------------------------------------------------


def test_an_objected_person_is_never_returned_nor_ingested_again_until_withdrawal(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]]
) -> None:
    data = copy_gallery(gallery, tmp_path)
    kit_photos = sorted((fixtures_dir / "identities" / "kit_harington").iterdir())
    rose = photo(fixtures_dir, "rose_leslie", "img1.jpg")
    group = fixtures_dir / "group_labelled" / "kit_with_rose.jpg"
    with Lethe(make_settings(data)) as lethe:
        kit = faces_of(lethe, fixtures_dir, expected_faces, "kit_harington")
        rose_faces = faces_of(lethe, fixtures_dir, expected_faces, "rose_leslie")
        assert len(kit) == 4 and len(rose_faces) == 3
        faces_before = lethe.catalog.count_faces()
        for probe in kit_photos:
            assert kit <= {m.face_id for m in lethe.search(probe.read_bytes(), purpose=PURPOSE).matches}

        requests = lethe.requests
        request_id = requests.open(
            kind="objection", photos=[kit_photos[0].read_bytes()], contact="k@example.org", actor="op"
        ).id
        requests.verify(request_id, actor="dpo", method="id_document", attested=True)
        result = requests.run(request_id, actor="op", auto_only=True)
        assert result["suppressed"] is True and result["state"] == "answered"
        assert result["review_candidates"] == 0

        # Hidden, not deleted; never returned, even with no threshold at all.
        assert lethe.catalog.count_faces() == faces_before
        for probe in kit_photos:
            assert lethe.search(probe.read_bytes(), purpose=PURPOSE).no_match
            everything = lethe.search(probe.read_bytes(), top_k=100, threshold=-1.0, purpose=PURPOSE)
            assert everything.matches and kit.isdisjoint(m.face_id for m in everything.matches)
        # Rose, in the same group photo, is still found.
        assert {m.face_id for m in lethe.search(rose.read_bytes(), purpose=PURPOSE).matches} == rose_faces

    # The same photos again, each with a byte appended: new hashes, same pixels.
    fresh = tmp_path / "new_photos"
    fresh.mkdir()
    copies = {}
    for source in [*kit_photos, group, rose]:
        original = source.read_bytes()
        target = fresh / f"copy_{source.name}"
        target.write_bytes(original + b"\x00")
        copies[source] = target
        assert hashlib.sha256(target.read_bytes()).digest() != hashlib.sha256(original).digest()
        assert np.array_equal(pixels(original), pixels(target.read_bytes()))
    with Lethe(make_settings(data)) as lethe:
        report = lethe.ingest("events", fresh)
        assert report.errors == [] and report.images == len(copies) and report.skipped == 0
        assert report.suppressed == len(kit_photos) + 1  # each of his photos and the group photo
        assert report.faces == 2  # Rose, alone and in the group photo
        with lethe.catalog.session() as session:
            new_faces = dict(
                session.execute(
                    select(ImageRow.uri, func.count(FaceRow.id))
                    .outerjoin(FaceRow)
                    .where(ImageRow.uri.in_([str(p) for p in copies.values()]))
                    .group_by(ImageRow.uri)
                ).all()
            )
        # His own photos left no face to store: no row, no path, only their hash (skipped next time).
        assert new_faces == {str(copies[group]): 1, str(copies[rose]): 1}
        his = {hashlib.sha256(copies[p].read_bytes()).hexdigest() for p in kit_photos}
        assert lethe.catalog.known_hashes(lethe.catalog.source("events").id, his) == his
        assert lethe.catalog.count_faces() == faces_before + 2
        for probe in kit_photos:
            everything = lethe.search(probe.read_bytes(), top_k=100, threshold=-1.0, purpose=PURPOSE)
            assert kit.isdisjoint(m.face_id for m in everything.matches)
            assert not any(m.image in {str(copies[p]) for p in kit_photos} for m in everything.matches)
            assert lethe.search(probe.read_bytes(), purpose=PURPOSE).no_match
        assert len(lethe.search(rose.read_bytes(), purpose=PURPOSE).matches) == len(rose_faces) + 2

        # Withdrawal deletes the templates, and his faces (never deleted) are found again.
        (objection,) = lethe.objections.list_active()
        assert objection["request_id"] == request_id and objection["withdrawn_at"] is None
        lethe.objections.withdraw(int(objection["id"]), actor="op")  # type: ignore[call-overload]
        with lethe.catalog.session() as session:
            row = session.get(SuppressionRow, objection["id"])
            assert row is not None and row.templates is None and row.withdrawn_at is not None
        with pytest.raises(ConflictError, match="already withdrawn"):
            lethe.objections.withdraw(int(objection["id"]), actor="op")  # type: ignore[call-overload]
        with pytest.raises(NotFoundError):
            lethe.objections.withdraw(999, actor="op")
        assert len(lethe.objection_templates.hidden) == 0
        for probe in kit_photos:
            assert {m.face_id for m in lethe.search(probe.read_bytes(), purpose=PURPOSE).matches} == kit
        assert lethe.verify_audit().ok
    with Lethe(make_settings(data)) as lethe:  # and it stays withdrawn
        assert {m.face_id for m in lethe.search(kit_photos[1].read_bytes(), purpose=PURPOSE).matches} == kit


# -- access ----------------------------------------------------------------------------------------


def test_access_export_lists_every_photo_and_every_search_that_returned_it(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]]
) -> None:
    data = copy_gallery(gallery, tmp_path)
    person = "barack_obama"
    with Lethe(make_settings(data)) as lethe:
        searches = [
            ("alice", "newsletter photo of the visit", "obama1.jpg", 10),
            ("bob", "press archive check", "obama2.jpg", 3),
        ]
        # The shared gallery may hold searches made by other tests: they are listed too.
        returned: dict[int, list[tuple[str, str]]] = {}
        for earlier in reversed(lethe.audit_entries(action="search", limit=100_000)):
            for face_id in earlier.details["face_ids"]:
                returned.setdefault(face_id, []).append((earlier.actor, earlier.details["purpose"]))
        mine: set[int] = set()
        for actor, purpose, name, top in searches:
            probe = photo(fixtures_dir, person, name).read_bytes()
            for match in lethe.search(probe, purpose=purpose, actor=actor, top_k=top).matches:
                returned.setdefault(match.face_id, []).append((actor, purpose))
                mine.add(match.face_id)
        rose = photo(fixtures_dir, "rose_leslie").read_bytes()
        assert lethe.search(rose, purpose="someone else entirely", actor="carol").matches
        theirs = faces_of(lethe, fixtures_dir, expected_faces, person)
        # Only Obama's faces were returned by those two searches; bob's (top 3) returned three.
        assert mine <= theirs
        assert sum(1 for v in returned.values() if ("bob", "press archive check") in v) == 3

        requests = lethe.requests
        request_id = requests.open(
            kind="access",
            photos=[photo(fixtures_dir, person, "obama.jpg").read_bytes()],
            contact="bo@example.org",
            actor="op",
        ).id
        requests.verify(request_id, actor="dpo", method="id_document", attested=True)
        result = requests.run(request_id, actor="op", auto_only=True)
        assert result["state"] == "answered" and result["review_candidates"] == 0
        assert result["faces"] == len(theirs)
        export = requests.export_path(request_id)
        assert export.is_dir() and export.is_relative_to(data)
        assert export.stat().st_mode & 0o077 == 0
        assert requests.probe_photos(request_id) == []

    document = json.loads((export / "export.json").read_text())
    assert document["request"]["id"] == request_id
    entries = document["faces"]
    assert {e["face_id"] for e in entries} == theirs
    paths = {str(Path(e["image"]).relative_to(fixtures_dir.resolve())) for e in entries}
    assert paths == images_of(expected_faces, person)
    for entry in entries:
        # Each search by its purpose; who ran it by role, never by name (issue 19: the access copy).
        assert [s["purpose"] for s in entry["searches"]] == [p for _, p in returned.get(entry["face_id"], [])]
        assert all(s["operator"] in ROLE_WORDS for s in entry["searches"])
        assert entry["source"] == "events" and entry["lawful_basis"] == "consent"
        assert entry["jurisdiction"] == "FR" and entry["retention_until"] > entry["ingested_at"]
        crop = export / entry["crop"]
        assert crop.is_file() and crop.read_bytes()[:3] == b"\xff\xd8\xff"
        assert pixels(crop.read_bytes()).shape[:2] == (112, 112)  # SFace's aligned chip
    assert {e["face_id"] for e in entries if e["searches"]} == theirs & set(returned)
    assert mine <= {e["face_id"] for e in entries if e["searches"]}
    page = (export / "index.html").read_text()
    for entry in entries:
        assert html.escape(entry["image"]) in page
        assert f'src="{entry["crop"]}"' in page
    assert "press archive check" in page and "someone else entirely" not in page


# -- the command-line contract ---------------------------------------------------------------------


def test_cli_request_contract(gallery: Path, tmp_path: Path, fixtures_dir: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        faces_before = lethe.catalog.count_faces()

    opened = cli_json(
        data, "request", "open", "--kind", "erasure",
        "--photo", str(photo(fixtures_dir, "joe_biden", "biden.jpg")), "--contact", "x@example.org",
    )  # fmt: skip
    assert isinstance(opened["id"], int)
    due = datetime.fromisoformat(str(opened["due_at"]))
    assert due.tzinfo is not None and timedelta(days=27) < due - datetime.now(UTC) < timedelta(days=32)
    refused = run_cli(data, "request", "run", str(opened["id"]), "--auto", "--json")
    assert refused.returncode == 4 and refused.stdout == "" and "not verified" in refused.stderr
    verified = cli_json(data, "request", "verify", str(opened["id"]), "--method", "id_document")
    assert verified["id"] == opened["id"] and verified["state"] == "verified"
    erased = cli_json(data, "request", "run", str(opened["id"]), "--auto")
    assert {"erased_faces", "erased_images", "review_candidates", "remaining_after_verify"} <= set(erased)
    assert erased["erased_faces"] == 4 and erased["erased_images"] == 2
    assert (erased["review_candidates"], erased["remaining_after_verify"]) == (0, 0)

    access = cli_json(
        data, "request", "open", "--kind", "access",
        "--photo", str(photo(fixtures_dir, "barack_obama", "obama.jpg")),
        "--photo", str(photo(fixtures_dir, "barack_obama", "obama1.jpg")), "--contact", "o@example.org",
    )  # fmt: skip
    cli_json(data, "request", "verify", str(access["id"]), "--method", "id_document", "--note", "passport")
    exported = cli_json(data, "request", "run", str(access["id"]), "--auto")
    assert exported["faces"] == 9
    assert (Path(str(exported["export"])) / "export.json").is_file()

    objection = cli_json(
        data, "request", "open", "--kind", "objection",
        "--photo", str(photo(fixtures_dir, "kit_harington")), "--contact", "k@example.org",
    )  # fmt: skip
    cli_json(data, "request", "verify", str(objection["id"]), "--method", "signed_letter")
    assert cli_json(data, "request", "run", str(objection["id"]), "--auto")["suppressed"] is True

    # Failures: one-line reason on stderr, nothing on stdout, the documented exit codes.
    again = run_cli(data, "request", "run", str(opened["id"]), "--auto", "--json")
    assert again.returncode == 4 and again.stdout == "" and "answered" in again.stderr
    missing = run_cli(data, "request", "run", "999", "--auto", "--json")
    assert missing.returncode == 3 and missing.stdout == "" and missing.stderr.strip().count("\n") == 0
    no_face = run_cli(
        data, "request", "open", "--kind", "erasure", "--contact", "x@example.org",
        "--photo", str(fixtures_dir / "no_face" / "dog.jpg"), "--json",
    )  # fmt: skip
    assert no_face.returncode == 2 and no_face.stdout == "" and "no detectable face" in no_face.stderr

    verified = cli_json(data, "audit", "verify")
    assert verified["ok"] is True and int(verified["entries"]) > 10  # type: ignore[call-overload]
    with Lethe(make_settings(data)) as lethe:
        assert lethe.catalog.count_faces() == faces_before - 4
        views = lethe.requests.list_requests()
        assert [(v.id, v.kind, v.state) for v in views] == [
            (opened["id"], "erasure", "answered"),
            (access["id"], "access", "answered"),
            (objection["id"], "objection", "answered"),
        ]
        assert [o["request_id"] for o in lethe.objections.list_active()] == [objection["id"]]


def test_an_objection_reviewed_in_two_runs_is_one_objection_that_one_withdrawal_lifts(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]]
) -> None:
    data = copy_gallery(gallery, tmp_path)
    person = "alex_lacamoire"
    probes = sorted((fixtures_dir / "identities" / person).iterdir())
    # His second photo scores 0.72 to img1; the PNG portrait 0.57 to img1 and 0.68 to the second.
    with Lethe(make_settings(data, erasure_auto_threshold=0.70)) as lethe:
        theirs = faces_of(lethe, fixtures_dir, expected_faces, person)
        requests = lethe.requests
        request_id = requests.open(
            kind="objection", photos=[photo(fixtures_dir, person, "img1.jpg").read_bytes()],
            contact="al@example.org", actor="op",
        ).id  # fmt: skip
        requests.verify(request_id, actor="dpo", method="id_document", attested=True)
        first = requests.run(request_id, actor="op", auto_only=True)
        # One of his photos is less alike (PNG portrait): it waits for a reviewer.
        assert first["suppressed"] is True and first["state"] == "in_review"
        (waiting,) = requests.candidates(request_id, pending_only=True)
        assert waiting.face_id in theirs
        requests.decide(request_id, waiting.face_id, confirm=True, actor="reviewer")
        second = requests.run(request_id, actor="op")
        assert second["state"] == "answered" and second["review_candidates"] == 0
        for probe in probes:
            assert lethe.search(probe.read_bytes(), purpose=PURPOSE).no_match

        active = [o for o in lethe.objections.list_active() if o["withdrawn_at"] is None]
        assert [o["request_id"] for o in active] == [request_id], "one request, one objection"
        lethe.objections.withdraw(int(active[0]["id"]), actor="op")  # type: ignore[call-overload]
        for probe in probes:
            found = {m.face_id for m in lethe.search(probe.read_bytes(), top_k=50, purpose=PURPOSE).matches}
            assert found and found <= theirs


def test_a_restriction_hides_the_person_from_search_but_keeps_their_data(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    """Art. 18: the faces stay (nothing erased, ingest goes on) but no search returns them until the
    restriction is lifted."""

    data = copy_gallery(gallery, tmp_path)
    photos = sorted((fixtures_dir / "identities" / "rose_leslie").iterdir())
    with Lethe(make_settings(data)) as lethe:
        faces_before = lethe.catalog.count_faces()
        assert not lethe.search(photos[1].read_bytes(), purpose="test").no_match
        requests = lethe.requests
        opened = requests.open(kind="restriction", photos=[photos[0].read_bytes()], contact="r@example.org")
        requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
        result = requests.run(opened.id, actor="dpo", auto_only=True)
        assert result["restricted"] is True and result["state"] == "answered"
        assert lethe.catalog.count_faces() == faces_before
        assert lethe.search(photos[1].read_bytes(), purpose="test").no_match
        # Ingest is not blocked by a restriction (unlike an objection).
        copy = tmp_path / "again"
        copy.mkdir()
        (copy / "rose.jpg").write_bytes(photos[1].read_bytes() + b"\0")
        report = lethe.ingest("events", copy)
        assert (report.faces, report.suppressed) == (1, 0)
        (entry,) = [r for r in lethe.objections.list_active() if r["request_id"] == opened.id]
        assert entry["scope"] == "restriction"
        lethe.objections.withdraw(int(entry["id"]), actor="dpo")  # type: ignore[call-overload]
        assert not lethe.search(photos[1].read_bytes(), purpose="test").no_match
