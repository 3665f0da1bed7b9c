"""The disclosure ledger over the service (issue 19 item 2): an API token bound to a recipient turns
every search answered to it into a recorded disclosure of the faces it returned; only a
data-protection officer or an administrator reads or writes the ledger; a bad disclosure is a clear
error that records nothing; the DPO's request page lists the recipients to notify and marks a
notice sent through the API. The real app over a real catalog, through the ASGI test client."""

from __future__ import annotations

from pathlib import Path

from test_disclosures import KIT, REASON, base, faces_in  # noqa: F401 - base is a fixture

from api_support import PURPOSE, add_user, assert_error, bearer, jpeg, login, serve
from conftest import copy_gallery

PROBE = ("identities", "kit_harington", "johnsnow_test1.jpg")
PRESS = {
    "name": "Daily Press Agency",
    "kind": "controller",
    "country": "FR",
    "contact": "desk@press.example.org",
}


def _token_id(client: object, user: str) -> int:
    users = client.app.state.lethe.users  # type: ignore[attr-defined]
    (token,) = users.tokens(user)
    return int(token.id)


def test_a_token_bound_to_a_recipient_records_what_its_searches_return(
    base: Path,  # noqa: F811
    tmp_path: Path,
    fixtures_dir: Path,
) -> None:
    probe = {"probe": jpeg(fixtures_dir.joinpath(*PROBE))}
    with serve(copy_gallery(base, tmp_path)) as client:
        integration = add_user(client, "press-bot", "operator")
        staff = add_user(client, "olga", "operator")
        dpo = add_user(client, "kim", "dpo")
        recipient = client.post("/api/recipients", headers=bearer(dpo), json=PRESS)
        assert recipient.status_code == 201, recipient.text
        assert "contact" not in recipient.json() and recipient.json()["has_contact"] is True
        rid = recipient.json()["id"]
        bound = client.post(
            f"/api/recipients/{rid}/tokens",
            headers=bearer(dpo),
            json={"token_id": _token_id(client, "press-bot"), "reason": REASON},
        )
        assert bound.status_code == 201, bound.text

        answered = client.post(
            "/api/search", headers=bearer(integration), data={"purpose": PURPOSE}, files=probe
        )
        assert answered.status_code == 200, answered.text
        returned = sorted(m["face_id"] for m in answered.json()["matches"])
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        assert returned == faces_in(engine, *KIT)
        # The same search by staff through an unbound token is no disclosure.
        assert (
            client.post(
                "/api/search", headers=bearer(staff), data={"purpose": PURPOSE}, files=probe
            ).status_code
            == 200
        )

        listed = client.get("/api/disclosures", headers=bearer(dpo))
        assert listed.status_code == 200
        (disclosure,) = listed.json()["disclosures"]
        assert disclosure["recipient"] == "Daily Press Agency" and disclosure["channel"] == "api_token"
        assert disclosure["face_ids"] == returned and disclosure["reason"] == REASON
        assert disclosure["reference"] == f"search {answered.json()['audit_seq']}"
        assert disclosure["actor"] == "user:press-bot"
        assert client.get("/api/recipients", headers=bearer(dpo)).json()["recipients"][0]["disclosures"] == 1

        # The search's use handed to an authority: a disclosure of the same faces; no reason, no export.
        use = answered.json()["use"]
        authority = client.post(
            "/api/recipients",
            headers=bearer(dpo),
            json={"name": "CNIL", "kind": "public_authority", "country": "FR"},
        ).json()["id"]
        unexplained = client.get(
            f"/api/uses/{use}/export", headers=bearer(dpo), params={"recipient": authority}
        )
        assert_error(unexplained, 422, "invalid_input")
        exported = client.get(
            f"/api/uses/{use}/export",
            headers=bearer(dpo),
            params={"recipient": authority, "reason": "inspection 2026-31"},
        )
        assert exported.status_code == 200, exported.text
        handed = client.get("/api/disclosures", headers=bearer(dpo), params={"recipient": authority}).json()
        assert [(d["channel"], d["face_ids"]) for d in handed["disclosures"]] == [("use_export", returned)]
        assert exported.json()["disclosure"]["id"] == handed["disclosures"][0]["id"]

        # Unbound, its later searches are not disclosures; the ledger keeps the earlier ones.
        token_id = _token_id(client, "press-bot")
        assert (
            client.delete(f"/api/recipients/{rid}/tokens/{token_id}", headers=bearer(dpo)).status_code == 200
        )
        client.post("/api/search", headers=bearer(integration), data={"purpose": PURPOSE}, files=probe)
        listed_after = client.get("/api/disclosures", headers=bearer(dpo), params={"recipient": rid}).json()
        assert [d["id"] for d in listed_after["disclosures"]] == [disclosure["id"]]


