"""The data-protection officer's API on a real gallery: requests through review to erasure, access
exports, extensions and rejections, objections, orders, retention, keys, the compliance pack, and
the public portal, which never leaks whether someone is in the gallery."""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from lethe.catalog.privacy_tables import RequestRow
from lethe.catalog.repository import now_utc

from api_support import PURPOSE, add_user, assert_error, bearer, jpeg, serve
from conftest import REVIEW_FLOOR_THRESHOLD, copy_gallery

#: Faces at >= 0.999 are erased at once; 0.9 .. 0.999 wait for a reviewer (as in test_requests.py).
STRICT = {"erasure_auto_threshold": 0.999, "erasure_review_threshold": REVIEW_FLOOR_THRESHOLD}


@pytest.fixture(scope="module")
def client(gallery: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with serve(
        copy_gallery(gallery, tmp_path_factory.mktemp("dpo")), **STRICT, portal_rate_per_minute=100
    ) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def dpo(client: TestClient) -> dict[str, str]:
    return bearer(add_user(client, "dana", "dpo"))


@pytest.fixture(scope="module")
def operator(client: TestClient) -> dict[str, str]:
    return bearer(add_user(client, "otto", "operator"))


@pytest.fixture(scope="module")
def admin(client: TestClient) -> dict[str, str]:
    return bearer(add_user(client, "ada", "admin"))


def open_request(
    client: TestClient, dpo: dict[str, str], kind: str, photo: Path, contact: str
) -> dict[str, object]:
    response = client.post(
        "/api/requests", headers=dpo, data={"kind": kind, "contact": contact}, files={"photos": jpeg(photo)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def search_ids(client: TestClient, operator: dict[str, str], probe: Path) -> set[int]:
    response = client.post(
        "/api/search", headers=operator, data={"purpose": PURPOSE, "top": "50"}, files={"probe": jpeg(probe)}
    )
    assert response.status_code == 200, response.text
    return {m["face_id"] for m in response.json()["matches"]}


def test_erasure_request_through_the_review_queue(
    client: TestClient, dpo: dict[str, str], operator: dict[str, str], fixtures_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    probe = fixtures_dir / "identities" / "joe_biden" / "biden.jpg"
    before = search_ids(client, operator, probe)
    contact = "joe.requester@example.org"
    opened = open_request(client, dpo, "erasure", probe, contact)
    request_id = opened["id"]
    assert opened["state"] == "received" and opened["channel"] == "api" and opened["kind"] == "erasure"

    listed = client.get("/api/requests", headers=dpo).json()["requests"]
    assert any(r["id"] == request_id and r["overdue"] is False for r in listed)
    detail = client.get(f"/api/requests/{request_id}", headers=dpo).json()
    assert detail["contact"] == contact and detail["events"][0]["to"] == "received"
    photo = client.get(f"/api/requests/{request_id}/photos/0", headers=dpo)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content == probe.read_bytes()
    assert_error(client.get(f"/api/requests/{request_id}/photos/1", headers=dpo), 404)
    face = client.get(f"/api/requests/{request_id}/photos/0/face", headers=dpo)  # the requester's face
    assert face.status_code == 200 and face.headers["content-type"] == "image/jpeg"
    assert face.content[:2] == b"\xff\xd8" and face.headers["cache-control"] == "private, no-store"
    assert_error(client.get(f"/api/requests/{request_id}/photos/1/face", headers=dpo), 404, "not_found")
    assert_error(client.get("/api/requests/424242/photos/0/face", headers=dpo), 404, "not_found")

    # nothing runs before the identity is verified (security review, finding 1)
    assert_error(
        client.post(f"/api/requests/{request_id}/run", headers=dpo, json={"auto": True}), 409, "refused"
    )
    assert_error(client.post(f"/api/requests/{request_id}/verify", headers=dpo, json={"note": "x"}), 422)
    unattested = {"method": "id_document", "attest": False, "note": "ID card checked"}
    assert_error(client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=unattested), 422)
    verified = client.post(
        f"/api/requests/{request_id}/verify",
        headers=dpo,
        json={"method": "id_document", "attest": True, "note": "ID card checked"},
    )
    assert verified.json()["state"] == "verified"
    (check,) = client.get(f"/api/requests/{request_id}", headers=dpo).json()["verifications"]
    assert (check["method"], check["verified_by"], check["attested"]) == ("id_document", "user:dana", True)
    first = client.post(f"/api/requests/{request_id}/run", headers=dpo, json={"auto": True}).json()
    assert first["state"] == "in_review" and first["erased_faces"] >= 1 and first["review_candidates"] >= 2

    pending = client.get(
        f"/api/requests/{request_id}/candidates", headers=dpo, params={"pending": True}
    ).json()
    candidates = pending["candidates"]
    assert len(candidates) == first["review_candidates"]
    assert all(c["band"] == "review" and c["decision"] is None for c in candidates)
    crop = client.get(candidates[0]["crop_url"], headers=dpo)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert_error(client.post(f"/api/requests/{request_id}/answer", headers=dpo), 409, "refused")

    confirmed, *rejected = (c["face_id"] for c in candidates)
    decided = client.post(
        f"/api/requests/{request_id}/candidates/{confirmed}", headers=dpo, json={"confirm": True}
    )
    assert decided.json()["decision"] == "confirmed" and decided.json()["decided_by"] == "user:dana"
    for face_id in rejected:
        client.post(f"/api/requests/{request_id}/candidates/{face_id}", headers=dpo, json={"confirm": False})
    assert_error(
        client.post(f"/api/requests/{request_id}/candidates/424242", headers=dpo, json={"confirm": True}), 404
    )
    answered = client.post(f"/api/requests/{request_id}/answer", headers=dpo)
    assert answered.status_code == 200, answered.text
    assert answered.json()["state"] == "answered"
    assert answered.json()["erased_faces"] == first["erased_faces"] + 1

    after = search_ids(client, operator, probe)
    assert confirmed not in after and len(after) < len(before)
    assert set(rejected) <= after  # the reviewer said: not the person
    assert_error(client.get(f"/api/requests/{request_id}/photos/0", headers=dpo), 404)  # deleted on close
    assert_error(client.get(f"/api/requests/{request_id}/photos/0/face", headers=dpo), 404)
    assert_error(client.post(f"/api/requests/{request_id}/run", headers=dpo), 409, "refused")
    events = client.get(f"/api/requests/{request_id}", headers=dpo).json()["events"]
    assert [e["to"] for e in events][-1] == "answered" and all(
        e["actor"] in ("user:dana", "system") for e in events
    )
    assert contact not in caplog.text


def test_access_request_export_is_a_zip(client: TestClient, dpo: dict[str, str], fixtures_dir: Path) -> None:
    probe = fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"
    request_id = open_request(client, dpo, "access", probe, "kit@example.org")["id"]
    assert_error(client.get(f"/api/requests/{request_id}/export", headers=dpo), 404)
    assert_error(client.post(f"/api/requests/{request_id}/run", headers=dpo), 409, "refused")
    check = {"method": "id_document", "attest": True}
    assert client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check).status_code == 200
    result = client.post(f"/api/requests/{request_id}/run", headers=dpo).json()
    assert result["faces"] >= 1  # the automatic band (others wait for a reviewer)
    exported = client.get(f"/api/requests/{request_id}/export", headers=dpo)
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        names = archive.namelist()
        document = json.loads(archive.read(next(n for n in names if n.endswith("/export.json"))))
    assert len(document["faces"]) == result["faces"]
    assert any(n.endswith("/index.html") for n in names)
    assert sum("/crops/" in n and n.endswith(".jpg") for n in names) == result["faces"]
    assert sum("/photos/" in n for n in names) == len(document["photos"]) >= 1  # the photos, others blurred


def test_extension_and_rejection(client: TestClient, dpo: dict[str, str], fixtures_dir: Path) -> None:
    probe = fixtures_dir / "identities" / "rose_leslie" / "img1.jpg"
    opened = open_request(client, dpo, "access", probe, "rose@example.org")
    request_id = opened["id"]
    assert_error(client.post(f"/api/requests/{request_id}/extend", headers=dpo, json={"reason": "busy"}), 422)
    reason = {"reason": "the archive on tape must be searched by hand"}
    extended = client.post(f"/api/requests/{request_id}/extend", headers=dpo, json=reason).json()
    assert extended["due_at"] > str(opened["due_at"]) and extended["extension_reason"] == reason["reason"]
    # extending twice is a state conflict (ConflictError), not a privacy refusal
    assert_error(client.post(f"/api/requests/{request_id}/extend", headers=dpo, json=reason), 409, "conflict")
    rejected = client.post(
        f"/api/requests/{request_id}/reject", headers=dpo, json={"reason": "identity not shown"}
    )
    assert rejected.json()["state"] == "rejected"
    check = {"method": "id_document", "attest": True}
    assert_error(client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check), 409, "refused")
    gossip = {"kind": "gossip", "contact": "x@example.org"}
    assert_error(client.post("/api/requests", headers=dpo, data=gossip,
                             files={"photos": jpeg(probe)}), 422, "invalid_input")  # fmt: skip
    no_face = client.post("/api/requests", headers=dpo, data={"kind": "access", "contact": "x@example.org"},
                          files={"photos": jpeg(fixtures_dir / "no_face" / "dog.jpg")})  # fmt: skip
    assert "no detectable face" in str(assert_error(no_face, 422)["message"])


def test_requests_are_listed_by_due_date_with_overdue_marked(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> None:
    probe = fixtures_dir / "identities" / "alex_lacamoire" / "img1.jpg"
    late = open_request(client, dpo, "access", probe, "late@example.org")["id"]
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    with engine.catalog.session() as session, session.begin():
        session.execute(
            update(RequestRow).where(RequestRow.id == late).values(due_at=now_utc() - timedelta(days=2))
        )
    listed = client.get("/api/requests", headers=dpo, params={"open": True}).json()["requests"]
    assert listed[0]["id"] == late and listed[0]["overdue"] is True
    assert [r["due_at"] for r in listed] == sorted(r["due_at"] for r in listed)
    assert all(r["state"] in ("received", "verified", "in_review") for r in listed)


def test_objection_keeps_the_person_out_until_withdrawn(
    client: TestClient, dpo: dict[str, str], operator: dict[str, str], fixtures_dir: Path
) -> None:
    probe = fixtures_dir / "identities" / "lin_manuel_miranda" / "lin-manuel-miranda.png"
    assert search_ids(client, operator, probe)
    response = client.post(
        "/api/requests", headers=dpo, data={"kind": "objection", "contact": "lmm@example.org"},
        files={"photos": (probe.name, probe.read_bytes(), "image/png")},
    )  # fmt: skip
    request_id = response.json()["id"]
    check = {"method": "signed_letter", "attest": True}
    assert client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check).status_code == 200
    assert client.post(f"/api/requests/{request_id}/run", headers=dpo, json={"auto": True}).json()[
        "suppressed"
    ]
    assert search_ids(client, operator, probe) == set()
    objection = next(o for o in client.get("/api/objections", headers=dpo).json()["objections"]
                     if o["request_id"] == request_id)  # fmt: skip
    assert objection["withdrawn_at"] is None and "template" not in json.dumps(objection).replace(
        "templates", ""
    )
    withdrawn = client.post(f"/api/objections/{objection['id']}/withdraw", headers=dpo)
    assert withdrawn.json() == {"withdrawn": objection["id"]}
    assert_error(client.post(f"/api/objections/{objection['id']}/withdraw", headers=dpo), 409, "conflict")
    assert search_ids(client, operator, probe)


def test_orders_retention_keys_audit_and_compliance_pack(
    client: TestClient,
    admin: dict[str, str],
    dpo: dict[str, str],
    operator: dict[str, str],
    fixtures_dir: Path,
) -> None:
    spec = {"name": "press-de", "basis": "legitimate_interests", "art9": "made_public_by_subject",
            "purpose": "press archive", "jurisdiction": "DE", "retention_days": 30}  # fmt: skip
    assert client.post("/api/sources", headers=admin, json=spec).status_code == 201
    stop = client.post("/api/orders/stop", headers=admin, json={"jurisdiction": "de", "reference": "BfDI-1"})
    assert stop.status_code == 200 and stop.json()["sources_restricted"] == 1
    assert_error(
        client.post("/api/orders/stop", headers=admin, json={"jurisdiction": "XX"}), 422, "invalid_input"
    )
    orders = client.get("/api/orders", headers=admin).json()["orders"]
    assert any(o["jurisdiction"] == "DE" for o in orders)
    assert client.post("/api/orders/complete", headers=admin).json() == {"orders": []}
    restricted = next(
        s for s in client.get("/api/sources", headers=admin).json()["sources"] if s["source"] == "press-de"
    )
    assert restricted["status"] == "restricted"
    assert client.post("/api/retention/run", headers=admin).json()["erased_faces"] == 0

    rotated = client.post("/api/keys/rotate", headers=admin).json()
    assert rotated["rotated"] is True and rotated["keys"] >= 1
    probe = fixtures_dir / "identities" / "barack_obama" / "obama.jpg"
    match = client.post(
        "/api/search", headers=operator, data={"purpose": PURPOSE}, files={"probe": jpeg(probe)}
    )
    crop = client.get(match.json()["matches"][0]["crop_url"], headers=operator)
    assert crop.status_code == 200  # crops still open under the new master key

    verified = client.get("/api/audit/verify", headers=dpo).json()
    assert verified["ok"] is True and verified["entries"] > 0
    page = client.get("/api/audit", headers=dpo, params={"limit": 3}).json()["entries"]
    older = client.get("/api/audit", headers=dpo, params={"limit": 3, "before": page[-1]["seq"]}).json()[
        "entries"
    ]
    assert len(page) == 3 and all(e["seq"] < page[-1]["seq"] for e in older)
    assert {"keys.rotate", "order.stop"} <= {e["action"] for e in client.get(
        "/api/audit", headers=dpo, params={"limit": 200}).json()["entries"]}  # fmt: skip

    pack = client.get("/api/reports/compliance", headers=dpo)
    assert pack.status_code == 200 and pack.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(pack.content)) as archive:
        names = archive.namelist()
    assert "compliance-pack/manifest.json" in names and "compliance-pack/record_of_processing.json" in names
    data_dir = client.app.state.lethe.settings.data_dir  # type: ignore[attr-defined]
    assert list((data_dir / "tmp").glob("report-*")) == []


