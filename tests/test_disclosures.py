"""The disclosure ledger and the notices to recipients (issue 19 item 2; GDPR Arts. 15(1)(c),
17(2), 19; CJEU C-154/21), on a real catalog with real photos ingested by the real pipeline: an
erasure, a restriction or a purge of faces that were disclosed produces one notice per recipient
(and the Art. 17(2) list for published photos); the access copy names the recipients; the answer
letter names those told; marking a notice is audited; bad input records nothing; the recipient's
address never leaves its seal."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from lethe.catalog.disclosure_tables import DisclosureRow, RecipientRow
from lethe.catalog.tables import AuditEntryRow, FaceRow, ImageRow
from lethe.cli import app as cli_app
from lethe.engine import Lethe
from lethe.errors import ConflictError, InputError, NotFoundError
from lethe.privacy.disclosures import pack_files, recipient_list
from lethe.users import Users

from conftest import backend_env, catalog_files, consent_source, copy_gallery, make_settings

pytestmark = pytest.mark.storage

KIT = ("john1.jpeg", "john2.jpeg")
PUBLISHED = "https://press.example.org/gallery/kit-premiere.jpg"
PRESS_EMAIL = "desk@press.example.org"
REASON = "press licence agreement 2026-14, Art. 6(1)(f)"
DPO = "cli:dpo-kim@host"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """Two photos of Kit Harington (one published on a press site, per the manifest), one of Rose
    Leslie and one of Joe Biden, ingested into a consent source."""
    root = tmp_path_factory.mktemp("disclosures")
    photos = root / "photos"
    photos.mkdir()
    for name in (
        "kit_harington/john1.jpeg",
        "kit_harington/john2.jpeg",
        "rose_leslie/img1.jpg",
        "joe_biden/biden.jpg",
    ):
        shutil.copy(fixtures_dir / "identities" / name, photos / Path(name).name)
    manifest = photos / "photos.csv"
    manifest.write_text(f"path,source_url\njohn1.jpeg,{PUBLISHED}\njohn2.jpeg,\nimg1.jpg,\nbiden.jpg,\n")
    data = root / "data"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source())
        report = lethe.ingest("events", manifest)
        assert report.errors == [] and report.faces == 4
    return data


def faces_in(lethe: Lethe, *names: str) -> list[int]:
    with lethe.catalog.session() as session:
        rows = session.execute(select(FaceRow.id, ImageRow.uri).join(ImageRow)).all()
    found = sorted(fid for fid, uri in rows if Path(uri).name in names)
    assert len(found) == len(names)
    return found


def actions(lethe: Lethe) -> list[str]:
    with lethe.catalog.session() as session:
        return list(session.scalars(select(AuditEntryRow.action).order_by(AuditEntryRow.seq)))


def run_request(lethe: Lethe, kind: str, probe: Path) -> int:
    requests = lethe.requests
    request_id = requests.open(
        kind=kind, photos=[probe.read_bytes()], contact="kit@example.org", actor="op"
    ).id
    requests.verify(request_id, actor="dpo", method="id_document", attested=True)
    assert requests.run(request_id, actor="dpo", auto_only=True)["state"] == "answered"
    return request_id


@pytest.fixture
def lethe(base: Path, tmp_path: Path) -> Iterator[Lethe]:
    with Lethe(make_settings(copy_gallery(base, tmp_path), controller_name="Lethe Test Archive")) as engine:
        yield engine


def test_an_erasure_after_a_disclosure_lists_the_recipient_and_writes_its_notice(
    lethe: Lethe, fixtures_dir: Path
) -> None:
    kit, rose = faces_in(lethe, *KIT), faces_in(lethe, "img1.jpg")
    press = lethe.disclosures.add_recipient(
        "Daily Press Agency", "controller", "FR", actor=DPO, contact=PRESS_EMAIL
    )
    auditors = lethe.disclosures.add_recipient("Archive Auditors Ltd", "processor", "GB", actor=DPO)
    lethe.disclosures.record(press.id, kit + rose, reason=REASON, actor=DPO, reference="letter 77")
    lethe.disclosures.record(auditors.id, rose, reason="yearly audit of the archive", actor=DPO)

    request_id = run_request(lethe, "erasure", fixtures_dir / "identities/kit_harington/johnsnow_test1.jpg")
    view = lethe.requests.get(request_id)
    with lethe.catalog.session() as session:
        assert session.scalar(select(func.count()).select_from(FaceRow).where(FaceRow.id.in_(kit))) == 0

    notices = lethe.recipient_notices.list_notices(request_id=request_id)
    (art19,) = [n for n in notices if n.article == "19"]
    assert (art19.recipient, art19.cause, art19.state) == ("Daily Press Agency", "erasure", "pending")
    assert list(art19.face_ids) == kit  # Kit's faces only: Rose was not erased, the auditors got only Rose
    assert art19.reference == view.ref and view.ref in art19.body and "erase them" in art19.body
    assert "Lethe Test Archive" in art19.body and "letter 77" in art19.body
    for leak in (PRESS_EMAIL, "Kit", "Harington", "kit@example.org", "john1"):
        assert leak not in art19.body
    # Art. 17(2): one of the erased photos had a web address; the notice names the site, not the photo.
    (public,) = [n for n in notices if n.article == "17(2)"]
    assert public.recipient_id is None and public.face_ids == (kit[0],)
    assert "press.example.org" in public.body and PUBLISHED not in public.body
    # The ledger outlives the erased faces; the answer and the outcome name the recipient told.
    assert [d.id for d in lethe.disclosures.list_disclosures(face_id=kit[0])]
    assert [r["name"] for r in view.outcome["recipients_notified"]] == ["Daily Press Agency"]
    draft = lethe.requests.answer_draft(request_id) or ""
    assert "Daily Press Agency" in draft and "Art. 19" in draft and "Archive Auditors" not in draft
    assert actions(lethe).count("recipient_notice.generated") == 2


@pytest.mark.parametrize(
    ("kind", "asked", "told"),
    [
        ("restriction", "do not use it", "stop using it"),
        ("objection", "stop processing", "stop processing it"),
    ],
)
def test_a_restriction_or_an_objection_notifies_each_recipient(
    lethe: Lethe, fixtures_dir: Path, kind: str, asked: str, told: str
) -> None:
    kit = faces_in(lethe, *KIT)
    press = lethe.disclosures.add_recipient("Daily Press Agency", "controller", "FR", actor=DPO)
    lethe.disclosures.record(press.id, kit, reason=REASON, actor=DPO)
    request_id = run_request(lethe, kind, fixtures_dir / "identities/kit_harington/johnsnow_test1.jpg")
    (notice,) = lethe.recipient_notices.list_notices(request_id=request_id)  # no Art. 17(2): nothing erased
    assert (notice.article, notice.cause, list(notice.face_ids)) == ("19", kind, kit)
    assert asked in notice.body
    assert told in (lethe.requests.answer_draft(request_id) or "")
    with lethe.catalog.session() as session:  # restricted, not erased: the faces are still held
        assert session.scalar(select(func.count()).select_from(FaceRow).where(FaceRow.id.in_(kit))) == 2


def test_a_withdrawn_consent_notifies_the_recipients_and_the_guest_page_calls_for_art_17_2(
    lethe: Lethe, tmp_path: Path, fixtures_dir: Path
) -> None:
    lethe.add_source(consent_source("gala", mode="enrolled_only"))
    kit = fixtures_dir / "identities/kit_harington"
    consent = lethe.consents.add(
        "gala", (kit / "johnsnow_test1.jpg").read_bytes(), actor="desk", contact=None
    )
    gala = tmp_path / "gala"
    gala.mkdir()
    shutil.copy(kit / "john1.jpeg", gala / "kit-at-the-gala.jpeg")
    shutil.copy(fixtures_dir / "identities/joe_biden/biden.jpg", gala / "biden-at-the-gala.jpg")
    assert lethe.ingest("gala", gala).faces == 1  # Kit only: Biden did not consent
    lethe.guests.configure("gala", enable=True, browse=True, actor="cli:admin@host")
    (face,) = faces_in(lethe, "kit-at-the-gala.jpeg")
    press = lethe.disclosures.add_recipient("Daily Press Agency", "controller", "FR", actor=DPO)
    lethe.disclosures.record(press.id, [face], reason=REASON, actor=DPO)
    job = lethe.consents.withdraw(consent.id, actor="desk")["erasure_job_id"]
    art19, public = lethe.recipient_notices.list_notices()
    assert (art19.article, art19.recipient, list(art19.face_ids)) == ("19", "Daily Press Agency", [face])
    assert art19.reference == f"erasure job {job}" and "withdrew their consent" in art19.body
    assert (public.article, list(public.face_ids)) == ("17(2)", [face])
    assert "guest page" in public.body and "kit-at-the-gala" not in public.body


def test_a_purge_notifies_the_recipients_but_asks_no_art_17_2_steps(lethe: Lethe) -> None:
    kit = faces_in(lethe, *KIT)
    press = lethe.disclosures.add_recipient("Daily Press Agency", "controller", "FR", actor=DPO)
    lethe.disclosures.record(press.id, kit[:1], reason=REASON, actor=DPO)
    assert lethe.remove_faces(kit, actor="cli:admin@host", reason="retention") == 2
    (notice,) = lethe.recipient_notices.list_notices()
    assert notice.article == "19" and list(notice.face_ids) == kit[:1]
    assert notice.reference.startswith("erasure job ") and "retention period" in notice.body
    # Art. 17(2) is owed when the data subject asked for the erasure, not for a retention purge.
    assert not [n for n in lethe.recipient_notices.list_notices() if n.article == "17(2)"]


def test_undisclosed_faces_produce_no_notice(lethe: Lethe) -> None:
    lethe.disclosures.add_recipient("Daily Press Agency", "controller", "FR", actor=DPO)
    assert lethe.remove_faces(faces_in(lethe, "biden.jpg"), reason="retention") == 1
    assert lethe.recipient_notices.list_notices() == []
    assert "recipient_notice.generated" not in actions(lethe)


def test_marking_a_notice_is_audited_and_final(lethe: Lethe) -> None:
    kit = faces_in(lethe, *KIT)
    press = lethe.disclosures.add_recipient("Daily Press Agency", "controller", "FR", actor=DPO)
    gone = lethe.disclosures.add_recipient("Closed Gallery SARL", "third_party", "FR", actor=DPO)
    lethe.disclosures.record(press.id, kit, reason=REASON, actor=DPO)
    lethe.disclosures.record(gone.id, kit, reason="exhibition loan, contract 9", actor=DPO)
    lethe.remove_faces(kit, reason="retention")
    first, second = lethe.recipient_notices.list_notices(state="pending")
    with pytest.raises(ConflictError, match="no mail channel"):  # LETHE_MAIL_CHANNEL=none
        lethe.recipient_notices.send(first.id, actor=DPO)
    sent = lethe.recipient_notices.mark_sent(first.id, actor=DPO, note="registered letter RR123")
    assert (sent.state, sent.state_by, sent.channel, sent.note) == (
        "sent",
        DPO,
        "hand",
        "registered letter RR123",
    )
    assert sent.state_at is not None
    with pytest.raises(InputError):
        lethe.recipient_notices.not_required(second.id, actor=DPO, reason="gone")
    with pytest.raises(ConflictError, match="already sent"):
        lethe.recipient_notices.not_required(
            first.id, actor=DPO, reason="the recipient was dissolved in 2026"
        )
    skipped = lethe.recipient_notices.not_required(
        second.id, actor=DPO, reason="the gallery was dissolved in 2026"
    )
    assert skipped.state == "not_required"
    entries = [e for e in lethe_entries(lethe) if str(e["action"]).startswith("recipient_notice.")]
    assert [(e["action"], e["details"]["notice_id"]) for e in entries[-2:]] == [
        ("recipient_notice.sent", first.id),
        ("recipient_notice.not_required", second.id),
    ]
    assert entries[-2]["actor"] == DPO and entries[-2]["details"] == {
        "notice_id": first.id,
        "recipient_id": press.id,
        "article": "19",
        "channel": "hand",
        "note": "registered letter RR123",  # kept off the chain, erasable (lethe.privacy.audit)
    }
    with pytest.raises(NotFoundError):
        lethe.recipient_notices.mark_sent(999_999, actor=DPO)


def lethe_entries(lethe: Lethe) -> list[dict[str, object]]:
    from lethe.privacy import audit

    with lethe.catalog.session() as session:
        newest_first = audit.entries(session, limit=1000)
        return [{"action": e.action, "actor": e.actor, "details": e.details} for e in reversed(newest_first)]


def test_a_notice_is_sent_by_mail_to_the_sealed_address(base: Path, tmp_path: Path) -> None:
    from test_communications import free_port, smtp_server, smtp_settings

    port = free_port()
    with (
        smtp_server(port) as inbox,
        Lethe(make_settings(copy_gallery(base, tmp_path), **smtp_settings(port))) as lethe,
    ):
        kit = faces_in(lethe, *KIT)
        press = lethe.disclosures.add_recipient(
            "Daily Press Agency", "controller", "FR", actor=DPO, contact=PRESS_EMAIL
        )
        lethe.disclosures.record(press.id, kit, reason=REASON, actor=DPO)
        lethe.remove_faces(kit, reason="retention")
        (notice,) = lethe.recipient_notices.list_notices()
        sent = lethe.recipient_notices.send(notice.id, actor=DPO)
        assert (sent.state, sent.channel, sent.attempts) == ("sent", "smtp", 1)
        ((to, message),) = inbox.received
        assert to == [PRESS_EMAIL] and message["Subject"] == notice.subject
        with pytest.raises(ConflictError):
            lethe.recipient_notices.send(notice.id, actor=DPO)
        assert len(inbox.received) == 1
        assert PRESS_EMAIL not in json.dumps(lethe_entries(lethe))
        assert PRESS_EMAIL.encode() not in b"".join(
            catalog_files(lethe.settings.resolved_catalog_url).values()
        )


def test_bad_input_gives_a_clear_error_and_records_nothing(lethe: Lethe) -> None:
    kit = faces_in(lethe, *KIT)
    press = lethe.disclosures.add_recipient("Daily Press Agency", "controller", "FR", actor=DPO)
    before = (len(actions(lethe)), _count(lethe, DisclosureRow), _count(lethe, RecipientRow))
    ledger = lethe.disclosures
    with pytest.raises(NotFoundError, match="no recipient 999"):
        ledger.record(999, kit, reason=REASON, actor=DPO)
    with pytest.raises(NotFoundError, match="no face 987654"):
        ledger.record(press.id, [kit[0], 987654], reason=REASON, actor=DPO)
    with pytest.raises(InputError, match="reason"):
        ledger.record(press.id, kit, reason="because", actor=DPO)
    with pytest.raises(InputError, match="at least one face"):
        ledger.record(press.id, [], reason=REASON, actor=DPO)
    with pytest.raises(InputError, match="kind"):
        ledger.add_recipient("Someone Else", "friend", "FR", actor=DPO)
    with pytest.raises(InputError, match="country"):
        ledger.add_recipient("Someone Else", "processor", "XX", actor=DPO)
    with pytest.raises(InputError, match="e-mail"):
        ledger.add_recipient("Someone Else", "processor", "FR", actor=DPO, contact="12 rue de la Paix, Paris")
    with pytest.raises(ConflictError, match="already exists"):
        ledger.add_recipient("Daily Press Agency", "processor", "DE", actor=DPO)
    with pytest.raises(NotFoundError, match="no token"):
        ledger.bind_token(424242, press.id, reason=REASON, actor=DPO)
    with pytest.raises(NotFoundError):
        lethe.recipient_notices.get(1)
    assert (len(actions(lethe)), _count(lethe, DisclosureRow), _count(lethe, RecipientRow)) == before


def _count(lethe: Lethe, row: type) -> int:
    with lethe.catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(row)) or 0)


def test_the_access_copy_names_the_recipients_of_the_persons_faces(lethe: Lethe, fixtures_dir: Path) -> None:
    kit, rose = faces_in(lethe, *KIT), faces_in(lethe, "img1.jpg")
    press = lethe.disclosures.add_recipient("Daily Press Agency", "controller", "FR", actor=DPO)
    auditors = lethe.disclosures.add_recipient(
        "Archive Auditors Inc", "processor", "US", actor=DPO, safeguard="SCCs"
    )
    lethe.disclosures.record(press.id, kit[:1], reason=REASON, actor=DPO)
    lethe.disclosures.record(auditors.id, rose, reason="yearly audit of the archive", actor=DPO)
    request_id = run_request(lethe, "access", fixtures_dir / "identities/kit_harington/johnsnow_test1.jpg")
    folder = lethe.requests.export_path(request_id)
    document = json.loads((folder / "export.json").read_text())
    (named,) = document["recipients"]["named"]
    assert named["recipient"] == "Daily Press Agency" and named["kind"] == "controller"
    assert named["reason"] == REASON and named["country_name"] == "France" and named["your_faces"] == 1
    assert named["date"] and named["outside_eea"] is False
    page = (folder / "index.html").read_text()
    assert "Daily Press Agency" in page and "another controller" in page and "Archive Auditors" not in page


def test_a_use_exported_to_a_recipient_is_a_disclosure_of_its_faces(lethe: Lethe, fixtures_dir: Path) -> None:
    Users(lethe.catalog).create("olga-ops", ["operator"], actor="test", password="olga-password-123")
    probe = (fixtures_dir / "identities/kit_harington/johnsnow_test1.jpg").read_bytes()
    found = lethe.search(probe, purpose="find Kit at the premiere", actor="user:olga-ops")
    authority = lethe.disclosures.add_recipient("CNIL", "public_authority", "FR", actor=DPO)
    exports = actions(lethe).count("audit.export")
    with pytest.raises(InputError):
        lethe.disclosures.export_use_to(
            lethe.uses, lethe.gate, found.use or 0, recipient_id=authority.id, reason="", actor=DPO
        )
    with pytest.raises(NotFoundError):
        lethe.disclosures.export_use_to(
            lethe.uses, lethe.gate, found.use or 0, recipient_id=77, reason=REASON, actor=DPO
        )
    assert actions(lethe).count("audit.export") == exports  # refused before anything was exported
    record = lethe.disclosures.export_use_to(
        lethe.uses,
        lethe.gate,
        found.use or 0,
        recipient_id=authority.id,
        reason="inspection 2026-31",
        actor=DPO,
    )
    (disclosure,) = lethe.disclosures.list_disclosures(recipient_id=authority.id)
    assert disclosure.channel == "use_export" and disclosure.reference == f"use {found.use}"
    assert sorted(disclosure.face_ids) == sorted(m.face_id for m in found.matches) == faces_in(lethe, *KIT)
    assert record["disclosure"]["id"] == disclosure.id


def test_the_evidence_pack_files_and_the_recipient_list(lethe: Lethe) -> None:
    kit = faces_in(lethe, *KIT)
    press = lethe.disclosures.add_recipient(
        "Daily Press Agency", "controller", "FR", actor=DPO, contact=PRESS_EMAIL
    )
    lethe.disclosures.add_recipient(
        "Cloud Host Inc", "processor", "US", actor=DPO, safeguard="EU-US Data Privacy Framework"
    )
    lethe.disclosures.record(press.id, kit, reason=REASON, actor=DPO)
    lethe.remove_faces(kit, reason="retention")
    listed = {r["name"]: r for r in recipient_list(lethe.store)}
    assert (
        listed["Daily Press Agency"]["disclosures"] == 1
        and listed["Daily Press Agency"]["outside_eea"] is False
    )
    assert listed["Cloud Host Inc"]["outside_eea"] is True and listed["Cloud Host Inc"]["disclosures"] == 0
    files = pack_files(lethe.store, now=lethe.uses.clock())
    assert sorted(files) == ["disclosures.json", "recipient_notices.json", "recipients.json"]
    assert PRESS_EMAIL.encode() not in b"".join(files.values())
    notices = json.loads(files["recipient_notices.json"])
    assert notices["pending"] == 1 and notices["notices"][0]["face_ids"] == kit
    assert json.loads(files["disclosures.json"])["disclosures"][0]["face_ids"] == kit


def test_the_command_line_records_and_settles(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixtures_dir: Path
) -> None:
    data = copy_gallery(base, tmp_path)
    for key, value in {"LETHE_DATA_DIR": str(data), **backend_env(data)}.items():
        monkeypatch.setenv(key, value)
    with Lethe(make_settings(data)) as lethe:
        kit = faces_in(lethe, *KIT)
        probe = (fixtures_dir / "identities/kit_harington/johnsnow_test1.jpg").read_bytes()
        use = lethe.search(probe, purpose="find Kit at the premiere", actor="cli:olga@host").use
    cli = CliRunner()

    def call(*args: str) -> dict[str, object]:
        result = cli.invoke(cli_app, ["--actor", "dpo-kim", *args, "--json"])
        assert result.exit_code == 0, result.output
        payload: dict[str, object] = json.loads(result.stdout)
        return payload

    added = call("recipient", "add", "Daily Press Agency", "--kind", "controller", "--country", "fr")
    assert added["country"] == "FR" and added["has_contact"] is False
    recorded = call(
        "disclosure", "record", "--recipient", str(added["id"]), "--face", str(kit[0]), "--reason", REASON
    )
    assert recorded["face_ids"] == [kit[0]] and recorded["channel"] == "manual"
    bad = cli.invoke(
        cli_app,
        [
            "--actor",
            "dpo-kim",
            "disclosure",
            "record",
            "--recipient",
            "999",
            "--face",
            str(kit[0]),
            "--reason",
            REASON,
        ],
    )
    assert bad.exit_code == 3 and "no recipient 999" in bad.output
    assert [d["id"] for d in call("disclosure", "list")["disclosures"]] == [recorded["id"]]  # type: ignore[index]
    export = ["audit", "export", "--use", str(use), "--recipient", str(added["id"])]
    unexplained = cli.invoke(cli_app, ["--actor", "dpo-kim", *export])
    assert unexplained.exit_code == 2 and "reason" in unexplained.output
    handed = call(*export, "--reason", "inspection 2026-31")
    assert handed["disclosure"] == {"id": int(recorded["id"]) + 1, "recipient_id": added["id"], "faces": 2}  # type: ignore[call-overload]
    with Lethe(make_settings(data)) as lethe:
        lethe.remove_faces(kit, reason="retention")
    (notice,) = call("recipient-notice", "list", "--state", "pending")["notices"]  # type: ignore[misc]
    settled = call("recipient-notice", "sent", str(notice["id"]), "--note", "registered letter")
    assert settled["state"] == "sent" and str(settled["state_by"]).startswith("cli:dpo-kim@")
    again = cli.invoke(
        cli_app,
        [
            "--actor",
            "dpo-kim",
            "recipient-notice",
            "not-required",
            str(notice["id"]),
            "--reason",
            "dissolved in 2026",
        ],
    )
    assert again.exit_code == 1 and "already sent" in again.output
