"""Identity verification of data-subject requests (security review, finding 1) and what depends on
it: nothing runs before verification; verification is a record (method, who, when, attestation,
a note kept off the audit chain); an access request needs an identity document or two different
verifiers; a portal request waits for its contact address to be confirmed; an access export lists
nothing for an unverified request. Also finding 5 (an access run is an audited search; a rejected
request's export is deleted) and finding 14 (request lists are pages read in a fixed number of SQL
statements). Real engine, real photos, real catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select

from lethe.catalog.privacy_tables import (
    RequestProbeBlobRow,
    RequestProbeRow,
    RequestRow,
)
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow, AuditTextRow, ImageRow
from lethe.engine import Lethe
from lethe.errors import ConflictError, InputError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.access import write_export

from conftest import copy_gallery, make_settings

pytestmark = pytest.mark.storage

ID = {"method": "id_document", "attested": True}


def photo(fixtures_dir: Path, person: str, name: str | None = None) -> bytes:
    folder = fixtures_dir / "identities" / person
    return (folder / name if name else sorted(folder.iterdir())[0]).read_bytes()


@pytest.fixture
def lethe(gallery: Path, tmp_path: Path) -> Iterator[Lethe]:
    with Lethe(make_settings(copy_gallery(gallery, tmp_path))) as engine:
        yield engine


def outbox_message(lethe: Lethe, request_id: int) -> dict[str, str]:
    message: dict[str, str] = json.loads(
        (lethe.settings.data_dir / "outbox" / f"request-{request_id}.json").read_text()
    )
    return message


# -- (a) nothing runs before verification -------------------------------------------------------


@pytest.mark.parametrize("kind", ["access", "erasure", "objection", "restriction"])
def test_run_and_answer_refuse_an_unverified_request(lethe: Lethe, fixtures_dir: Path, kind: str) -> None:
    requests = lethe.requests
    faces = lethe.catalog.count_faces()
    opened = requests.open(
        kind=kind, photos=[photo(fixtures_dir, "joe_biden", "biden.jpg")], contact="x@x.org"
    )
    for act in (lambda: requests.run(opened.id, actor="dpo", auto_only=True),
                lambda: requests.answer(opened.id, actor="dpo")):  # fmt: skip
        with pytest.raises(PrivacyError, match="not verified"):
            act()
    view = requests.get(opened.id)
    assert view.state == "received" and view.candidates == {} and view.outcome is None
    assert lethe.catalog.count_faces() == faces and lethe.objections.list_active() == []
    assert not any(e["to"] == "verified" for e in requests.events(opened.id))
    assert lethe.audit_entries(action="search") == []


# -- (b) verification is a record -----------------------------------------------------------------


def test_verification_is_a_record_with_method_verifier_and_attestation(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    requests = lethe.requests
    erasure = requests.open(kind="erasure", photos=[photo(fixtures_dir, "rose_leslie")], contact="r@x.org")
    with pytest.raises(InputError, match="method"):
        requests.verify(erasure.id, actor="dora", method="e-mail answered", attested=True)
    with pytest.raises(InputError, match="attest"):
        requests.verify(erasure.id, actor="dora", method="id_document", attested=False)
    assert requests.get(erasure.id).state == "received" and requests.verifications(erasure.id) == []

    note = "passport no. X1234567 of Rose Example checked at the desk"
    view = requests.verify(erasure.id, actor="dora", method="in_person", attested=True, note=f"  {note} ")
    assert view.state == "verified"  # an erasure needs one verifier
    (check,) = requests.verifications(erasure.id)
    assert (check["method"], check["verified_by"], check["attested"], check["note"]) == (
        "in_person", "dora", True, note,
    )  # fmt: skip
    assert abs(now_utc() - datetime.fromisoformat(str(check["verified_at"]))) < timedelta(minutes=1)
    # the note is kept off the audit chain (erasable text beside it), the method on it
    (entry,) = lethe.audit_entries(action="request.verify")
    assert entry.details["method"] == "in_person" and entry.details["attested"] is True
    with lethe.catalog.session() as session:
        chained = session.get(AuditEntryRow, entry.seq)
        assert chained is not None and "X1234567" not in json.dumps(chained.details)
        assert [
            t.text for t in session.scalars(select(AuditTextRow).where(AuditTextRow.seq == entry.seq))
        ] == [note]
    with pytest.raises(PrivacyError, match="verified"):  # once verified, no more checks
        requests.verify(erasure.id, actor="otto", **ID)
    assert lethe.verify_audit().ok


def test_an_access_request_needs_an_identity_document_or_two_different_verifiers(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    requests = lethe.requests
    probe = photo(fixtures_dir, "barack_obama", "obama.jpg")
    two = requests.open(kind="access", photos=[probe], contact="o@x.org")
    assert requests.verify(two.id, actor="dora", method="signed_letter", attested=True).state == "received"
    with pytest.raises(PrivacyError, match="not verified"):
        requests.run(two.id, actor="dora")
    with pytest.raises(ConflictError, match="someone else"):
        requests.verify(two.id, actor="dora", method="account_holder", attested=True)
    assert requests.verify(two.id, actor="dana", method="account_holder", attested=True).state == "verified"
    assert [(v["method"], v["verified_by"]) for v in requests.verifications(two.id)] == [
        ("signed_letter", "dora"), ("account_holder", "dana"),
    ]  # fmt: skip
    document = requests.open(kind="access", photos=[probe], contact="o@x.org")
    assert requests.verify(document.id, actor="dora", **ID).state == "verified"
    assert requests.run(document.id, actor="dora", auto_only=True)["faces"] == 9


# -- (c) the portal's contact confirmation --------------------------------------------------------


def test_a_portal_request_waits_for_its_contact_address_to_be_confirmed(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    requests = lethe.requests
    opened = requests.open(
        kind="erasure", photos=[photo(fixtures_dir, "joe_biden")], contact="joe@example.org",
        channel="portal", actor="portal", confirm_contact=True,
    )  # fmt: skip
    assert opened.state == "unconfirmed"
    # not in the DPO's queue, not counted, not verifiable, not runnable
    assert requests.list_requests() == [] and requests.list_requests(open_only=True) == []
    assert requests.queue_summary()["open"] == 0
    assert [v.id for v in requests.list_requests(state="unconfirmed")] == [opened.id]
    with pytest.raises(PrivacyError, match="confirmed"):
        requests.verify(opened.id, actor="dora", **ID)
    with pytest.raises(PrivacyError, match="unconfirmed: its requester has not yet returned the code"):
        requests.run(opened.id, actor="dora")  # was "it cannot be run again" (re-run of the review)

    message = outbox_message(lethe, opened.id)
    assert message["to"] == "joe@example.org" and message["reference"] == opened.ref
    code = message["code"]
    assert (
        code in message["body"] and message["confirm_path"] == f"/portal?reference={opened.ref}&code={code}"
    )
    outbox = lethe.settings.data_dir / "outbox"
    assert (
        outbox.stat().st_mode & 0o077 == 0
        and (outbox / f"request-{opened.id}.json").stat().st_mode & 0o077 == 0
    )
    for wrong in (("nope", code), (opened.ref, code + "x"), (opened.ref, "")):
        with pytest.raises(InputError, match="not right"):
            requests.confirm_contact(*wrong)
    assert requests.get(opened.id).state == "unconfirmed"

    confirmed = requests.confirm_contact(opened.ref, f" {code} ")
    assert confirmed.state == "received"
    assert not (outbox / f"request-{opened.id}.json").exists()  # it held the address in clear
    assert requests.confirm_contact(opened.ref, code).state == "received"  # a second click is harmless
    assert [v.id for v in requests.list_requests(open_only=True)] == [opened.id]
    assert requests.verify(opened.id, actor="dora", method="id_document", attested=True).state == "verified"
    # a request recorded at the desk needs no confirmation and writes no message
    desk = requests.open(kind="erasure", photos=[photo(fixtures_dir, "rose_leslie")], contact="r@x.org")
    assert desk.state == "received" and not (outbox / f"request-{desk.id}.json").exists()


def test_an_unconfirmed_portal_request_expires_after_wrong_codes_or_in_time(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    requests = lethe.requests
    probe = photo(fixtures_dir, "kit_harington")

    def portal() -> int:
        return requests.open(kind="access", photos=[probe], contact="k@x.org", channel="portal",
                             confirm_contact=True).id  # fmt: skip

    guessed, late, kept = portal(), portal(), portal()
    code = outbox_message(lethe, guessed)["code"]
    for _ in range(5):
        with pytest.raises(InputError):
            requests.confirm_contact(requests.get(guessed).ref, "guess")
    with pytest.raises(InputError):  # the right code comes too late
        requests.confirm_contact(requests.get(guessed).ref, code)
    assert requests.get(guessed).state == "expired" and requests.probe_photos(guessed) == []

    assert requests.expire_unconfirmed(now=now_utc() + timedelta(hours=1)) == 0
    with lethe.catalog.session() as session, session.begin():
        session.get(RequestRow, late).received_at = now_utc() - timedelta(days=4)  # type: ignore[union-attr]
    assert requests.expire_unconfirmed() == 1
    for request_id in (guessed, late):
        view = requests.get(request_id)
        assert view.state == "expired" and view.closed_at is not None
        assert not (lethe.settings.data_dir / "outbox" / f"request-{request_id}.json").exists()
    with lethe.catalog.session() as session:
        blobs = session.scalars(
            select(RequestProbeBlobRow.probe_id)
            .join(RequestProbeRow)
            .where(RequestProbeRow.request_id.in_([guessed, late]))
        ).all()
    assert blobs == []
    assert requests.get(kept).state == "unconfirmed" and len(requests.probe_photos(kept)) == 1
    assert lethe.verify_audit().ok


# -- (d) no export before verification ------------------------------------------------------------


def test_an_access_export_lists_nothing_until_the_requester_is_verified(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    requests = lethe.requests
    opened = requests.open(
        kind="access", photos=[photo(fixtures_dir, "barack_obama", "obama.jpg")], contact="o@x.org"
    )
    faces = lethe.catalog.face_ids().tolist()
    folder, listed = write_export(lethe.store, requests.get(opened.id), faces)
    document = json.loads((folder / "export.json").read_text())
    assert listed == 0 and document["faces"] == [] and list((folder / "crops").iterdir()) == []
    page = (folder / "index.html").read_text()
    with lethe.catalog.session() as session:
        held = [v for row in session.execute(select(ImageRow.uri, ImageRow.source_url)) for v in row if v]
    assert held and not [v for v in held if v in page]  # no photo's path or source URL
    assert "<img" not in page  # and no photo (the complaint route's links stay: they are public)
    requests.verify(opened.id, actor="dora", **ID)
    folder, listed = write_export(lethe.store, requests.get(opened.id), faces)
    assert listed == len(faces) > 0
    assert [v for v in held if v in (folder / "index.html").read_text()]  # the check above can fail


# -- finding 5: an access run is a search; a rejected request's export goes -----------------------


def test_an_access_run_is_audited_as_a_search_and_a_rejection_deletes_the_export(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    strict = {"erasure_auto_threshold": 0.999, "erasure_review_threshold": 0.3}
    with Lethe(make_settings(copy_gallery(gallery, tmp_path), **strict)) as lethe:
        requests = lethe.requests
        opened = requests.open(kind="access", photos=[photo(fixtures_dir, "barack_obama", "obama2.jpg")],
                               contact="o@x.org")  # fmt: skip
        requests.verify(opened.id, actor="dora", **ID)
        ran = requests.run(opened.id, actor="dora", auto_only=True)
        assert ran["state"] == "in_review" and int(ran["faces"]) >= 1  # type: ignore[call-overload]
        found = {c.face_id for c in requests.candidates(opened.id)}
        (search,) = lethe.audit_entries(action="search")
        assert search.actor == "dora" and search.details["purpose"] == f"access request {opened.id}"
        assert set(search.details["face_ids"]) == found and search.details["request_id"] == opened.id
        with lethe.catalog.session() as session:
            returned = audit.entries_for_faces(session, found)
        assert all([e.seq for e in returned[f]] == [search.seq] for f in found)  # in their own exports

        export = requests.export_path(opened.id)
        crops = list((export / "crops").iterdir())
        assert crops and (export / "export.json").is_file()
        rejected = requests.reject(
            opened.id, reason="the requester could not show an identity document", actor="dora"
        )
        assert not export.exists() and not any(c.exists() for c in crops)
        assert rejected.outcome is not None and "export" not in rejected.outcome
        assert rejected.outcome["export_deleted"] is True


# -- finding 14: pages, in a fixed number of statements -------------------------------------------


def test_request_lists_are_pages_read_in_a_fixed_number_of_statements(
    engine: Lethe, fixtures_dir: Path
) -> None:
    requests = engine.requests
    first = requests.open(kind="erasure", photos=[photo(fixtures_dir, "joe_biden")], contact="x@x.org")
    at = now_utc()
    with engine.catalog.session() as session, session.begin():
        session.execute(
            insert(RequestRow),
            [{"ref": f"{i:016x}", "kind": "access", "state": "received", "received_at": at,
              "due_at": at + timedelta(days=40, seconds=i), "channel": "portal", "contact": b"sealed",
              "confirm_attempts": 0} for i in range(1, 2000)],
        )  # fmt: skip
        ids = session.scalars(select(RequestRow.id).where(RequestRow.id != first.id)).all()
        session.execute(
            insert(RequestProbeRow),
            [{"request_id": r, "sha256": "0" * 64, "faces": 1, "added_at": at} for r in ids],
        )
    statements: list[str] = []

    def count(*_: object) -> None:
        statements.append("x")

    sql = engine.catalog.database
    event.listen(sql, "before_cursor_execute", count)
    try:
        default = requests.list_requests(open_only=True, limit=50)
        small = len(statements)
        statements.clear()
        biggest = requests.list_requests(open_only=True, limit=500, page=2)
        large = len(statements)
        statements.clear()
        everything = requests.list_requests()
        whole = len(statements)
    finally:
        event.remove(sql, "before_cursor_execute", count)
    assert len(default) == 50 and default.total == 2000 and default.next_page == 2
    assert default[0].id == first.id and all(v.probe_hashes for v in default)
    assert len(biggest) == 500 and biggest.page == 2 and biggest.next_page == 3
    assert len(everything) == 2000 and everything.next_page is None
    # count + rows + probe hashes + candidates: no statement per request (there were 2 per request)
    assert small == large <= 4
    assert whole <= 2 + 2 * 4  # in chunks of 500
    summary = requests.queue_summary()
    assert summary["open"] == 2000 and summary["overdue"] == 0