def test_the_portal_never_tells_whether_someone_is_in_the_gallery(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path, test_data: Path
) -> None:
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    searches = engine.count_audited("search", since=now_utc() - timedelta(days=1))
    in_gallery = fixtures_dir / "identities" / "barack_obama" / "obama2.jpg"
    stranger = test_data / "lfw" / "AJ_Cook" / "AJ_Cook_0001.jpg"
    answers, headers = [], []
    for photo, contact in ((in_gallery, "b.o@example.org"), (stranger, "stranger@example.org")):
        response = client.post(
            "/api/portal/requests",
            data={"kind": "erasure", "contact": contact},
            files={"photos": jpeg(photo)},
        )
        assert response.status_code == 202, response.text
        answers.append(response.json())
        headers.append(
            sorted((k, v) for k, v in response.headers.items() if k not in ("content-length", "date"))
        )
    assert headers[0] == headers[1], "the headers of both answers are the same too"
    known, unknown = answers
    assert set(known) == set(unknown) == {"reference", "due_at", "message"}
    assert known["message"] == unknown["message"] and not re.search(r"\d", known["message"])
    assert known["due_at"][:10] == unknown["due_at"][:10] and known["reference"] != unknown["reference"]
    # references are random, not a count of requests (which would tell how busy the service is)
    assert all(len(a["reference"]) == 16 and int(a["reference"], 16) >= 0 for a in answers)
    # no search ran: nothing found, nothing audited as a search, until a data-protection officer acts
    assert engine.count_audited("search", since=now_utc() - timedelta(days=1)) == searches
    # unconfirmed: not in the DPO's queue until the code sent to the address comes back
    listed = client.get("/api/requests", headers=dpo, params={"limit": 500}).json()["requests"]
    assert not {r["ref"] for r in listed} & {known["reference"], unknown["reference"]}
    portal = [
        r
        for r in client.get(
            "/api/requests", headers=dpo, params={"state": "unconfirmed", "limit": 500}
        ).json()["requests"]
        if r["channel"] == "portal"
    ]
    assert {r["ref"] for r in portal} >= {known["reference"], unknown["reference"]}
    for request in portal:
        assert request["state"] == "unconfirmed" and request["candidates"] == {}
        assert client.get(f"/api/requests/{request['id']}/candidates", headers=dpo).json() == {
            "candidates": []
        }
    refused = client.post("/api/portal/requests", data={"kind": "erasure", "contact": "x@example.org"},
                          files={"photos": ("a.jpg", b"GIF89a-not-really", "image/gif")})  # fmt: skip
    assert_error(refused, 415, "unsupported_media_type")


