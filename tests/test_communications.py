"""Messages to data subjects (GDPR Art. 12(3)-(4), issue 19): generated per request in its language,
sent through a real SMTP server on 127.0.0.1 (aiosmtpd, never a real network) or kept as drafts,
each recorded and audited without the contact address."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lethe.catalog.privacy_tables import RequestRow
from lethe.engine import Lethe
from lethe.errors import InputError, PrivacyError
from lethe.privacy import SourceSpec
from lethe.privacy.requests import add_months

from api_support import add_user, bearer, serve
from conftest import consent_source, make_settings

aiosmtpd = pytest.importorskip(
    "aiosmtpd.controller", reason="aiosmtpd (dev extras: pip install -e '.[dev]') runs the local SMTP server"
)

CONTACT = "requester@example.org"
PHOTO = ("identities", "joe_biden", "biden.jpg")


class Inbox:
    """What the local SMTP server received: (envelope recipients, parsed message) each."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def smtp_settings(port: int) -> dict[str, object]:
    return {
        "mail_channel": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "dpo@lethe.test",
        "smtp_starttls": False,
        "smtp_timeout_s": 5.0,
        "controller_name": "Lethe Test Controller",
    }


def source(jurisdiction: str) -> SourceSpec:
    return consent_source(f"events-{jurisdiction.lower()}", jurisdiction=jurisdiction)


def open_at_desk(lethe: Lethe, fixtures_dir: Path, **extra: Any) -> int:
    view = lethe.requests.open(
        kind="erasure", photos=[fixtures_dir.joinpath(*PHOTO).read_bytes()], contact=CONTACT,
        actor="dpo", **extra,
    )  # fmt: skip
    return view.id


def actions(lethe: Lethe) -> list[dict[str, Any]]:
    """The communication.* audit entries, oldest first."""
    entries = reversed(lethe.audit_entries(limit=500))
    return [{"action": e.action, **e.details} for e in entries if e.action.startswith("communication.")]


