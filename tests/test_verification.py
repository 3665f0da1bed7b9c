"""Two-person verification of identifications (issue 18, EU AI Act Art. 14(5), Arts. 4 and 26(2)):
no action on a candidate until two distinct trained verifiers confirmed it, each deciding blind;
a reject wins; a lapsed training removes the competence; an audited exemption lowers it to one; the
contract's commands keep working."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_cli import run

from lethe.engine import Lethe
from lethe.errors import ConflictError, InputError, PrivacyError
from lethe.users import Users

from api_support import add_user, assert_error, bearer, jpeg, serve
from conftest import copy_gallery, make_settings

pytestmark = pytest.mark.usefixtures("default_models")

BIDEN = Path("identities") / "joe_biden" / "biden.jpg"


def _trained(client, admin: dict[str, str], name: str, on: date | None = None) -> None:  # type: ignore[no-untyped-def]
    body = {"trained_on": (on or date.today()).isoformat()}
    answer = client.put(f"/api/users/{name}/competences/verifier", headers=admin, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["held"] is True


def _search(client, operator: dict[str, str], fixtures_dir: Path) -> tuple[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Search Biden's photo over the API; the search's seq and its best match."""
    probe = {"probe": jpeg(fixtures_dir / BIDEN)}
    found = client.post("/api/search", headers=operator, data={"purpose": "who is this"}, files=probe)
    assert found.status_code == 200, found.text
    return int(found.json()["audit_seq"]), found.json()["matches"][0]