def test_a_portal_request_reaches_the_dpo_only_once_its_contact_address_is_confirmed(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> None:
    """Security review, finding 1 (c): the code goes to the outbox the operator's mailer sends; the
    request is in the DPO's queue only once the requester returns it."""
    probe = fixtures_dir / "identities" / "rose_leslie" / "img2.jpg"
    submitted = client.post(
        "/api/portal/requests",
        data={"kind": "erasure", "contact": "rose.person@example.org"},
        files={"photos": jpeg(probe)},
    )
    assert submitted.status_code == 202, submitted.text
    reference = submitted.json()["reference"]
    engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
    unconfirmed = client.get("/api/requests", headers=dpo, params={"state": "unconfirmed"}).json()
    (waiting,) = [r for r in unconfirmed["requests"] if r["ref"] == reference]
    request_id = waiting["id"]
    check = {"method": "id_document", "attest": True}
    assert_error(client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check), 409, "refused")
    assert_error(client.post(f"/api/requests/{request_id}/run", headers=dpo, json={"auto": True}), 409)

    message_file = engine.settings.data_dir / "outbox" / f"request-{request_id}.json"
    message = json.loads(message_file.read_text())
    assert message["to"] == "rose.person@example.org" and message["reference"] == reference
    wrong = client.post("/api/portal/confirm", json={"reference": reference, "code": "0000"})
    unknown = client.post("/api/portal/confirm", json={"reference": "f" * 16, "code": message["code"]})
    assert assert_error(wrong, 422, "invalid_input") == assert_error(unknown, 422, "invalid_input")
    # the link in the message opens the portal with the form filled in
    page = client.get(message["confirm_path"]).text
    assert f'value="{reference}"' in page and f'value="{message["code"]}"' in page
    confirmed = client.post("/api/portal/confirm", json={"reference": reference, "code": message["code"]})
    assert confirmed.status_code == 200 and confirmed.json()["confirmed"] is True
    assert set(confirmed.json()) == {"confirmed", "message"} and not message_file.exists()
    listed = client.get("/api/requests", headers=dpo, params={"open": True, "limit": 500}).json()["requests"]
    assert any(r["id"] == request_id and r["state"] == "received" for r in listed)
    assert (
        client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check).json()["state"]
        == "verified"
    )