def test_only_a_dpo_or_an_admin_reads_the_ledger_and_bad_input_records_nothing(
    base: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    with serve(copy_gallery(base, tmp_path)) as client:
        operator = add_user(client, "olga", "operator")
        dpo = add_user(client, "kim", "dpo")
        admin = add_user(client, "ada", "admin")
        for path in ("/api/disclosures", "/api/recipients", "/api/recipient-notices"):
            assert_error(client.get(path, headers=bearer(operator)), 403, "forbidden")
            assert client.get(path, headers=bearer(admin)).status_code == 200
        assert_error(client.post("/api/recipients", headers=bearer(operator), json=PRESS), 403, "forbidden")
        rid = client.post("/api/recipients", headers=bearer(admin), json=PRESS).json()["id"]
        assert_error(client.post("/api/recipients", headers=bearer(dpo), json=PRESS), 409, "conflict")

        kit = faces_in(client.app.state.lethe.engine, *KIT)  # type: ignore[attr-defined]
        body = {"recipient": rid, "faces": [kit[0], 987654], "reason": REASON}
        unknown_face = assert_error(client.post("/api/disclosures", headers=bearer(dpo), json=body), 404)
        assert "987654" in str(unknown_face["message"])
        unknown_recipient = {"recipient": 4242, "faces": kit, "reason": REASON}
        assert_error(client.post("/api/disclosures", headers=bearer(dpo), json=unknown_recipient), 404)
        no_reason = {"recipient": rid, "faces": kit, "reason": "x"}
        assert_error(client.post("/api/disclosures", headers=bearer(dpo), json=no_reason), 422)
        assert_error(client.post("/api/disclosures", headers=bearer(operator), json=body), 403)
        assert client.get("/api/disclosures", headers=bearer(dpo)).json()["disclosures"] == []

        made = client.post(
            "/api/disclosures", headers=bearer(dpo), json={"recipient": rid, "faces": kit, "reason": REASON}
        )
        assert (
            made.status_code == 201 and made.json()["face_ids"] == kit and made.json()["actor"] == "user:kim"
        )


def test_the_request_page_lists_the_recipients_to_notify_and_marks_one_sent(
    base: Path,  # noqa: F811
    tmp_path: Path,
    fixtures_dir: Path,
) -> None:
    with serve(copy_gallery(base, tmp_path)) as client:
        dpo = add_user(client, "kim", "dpo")
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        rid = client.post("/api/recipients", headers=bearer(dpo), json=PRESS).json()["id"]
        kit = faces_in(engine, *KIT)
        client.post(
            "/api/disclosures", headers=bearer(dpo), json={"recipient": rid, "faces": kit, "reason": REASON}
        )
        requests = engine.requests
        request_id = requests.open(
            kind="erasure",
            photos=[fixtures_dir.joinpath(*PROBE).read_bytes()],
            contact="kit@example.org",
            actor="kim",
        ).id
        requests.verify(request_id, actor="kim", method="id_document", attested=True)
        assert requests.run(request_id, actor="kim", auto_only=True)["state"] == "answered"

        csrf = login(client, "kim")
        page = client.get(f"/requests/{request_id}")
        assert page.status_code == 200
        assert "Recipients to notify" in page.text and "Daily Press Agency" in page.text
        assert "desk@press.example.org" not in page.text
        notices = client.get("/api/recipient-notices", params={"request": request_id}).json()["notices"]
        art19 = next(n for n in notices if n["article"] == "19")
        assert f'data-api="/api/recipient-notices/{art19["id"]}/sent"' in page.text
        assert f'data-api="/api/recipient-notices/{art19["id"]}/send"' in page.text  # it has an address

        marked = client.post(
            f"/api/recipient-notices/{art19['id']}/sent",
            headers={"X-CSRF-Token": csrf},
            json={"note": "by post"},
        )
        assert marked.status_code == 200, marked.text
        assert (marked.json()["state"], marked.json()["state_by"]) == ("sent", "user:kim")
        again = client.get(f"/requests/{request_id}").text
        assert f'data-api="/api/recipient-notices/{art19["id"]}/sent"' not in again and "by post" in again
        refused = client.post(f"/api/recipient-notices/{art19['id']}/send", headers={"X-CSRF-Token": csrf})
        assert_error(refused, 409, "conflict")  # no mail channel in this test, and it is no longer pending