def test_an_unverified_candidate_cannot_be_acted_on_and_two_blind_verifiers_unlock_it(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with serve(data) as client:
        otto = bearer(add_user(client, "otto", "operator"))
        vera = bearer(add_user(client, "vera", "operator"))
        viktor = bearer(add_user(client, "viktor", "dpo"))
        wanda = bearer(add_user(client, "wanda", "operator"))
        admin = bearer(add_user(client, "ada", "admin"))
        assert_error(
            client.put(
                "/api/users/vera/competences/verifier", headers=otto, json={"trained_on": "2026-01-01"}
            ),
            403,
        )
        for name in ("vera", "viktor", "wanda"):
            _trained(client, admin, name)

        seq, match = _search(client, otto, fixtures_dir)
        face = match["face_id"]
        assert match["candidate_url"] == f"/api/searches/{seq}/candidates/{face}"
        base = match["candidate_url"]

        # Nothing can be done with it yet: the photo, marking identified.
        assert "not verified (0 of 2" in str(
            assert_error(client.get(match["photo_url"], headers=otto), 409, "refused")["message"]
        )
        assert_error(client.post(f"{base}/identified", headers=otto), 409, "refused")
        # The searcher holds no verifier competence: their verdict is refused.
        assert "competence" in str(
            assert_error(
                client.post(f"{base}/verdict", headers=otto, json={"verdict": "confirm"}), 409, "refused"
            )["message"]
        )

        # Vera, before deciding: the count only, no score (automation bias).
        before = client.get(base, headers=vera).json()
        assert (before["progress"], before["verdicts"], before["score"], before["score_hidden"]) == (
            "0 of 2 verdicts given", None, None, True
        )  # fmt: skip
        mine = client.post(f"{base}/verdict", headers=vera, json={"verdict": "confirm", "note": "same ear"})
        assert mine.status_code == 200, mine.text
        assert mine.json()["your_verdict"] == "confirm" and mine.json()["score"] == pytest.approx(
            match["score"], abs=1e-3
        )
        # The same user cannot confirm twice, nor change her mind into a second verdict.
        for again in ("confirm", "reject"):
            assert_error(
                client.post(f"{base}/verdict", headers=vera, json={"verdict": again}), 409, "conflict"
            )
        assert_error(
            client.get(match["photo_url"], headers=otto), 409, "refused"
        )  # one confirm is not enough

        # Viktor cannot read Vera's verdict before giving his own.
        blind = client.get(base, headers=viktor)
        assert blind.json()["progress"] == "1 of 2 verdicts given"
        assert (blind.json()["state"], blind.json()["verdicts"], blind.json()["your_verdict"]) == (
            "pending",
            None,
            None,
        )
        assert "confirm" not in blind.text and "vera" not in blind.text
        done = client.post(f"{base}/verdict", headers=viktor, json={"verdict": "confirm"}).json()
        assert done["state"] == "verified" and [v["verifier"] for v in done["verdicts"]] == [
            "user:vera",
            "user:viktor",
        ]

        # Verified: the photo opens, the person is marked identified; the candidate takes no more.
        photo = client.get(match["photo_url"], headers=otto)
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
        marked = client.post(f"{base}/identified", headers=otto, json={"note": "case 12"})
        assert marked.status_code == 200 and marked.json()["identified"] is True
        assert_error(
            client.post(f"{base}/verdict", headers=wanda, json={"verdict": "reject"}), 409, "conflict"
        )

        engine: Lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
        verdicts = engine.audit_entries(action="verification.verdict", limit=10)
        assert sorted(e.actor for e in verdicts) == ["user:vera", "user:viktor"]
        assert all(e.details["search_seq"] == seq and e.details["face_id"] == face for e in verdicts)
        noted = verdicts[-1]  # the note is erasable text, off the chain
        assert noted.details["note"] == "same ear"
        assert engine.redact_audit_text(noted.seq, actor="test", reason="names a person") == ["note"]
        assert engine.verify_audit().ok
        identified = engine.audit_entries(action="verification.identified", limit=1)[0]
        assert (identified.actor, identified.details["search_seq"]) == ("user:otto", seq)
        # A face the search did not return is no candidate of it.
        assert_error(client.get(f"/api/searches/{seq}/candidates/{face + 999}", headers=vera), 404)


def test_a_reject_wins_and_stays_hidden_from_the_next_verifier_until_they_decide(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as engine:
        grant = engine.verification.competences.grant
        for name in ("vera", "viktor"):
            Users(engine.catalog).create(name, ["operator"], actor="test")
            grant(name, "verifier", trained_on=date.today(), actor="test")
        result = engine.search((fixtures_dir / BIDEN).read_bytes(), purpose="who is this", actor="user:otto")
        seq, face = int(result.audit_seq or 0), result.matches[0].face_id

        vera = engine.verification.verdict(
            seq, face, verdict="reject", actor="user:vera", note="different nose"
        )
        assert vera["state"] == "rejected"
        blind = engine.verification.candidate(seq, face, actor="user:viktor")
        assert (blind["state"], blind["verdicts"]) == ("pending", None)  # the reject does not show through
        after = engine.verification.verdict(seq, face, verdict="confirm", actor="user:viktor")
        assert after["state"] == "rejected" and after["actionable"] is False
        with pytest.raises(PrivacyError, match="rejected"):
            engine.verification.require_verified(seq, face, "user:otto")
        with pytest.raises(PrivacyError, match="rejected"):
            engine.matched_photo(face, actor="user:otto", search=seq)
        with pytest.raises(InputError):
            engine.verification.verdict(seq, face, verdict="maybe", actor="user:viktor")


def test_a_lapsed_training_date_removes_the_competence(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data, verifier_training_days=365)) as engine:
        verification = engine.verification
        Users(engine.catalog).create("vera", ["operator"], actor="test")
        today = verification.clock().date()
        with pytest.raises(InputError, match="future"):
            verification.competences.grant(
                "vera", "verifier", trained_on=today + timedelta(days=1), actor="test"
            )
        with pytest.raises(InputError, match="lapsed"):
            verification.competences.grant(
                "vera", "verifier", trained_on=today - timedelta(days=400), actor="test"
            )
        held = verification.competences.grant(
            "vera", "verifier", trained_on=today - timedelta(days=300), actor="test"
        )
        assert held.lapses_on == today + timedelta(days=65)
        result = engine.search((fixtures_dir / BIDEN).read_bytes(), purpose="who is this", actor="user:otto")
        seq = int(result.audit_seq or 0)
        first, second = (
            (m.face_id for m in result.matches[:2])
            if len(result.matches) > 1
            else (result.matches[0].face_id,) * 2
        )

        now = verification.clock()
        verification.clock = lambda: now + timedelta(days=66)  # the training lapsed meanwhile
        with pytest.raises(PrivacyError, match="lapsed"):
            verification.verdict(seq, first, verdict="confirm", actor="user:vera")
        assert verification.competences.of("vera")[0].as_dict(verification.clock().date())["held"] is False
        verification.competences.grant(
            "vera", "verifier", trained_on=verification.clock().date(), actor="test"
        )
        assert (
            verification.verdict(seq, second, verdict="confirm", actor="user:vera")["your_verdict"]
            == "confirm"
        )
        entries = engine.audit_entries(action="user.competence", limit=5)
        assert [e.details["change"] for e in entries] == ["grant", "grant"]  # refused dates recorded nothing


def test_an_exemption_to_one_verifier_needs_a_legal_reference_and_is_audited(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with serve(data) as client:
        otto = bearer(add_user(client, "otto", "operator"))
        admin = bearer(add_user(client, "ada", "admin"))
        _trained(client, admin, "otto")
        assert client.get("/api/verification/policy", headers=otto).json()["required"] == 2
        assert_error(client.put("/api/verification/policy", headers=otto, json={"required": 1}), 403)
        assert_error(client.put("/api/verification/policy", headers=admin, json={"required": 1}), 422)
        reference = "Art. 14(5) second subparagraph: law enforcement exemption, Decree 2026-77"
        lowered = client.put(
            "/api/verification/policy", headers=admin, json={"required": 1, "legal_reference": reference}
        )
        assert lowered.status_code == 200 and lowered.json()["legal_reference"] == reference

        _, match = _search(client, otto, fixtures_dir)
        base = match["candidate_url"]
        # One verifier, who may be the searcher, is enough now.
        assert (
            client.post(f"{base}/verdict", headers=otto, json={"verdict": "confirm"}).json()["state"]
            == "verified"
        )
        assert client.get(match["photo_url"], headers=otto).status_code == 200

        back = client.put("/api/verification/policy", headers=admin, json={"required": 2})
        assert back.json()["required"] == 2
        assert client.get(base, headers=otto).json()["state"] == "pending"  # needs a second verifier again
        assert_error(client.get(match["photo_url"], headers=otto), 409, "refused")

        engine: Lethe = client.app.state.lethe.engine  # type: ignore[attr-defined]
        changes = engine.audit_entries(action="verification.policy", limit=5)
        assert [(e.details["required"], e.details["previous"]) for e in changes] == [(2, 1), (1, 2)]
        assert changes[1].details["reference"] == reference  # read back from its erasable text
        assert [p["required"] for p in engine.verification.policy_history()] == [1, 2]
        engine.compliance_pack(tmp_path / "pack", actor="test")  # the regulator sees the exemption
        pack = json.loads((tmp_path / "pack" / "verification.json").read_text())
        assert [(h["required"], h["legal_reference"]) for h in pack["history"]] == [(1, reference), (2, None)]
        assert [(c["user"], c["held"]) for c in pack["competences"]] == [("otto", True)]


def test_the_command_line_verifies_and_the_contract_commands_still_work(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = str(fixtures_dir / BIDEN)
    assert run(data, "user", "add", "vera", "--role", "operator", "--json").returncode == 0
    granted = run(
        data, "user", "competence", "vera", "--verifier", "--trained", date.today().isoformat(), "--json"
    )
    assert granted.returncode == 0 and json.loads(granted.stdout)["held"] is True, granted.stderr

    # `lethe search` lists its matches unverified, with the contract's keys.
    found = run(data, "search", probe, "--purpose", "cli verification", "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    match = result["matches"][0]
    assert {"face_id", "image", "score", "source", "source_url"} <= set(match) and result["no_match"] is False
    seq, face = str(result["audit_seq"]), str(match["face_id"])

    refused = run(data, "verify", "identified", seq, face, "--json")
    assert refused.returncode == 4 and "not verified" in refused.stderr and refused.stdout == ""
    assert run(data, "--actor", "vera", "verify", seq, face, "--confirm", "--json").returncode == 0
    twice = run(data, "--actor", "vera", "verify", seq, face, "--reject", "--json")
    assert twice.returncode == 1 and "already gave your verdict" in twice.stderr
    blind = json.loads(
        run(data, "verify", "show", seq, face, "--json").stdout
    )  # the acceptance-like local admin
    assert (blind["progress"], blind["verdicts"], blind["score"]) == ("1 of 2 verdicts given", None, None)
    # The local administrator identity holds every competence (../shared/CONTRACT.md).
    second = run(data, "verify", seq, face, "--confirm", "--note", "checked the ears", "--json")
    assert second.returncode == 0 and json.loads(second.stdout)["state"] == "verified", second.stderr
    marked = run(data, "verify", "identified", seq, face, "--json")
    assert marked.returncode == 0 and json.loads(marked.stdout)["identified"] is True
    assert run(data, "verify", seq, face, "--json").returncode == 2  # no verdict given

    # An erasure request is run by one data-protection officer, as before.
    opened = run(
        data,
        "request",
        "open",
        "--kind",
        "erasure",
        "--photo",
        probe,
        "--contact",
        "me@example.org",
        "--json",
    )
    request_id = str(json.loads(opened.stdout)["id"])
    assert run(data, "request", "verify", request_id, "--method", "id_document", "--json").returncode == 0
    erased = run(data, "request", "run", request_id, "--auto", "--json")
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["erased_faces"] >= 1


def test_only_verifiers_give_verdicts_and_the_same_person_counts_once_across_front_ends(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as engine:
        Users(engine.catalog).create("vera", ["operator"], actor="test")
        engine.verification.competences.grant("vera", "verifier", trained_on=date.today(), actor="test")
        result = engine.search((fixtures_dir / BIDEN).read_bytes(), purpose="who is this", actor="user:vera")
        seq, face = int(result.audit_seq or 0), result.matches[0].face_id
        engine.verification.verdict(seq, face, verdict="confirm", actor="user:vera")
        with pytest.raises(ConflictError):  # vera on the command line is vera
            engine.verification.verdict(seq, face, verdict="confirm", actor="cli:vera@root")
        for nobody in ("system", "anonymous", "user:ghost"):
            with pytest.raises(PrivacyError):
                engine.verification.verdict(seq, face, verdict="confirm", actor=nobody)
        assert engine.verification.state(seq, face) == "pending"
        assert engine.verification.competences.revoke("vera", "verifier", actor="test") is True
        assert engine.verification.competences.revoke("vera", "verifier", actor="test") is False


def test_with_the_second_signoff_setting_an_erasure_runs_only_after_another_dpo_signed_it_off(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    photo = (fixtures_dir / BIDEN).read_bytes()
    with Lethe(make_settings(data, erasure_second_signoff=True)) as engine:
        requests = engine.requests
        for name in ("dora", "dmitri"):
            Users(engine.catalog).create(name, ["dpo"], actor="test")
        request_id = requests.open(
            kind="erasure", photos=[photo], contact="me@example.org", actor="user:dora"
        ).id
        requests.verify(request_id, actor="user:dora", method="id_document", attested=True)
        with pytest.raises(PrivacyError, match="second data-protection officer"):
            requests.run(request_id, actor="user:dora", auto_only=True)
        requests.signoffs.sign(request_id, actor="cli:dora@root")  # her own sign-off does not count
        with pytest.raises(PrivacyError, match="sign-off"):
            requests.run(request_id, actor="user:dora", auto_only=True)
        with pytest.raises(ConflictError):
            requests.signoffs.sign(request_id, actor="user:dora")
        requests.signoffs.sign(request_id, actor="user:dmitri")
        assert requests.run(request_id, actor="user:dora", auto_only=True)["erased_faces"] >= 1
        assert [e.actor for e in engine.audit_entries(action="request.signoff", limit=5)] == [
            "user:dmitri",
            "cli:dora@root",
        ]