def test_request_lists_are_paginated(client: TestClient, dpo: dict[str, str]) -> None:
    """Security review, finding 14: a bounded page by default, `limit` and `page` to move on."""
    everything = client.get("/api/requests", headers=dpo, params={"limit": 500}).json()
    total = everything["total"]
    assert total == len(everything["requests"]) >= 3 and everything["next_page"] is None
    first = client.get("/api/requests", headers=dpo, params={"limit": 2}).json()
    second = client.get("/api/requests", headers=dpo, params={"limit": 2, "page": 2}).json()
    assert (first["total"], first["page"], first["next_page"]) == (total, 1, 2)
    assert [r["id"] for r in first["requests"] + second["requests"]] == [
        r["id"] for r in everything["requests"][:4]
    ]
    assert_error(client.get("/api/requests", headers=dpo, params={"limit": 501}), 422)
    assert_error(client.get("/api/requests", headers=dpo, params={"page": 0}), 422)


def test_a_rejected_access_requests_export_is_deleted(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> None:
    """Security review, finding 5: the export of a rejected request never stays on disk."""
    probe = fixtures_dir / "identities" / "barack_obama" / "obama1.jpg"
    request_id = open_request(client, dpo, "access", probe, "bo@example.org")["id"]
    check = {"method": "id_document", "attest": True}
    assert client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check).status_code == 200
    ran = client.post(f"/api/requests/{request_id}/run", headers=dpo, json={"auto": True}).json()
    folder = client.app.state.lethe.engine.requests.export_path(request_id)  # type: ignore[attr-defined]
    assert ran["export"] == folder.name  # its name only: no path of the server
    assert client.get(f"/api/requests/{request_id}/export", headers=dpo).status_code == 200
    crops = list((folder / "crops").iterdir())
    assert crops
    assert ran["state"] == "in_review"  # (STRICT: some faces wait for a reviewer) a request still open
    reason = {"reason": "the identity document did not match"}
    assert client.post(f"/api/requests/{request_id}/reject", headers=dpo, json=reason).status_code == 200
    assert not folder.exists() and not any(c.exists() for c in crops)
    assert_error(client.get(f"/api/requests/{request_id}/export", headers=dpo), 404, "not_found")
    candidates = client.get(f"/api/requests/{request_id}/candidates", headers=dpo).json()["candidates"]
    assert all(c["crop_url"] is None for c in candidates)  # no crop link for a closed request


