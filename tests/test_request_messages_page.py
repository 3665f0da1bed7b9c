"""The messages to a requester on the pages (issue 19; GDPR Art. 12): the DPO's request page lists
every message written (kind, language, channel, state, generated and sent in UTC, attempts) and its
form writes the next one through the messages API; the public portal lets the requester choose the
language of those messages. The real app through the ASGI client, a real SMTP server on 127.0.0.1
(aiosmtpd), never a real network."""

from __future__ import annotations

import html
import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from lethe.privacy.communication_texts import LANGUAGES
from lethe.web.common import fmt_time
from lethe.web.request_messages import LANGUAGE_NAMES, LANGUAGE_WORDS

from api_support import add_user, jpeg, login, serve

aiosmtpd = pytest.importorskip(
    "aiosmtpd.controller", reason="aiosmtpd (dev extras) runs the local SMTP server"
)

pytestmark = pytest.mark.storage

CONTACT = "requester@example.org"
PHOTO = ("identities", "joe_biden", "biden.jpg")


class Inbox:
    def __init__(self) -> None:
        self.received: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = Inbox()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _rows(page: str) -> list[dict[str, str]]:
    """The messages table's rows: id, kind, state and the cells' text."""
    rows = []
    for match in re.finditer(
        r'<tr id="message-(\d+)" data-kind="(\w+)" data-state="(\w+)">(.*?)</tr>', page, re.S
    ):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td>(.*?)</td>", match[4], re.S)
        ]
        names = ("what", "language", "channel", "state_words", "generated", "sent", "attempts")
        rows.append(
            {"id": match[1], "kind": match[2], "state": match[3], **dict(zip(names, cells, strict=True))}
        )
    return rows


def _message_form(page: str) -> tuple[str, dict[str, list[str]]]:
    """The target of the form that writes a message, and its fields with their options."""
    (form,) = re.findall(r'<form data-api="([^"]+/messages)"[^>]*>(.*?)</form>', page, re.S)
    target, body = form
    fields: dict[str, list[str]] = {}
    for name, inner in re.findall(r'<select[^>]* name="(\w+)"[^>]*>(.*?)</select>', body, re.S):
        fields[name] = re.findall(r'<option value="(\w+)"', inner)
    for name in re.findall(r'<(?:textarea|input)[^>]* name="(\w+)"', body):
        fields[name] = []
    return target, fields