def test_a_portal_request_is_acknowledged_through_smtp_once_its_address_is_confirmed(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    port = free_port()
    with smtp_server(port) as inbox, serve(tmp_path / "data", **smtp_settings(port)) as client:
        photo = fixtures_dir.joinpath(*PHOTO)
        submitted = client.post(
            "/api/portal/requests",
            data={"kind": "erasure", "contact": CONTACT},
            files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
        )
        assert submitted.status_code == 202, submitted.text
        reference, due = submitted.json()["reference"], submitted.json()["due_at"][:10]
        assert inbox.received == []  # nothing to an address nobody confirmed (the code goes to the outbox)
        (outbox,) = (tmp_path / "data" / "outbox").glob("request-*.json")
        code = json.loads(outbox.read_text())["code"]
        confirmed = client.post("/api/portal/confirm", json={"reference": reference, "code": code})
        assert confirmed.status_code == 200, confirmed.text

        kinds = [m["Subject"] for _, m in inbox.received]
        assert len(kinds) == 2, kinds  # the acknowledgement, then what proof of identity is needed
        (to, ack), (_, check) = inbox.received
        assert to == [CONTACT] and ack["To"] == CONTACT and ack["From"] == "dpo@lethe.test"
        body = ack.get_payload(decode=True).decode()
        assert reference in body and due in body and reference in ack["Subject"]
        assert "identity document" in check.get_payload(decode=True).decode()
        for _, message in inbox.received:
            text = message.get_payload(decode=True).decode()
            assert photo.name not in text and "biden" not in text.lower()

        token = add_user(client, "dpo", "dpo")
        lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
        with lethe.catalog.session() as session:
            request_id = session.scalars(select(RequestRow.id).where(RequestRow.ref == reference)).one()
        listed = client.get(f"/api/requests/{request_id}/messages", headers=bearer(token)).json()["messages"]
        assert [(m["kind"], m["state"], m["channel"]) for m in listed] == [
            ("acknowledgement", "sent", "smtp"),
            ("identity_check", "sent", "smtp"),
        ]
        entries = actions(lethe)
        assert [e["action"] for e in entries] == ["communication.drafted", "communication.sent"] * 2
        assert CONTACT not in json.dumps(entries)
        # confirming again writes nothing more
        client.post("/api/portal/confirm", json={"reference": reference, "code": code})
        assert len(inbox.received) == 2


def test_an_extension_is_refused_after_the_first_month_and_accepted_within_it(
    engine: Lethe, fixtures_dir: Path
) -> None:
    request_id = open_at_desk(engine, fixtures_dir)
    received = engine.requests.get(request_id).received_at
    reason = "many archives must be searched by hand"
    with pytest.raises(PrivacyError, match="first month"):
        engine.requests.message(
            request_id,
            kind="extension",
            reason=reason,
            actor="dpo",
            now=add_months(received, 1) + timedelta(minutes=1),
        )
    with pytest.raises(InputError, match="one or two more months"):
        engine.requests.message(
            request_id,
            kind="extension",
            reason=reason,
            actor="dpo",
            months=3,
            now=received + timedelta(days=3),
        )
    with pytest.raises(InputError, match="reason"):
        engine.requests.message(request_id, kind="extension", reason=" ", actor="dpo")
    view = engine.requests.get(request_id)
    assert view.due_at == add_months(received, 1) and view.extension_reason is None  # nothing changed
    assert [m.kind for m in engine.requests.messages(request_id)] == ["acknowledgement", "identity_check"]

    message = engine.requests.message(
        request_id, kind="extension", reason=reason, actor="dpo", now=received + timedelta(days=29)
    )
    new_due = add_months(received, 3)
    assert engine.requests.get(request_id).due_at == new_due
    assert (message.kind, message.state, message.channel) == ("extension", "draft", "none")
    assert reason in message.body and new_due.date().isoformat() in message.body
    assert add_months(received, 1).date().isoformat() in message.body  # what it was due by before


def test_a_refusal_carries_the_complaint_route_of_the_sources_country(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    with Lethe(make_settings(tmp_path / "data", dpo_contact="dpo@controller.test")) as lethe:
        lethe.add_source(source("IE"))
        request_id = open_at_desk(lethe, fixtures_dir)
        message = lethe.requests.message(
            request_id, kind="refusal", reason="the photos show someone else", actor="dpo"
        )
        assert lethe.requests.get(request_id).state == "rejected"
        assert message.kind == "refusal" and "the photos show someone else" in message.body
        assert (
            "Data Protection Commission" in message.body and "https://www.dataprotection.ie" in message.body
        )
        assert "Art. 77" in message.body and "judicial remedy" in message.body and "Art. 79" in message.body
        assert "dpo@controller.test" in message.body
        assert CONTACT not in message.body
        with pytest.raises(InputError, match="only an extension or a refusal"):
            lethe.requests.message(request_id, kind="answer", reason="x", actor="dpo")


def test_a_request_in_french_is_written_to_in_french(tmp_path: Path, fixtures_dir: Path) -> None:
    with Lethe(make_settings(tmp_path / "data")) as lethe:
        lethe.add_source(source("FR"))
        request_id = open_at_desk(lethe, fixtures_dir, language="FR")
        lethe.requests.reject(request_id, reason="la personne n'a pas pu être identifiée", actor="dpo")
        ack, check, refusal = lethe.requests.messages(request_id)
        assert {m.language for m in (ack, check, refusal)} == {"fr"}
        assert (
            ack.subject.startswith("Votre demande")
            and "Nous avons reçu votre demande d'effacement" in ack.body
        )
        assert "pièce d'identité" in check.body
        assert "Commission nationale de l'informatique et des libertés" in refusal.body
        assert "https://www.cnil.fr" in refusal.body and "recours juridictionnel" in refusal.body
        with pytest.raises(InputError, match="language must be one of en, fr"):
            open_at_desk(lethe, fixtures_dir, language="de")


def test_a_send_that_fails_is_recorded_and_delivered_on_the_next_call(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    port = free_port()  # nothing listens there yet: the server is down
    with Lethe(make_settings(tmp_path / "data", **smtp_settings(port))) as lethe:
        request_id = open_at_desk(lethe, fixtures_dir)
        ack, check = lethe.requests.messages(request_id)
        # the acknowledgement was tried again when the next message was written
        assert (ack.state, ack.attempts, check.state, check.attempts) == ("failed", 2, "failed", 1)
        assert ack.error and CONTACT not in ack.error
        assert [e["action"] for e in actions(lethe)].count("communication.failed") == 3
        with smtp_server(port) as inbox:
            assert lethe.requests.communications.deliver_pending() == {"sent": 2, "failed": 0}
            assert lethe.requests.communications.deliver_pending() == {"sent": 0, "failed": 0}
        assert [m["Subject"] for _, m in inbox.received] == [ack.subject, check.subject]
        ack, check = lethe.requests.messages(request_id)
        assert (ack.state, ack.attempts, ack.error) == ("sent", 3, None) and ack.sent_at is not None
        assert inbox.received[0][1].get_payload(decode=True).decode().replace("\r\n", "\n") == ack.body


def test_with_no_channel_messages_are_drafts_and_nothing_is_sent(tmp_path: Path, fixtures_dir: Path) -> None:
    port = free_port()
    settings = {k: v for k, v in smtp_settings(port).items() if k != "mail_channel"}  # channel: none
    with smtp_server(port) as inbox, Lethe(make_settings(tmp_path / "data", **settings)) as lethe:
        request_id = open_at_desk(lethe, fixtures_dir)
        messages = lethe.requests.messages(request_id)
        assert [(m.kind, m.state, m.channel) for m in messages] == [
            ("acknowledgement", "draft", "none"),
            ("identity_check", "draft", "none"),
        ]
        assert lethe.requests.communications.deliver_pending() == {"sent": 0, "failed": 0}
        assert inbox.received == []
        assert [e["action"] for e in actions(lethe)] == ["communication.drafted"] * 2
        assert all(m.sha256 == hashlib.sha256(m.body.encode()).hexdigest() for m in messages)