def test_an_answer_before_the_run_is_refused_and_changes_nothing(
    client: TestClient, dpo: dict[str, str], fixtures_dir: Path
) -> None:
    """The newcomer review's trust bug: *Answer and close* on a verified request, before *Run*, said
    "answered and closed" while the request stayed in review (and an access request had acted on the
    automatic band). Now: 409 naming the missing step, nothing changed, and the page's button is
    disabled with that reason."""
    probe = fixtures_dir / "identities" / "tom_cruise" / "Tom_Cruise_avp_2014_4.jpg"
    for kind in ("erasure", "access"):
        request_id = open_request(client, dpo, kind, probe, "tc@example.org")["id"]
        check = {"method": "id_document", "attest": True}
        assert client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check).status_code == 200
        audited = client.get("/api/audit", headers=dpo, params={"limit": 1000}).json()["entries"]
        refused = client.post(f"/api/requests/{request_id}/answer", headers=dpo)
        assert_error(refused, 409, "refused")
        assert "not run yet: run it first" in refused.json()["error"]["message"]
        detail = client.get(f"/api/requests/{request_id}", headers=dpo).json()
        assert detail["state"] == "verified" and detail["candidates"] == {} and detail["outcome"] is None
        assert detail["answer_readiness"] == {
            "ready": False, "reason": detail["answer_readiness"]["reason"], "may_arrive": False, "pending": 0
        }  # fmt: skip
        assert "run it first" in detail["answer_readiness"]["reason"]
        after = client.get("/api/audit", headers=dpo, params={"limit": 1000}).json()["entries"]
        assert len(after) == len(audited)  # not even a search was made
        still_open = client.get(f"/api/requests/{request_id}/photos/0", headers=dpo)
        assert still_open.status_code == 200