def test_the_request_page_lists_the_messages_and_writes_the_next_one(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    with serve(tmp_path / "data") as client:  # LETHE_MAIL_CHANNEL=none: every message is a draft
        add_user(client, "dpo", "dpo")
        csrf = login(client, "dpo")
        opened = client.post(
            "/api/requests",
            headers={"X-CSRF-Token": csrf},
            data={"kind": "erasure", "contact": CONTACT, "language": "fr"},
            files={"photos": jpeg(fixtures_dir.joinpath(*PHOTO))},
        )
        assert opened.status_code == 201, opened.text
        number = opened.json()["id"]
        listed = client.get(f"/api/requests/{number}/messages").json()["messages"]
        page = client.get(f"/requests/{number}").text

        rows = _rows(page)
        assert [(r["id"], r["kind"], r["state"]) for r in rows] == [
            (str(m["id"]), m["kind"], "draft") for m in listed
        ] and [r["kind"] for r in rows] == ["acknowledgement", "identity_check"]
        for row, message in zip(rows, listed, strict=True):
            assert row["language"] == "French" and row["channel"] == "by hand" and row["attempts"] == "0"
            assert row["state_words"] == "draft: send it by hand" and row["sent"] == "not sent"
            assert row["generated"] == fmt_time(message["generated_at"]) and row["generated"].endswith(" UTC")
            # The draft's text, to copy and send by hand.
            body = re.search(
                rf'<textarea id="message-body-{message["id"]}"[^>]*>(.*?)</textarea>', page, re.S
            )
            assert body and html.unescape(body[1]) == message["body"]
            assert f'data-copy="message-body-{message["id"]}"' in page
        assert (
            'src="/static/request.js"' in page
            and "button[data-copy]" in client.get("/static/request.js").text
        )

        # The form writes through the messages API: its target, and the fields that API takes.
        target, fields = _message_form(page)
        assert target == f"/api/requests/{number}/messages"
        assert fields == {"kind": ["extension", "refusal"], "months": ["2", "1"], "reason": []}
        # What the form sends (a select's value is a string), to that target.
        reason = "many archives to search for your photos"
        sent = client.post(
            target,
            headers={"X-CSRF-Token": csrf},
            json={"kind": "extension", "months": "2", "reason": reason},
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["kind"] == "extension" and sent.json()["language"] == "fr"
        page = client.get(f"/requests/{number}").text
        rows = _rows(page)
        assert [r["kind"] for r in rows] == ["acknowledgement", "identity_check", "extension"]
        assert reason in html.unescape(page)  # in the extension's text, as the requester reads it
        # Extended once: only a refusal can still be written by hand.
        assert _message_form(page)[1]["kind"] == ["refusal"]
        # A kind the workflow writes itself is refused, and nothing is written.
        refused = client.post(
            target, headers={"X-CSRF-Token": csrf}, json={"kind": "answer", "reason": reason}
        )
        assert refused.status_code == 422 and len(_rows(client.get(f"/requests/{number}").text)) == 3


def test_a_closed_request_lists_its_messages_and_offers_no_form(tmp_path: Path, fixtures_dir: Path) -> None:
    with serve(tmp_path / "data") as client:
        add_user(client, "dpo", "dpo")
        csrf = login(client, "dpo")
        opened = client.post(
            "/api/requests",
            headers={"X-CSRF-Token": csrf},
            data={"kind": "erasure", "contact": CONTACT},
            files={"photos": jpeg(fixtures_dir.joinpath(*PHOTO))},
        )
        number = opened.json()["id"]
        rejected = client.post(
            f"/api/requests/{number}/reject",
            headers={"X-CSRF-Token": csrf},
            json={"reason": "not the person"},
        )
        assert rejected.status_code == 200, rejected.text
        page = client.get(f"/requests/{number}").text
        assert [r["kind"] for r in _rows(page)] == ["acknowledgement", "identity_check", "refusal"]
        assert {r["language"] for r in _rows(page)} == {"English"}
        assert f'data-api="/api/requests/{number}/messages"' not in page


def test_the_portals_language_picker_leads_to_a_french_acknowledgement(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    smtp = {
        "smtp_host": "127.0.0.1",
        "smtp_from": "dpo@lethe.test",
        "smtp_starttls": False,
        "smtp_timeout_s": 5.0,
    }
    with (
        smtp_server() as (inbox, port),
        serve(tmp_path / "data", mail_channel="smtp", smtp_port=port, **smtp) as client,
    ):
        client.cookies.clear()
        portal = client.get("/portal").text
        assert '<label for="portal-language">Language of our messages to you</label>' in portal
        picker = re.search(r'<select id="portal-language" name="language">(.*?)</select>', portal, re.S)
        assert picker is not None
        options = re.findall(r'<option value="(\w+)" lang="\w+"( selected)?>([^<]+)</option>', picker[1])
        assert [(v, html.unescape(n)) for v, _, n in options] == [("en", "English"), ("fr", "Français")]
        assert [v for v, selected, _ in options if selected] == ["en"]  # LETHE_DEFAULT_LANGUAGE
        # The picker sits in the form that posts to the portal API (multipart: every field goes).
        form = re.search(r'<form id="portal-form"[^>]*data-api="([^"]+)"[^>]*>(.*?)</form>', portal, re.S)
        assert form is not None and form[1] == "/api/portal/requests" and 'name="language"' in form[2]

        photo = fixtures_dir.joinpath(*PHOTO)
        submitted = client.post(
            form[1],
            data={"kind": "access", "contact": CONTACT, "language": "fr"},
            files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
        )
        assert submitted.status_code == 202, submitted.text
        reference = submitted.json()["reference"]
        (outbox,) = (tmp_path / "data" / "outbox").glob("request-*.json")
        code = json.loads(outbox.read_text())["code"]
        assert (
            client.post("/api/portal/confirm", json={"reference": reference, "code": code}).status_code == 200
        )

        ack, check = inbox.received
        assert ack["Subject"].startswith("Votre demande") and reference in ack["Subject"]
        assert "Nous avons reçu votre demande" in ack.get_payload(decode=True).decode()
        assert "pièce d'identité" in check.get_payload(decode=True).decode()

        # The DPO's page shows them sent, in French, by e-mail, with when.
        add_user(client, "dpo", "dpo")
        login(client, "dpo")
        queue = client.get("/requests").text
        (number,) = set(re.findall(r'href="/requests/(\d+)"', queue))
        listed = client.get(f"/api/requests/{number}/messages").json()["messages"]
        rows = _rows(client.get(f"/requests/{number}").text)
        assert [(r["kind"], r["language"], r["channel"], r["state_words"], r["attempts"]) for r in rows] == [
            ("acknowledgement", "French", "e-mail (SMTP)", "sent", "1"),
            ("identity_check", "French", "e-mail (SMTP)", "sent", "1"),
        ]
        assert [r["sent"] for r in rows] == [fmt_time(m["sent_at"]) for m in listed]


def test_a_portal_default_in_french_is_preselected(tmp_path: Path) -> None:
    with serve(tmp_path / "data", default_language="fr") as client:
        portal = client.get("/portal").text
        assert '<option value="fr" lang="fr" selected>Français</option>' in html.unescape(portal)
        assert '<option value="en" lang="en">English</option>' in portal


def test_every_language_of_the_messages_has_a_name() -> None:
    assert set(LANGUAGE_NAMES) == set(LANGUAGES) == set(LANGUAGE_WORDS)