def test_run_previews_what_it_acts_on_and_the_answer_is_drafted_from_the_outcome(
    client: TestClient, dpo: dict[str, str], operator: dict[str, str], fixtures_dir: Path
) -> None:
    """Before *Run* erases, the DPO sees the automatic-band faces grouped by photo (name, source,
    scores, crops); the preview changes nothing; the run acts on exactly those faces and the request
    lists them; the closed request's answer draft tells what was done and where to complain."""
    probe = fixtures_dir / "identities" / "tom_cruise" / "Tom_Cruise_avp_2014_4.jpg"
    before = search_ids(client, operator, probe)
    request_id = open_request(client, dpo, "erasure", probe, "tc2@example.org")["id"]
    assert_error(client.get(f"/api/requests/{request_id}/preview", headers=dpo), 409, "refused")  # unverified
    check = {"method": "id_document", "attest": True}
    assert client.post(f"/api/requests/{request_id}/verify", headers=dpo, json=check).status_code == 200

    preview = client.get(f"/api/requests/{request_id}/preview", headers=dpo)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    faces = [f["face_id"] for p in shown["by_photo"] for f in p["faces"]]
    assert shown["faces"] == len(faces) >= 1 and shown["photos"] == len(shown["by_photo"])
    for photo in shown["by_photo"]:
        assert photo["photo"].endswith(".jpg") and "/" not in photo["photo"] and photo["source"]
        for face in photo["faces"]:
            assert 0.999 <= face["score"] <= 1.0001
            assert client.get(face["crop_url"], headers=dpo).headers["content-type"] == "image/jpeg"
    assert search_ids(client, operator, probe) == before  # the preview erased nothing
    detail = client.get(f"/api/requests/{request_id}", headers=dpo).json()
    assert detail["state"] == "verified" and detail["candidates"] == {}
    audited = client.get("/api/audit", headers=dpo, params={"action": "request.preview"}).json()
    (entry,) = audited["entries"][:1]
    assert entry["details"]["request_id"] == request_id and entry["details"]["faces"] == len(faces)

    run = client.post(f"/api/requests/{request_id}/run", headers=dpo, json={"auto": True}).json()
    assert run["erased_faces"] == len(faces) and run["erased_images"] == shown["photos"]
    assert set(faces).isdisjoint(search_ids(client, operator, probe))
    detail = client.get(f"/api/requests/{request_id}", headers=dpo).json()
    acted = {a["photo_id"]: (a["source"], a["faces"], a["photo"]) for a in detail["acted_on"]}
    assert acted == {p["photo_id"]: (p["source"], len(p["faces"]), None) for p in shown["by_photo"]}
    if detail["state"] == "in_review":  # what the review band holds: not the person
        pending = client.get(f"/api/requests/{request_id}/candidates", headers=dpo, params={"pending": True})
        for candidate in pending.json()["candidates"]:
            decided = f"/api/requests/{request_id}/candidates/{candidate['face_id']}"
            assert client.post(decided, headers=dpo, json={"confirm": False}).status_code == 200
        answered = client.post(f"/api/requests/{request_id}/answer", headers=dpo)
        assert answered.status_code == 200, answered.text
        assert answered.json()["state"] == "answered"
        assert answered.json()["message"].startswith("Request answered and closed.")
    detail = client.get(f"/api/requests/{request_id}", headers=dpo).json()
    assert detail["state"] == "answered"
    draft = detail["answer_draft"]
    assert detail["ref"] in draft and "Art. 77" in draft
    photos = shown["photos"]
    assert f"erased {photos} photo{'s' if photos > 1 else ''} of you" in draft
    assert "tc2@example.org" not in draft and not any(p["photo"] in draft for p in shown["by_photo"])
