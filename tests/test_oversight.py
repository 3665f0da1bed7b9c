"""Human oversight's global stop (issue 18, AI Act Art. 14(4)(e)): an administrator halts every
identification at once, in a running service too, while rights requests go on; audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import run

from api_support import add_user, assert_error, bearer, jpeg, serve
from conftest import copy_gallery

pytestmark = pytest.mark.usefixtures("default_models")


def test_cli_stop_blocks_lethe_search_with_one_line_and_resume_lets_it_run(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = str(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")
    stopped = run(data, "oversight", "stop", "--reason", "a verifier saw misuse", "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["stopped"] is True
    assert json.loads(run(data, "oversight", "stop", "--json").stdout)["stopped"] is True  # again: no change

    refused = run(data, "search", probe, "--purpose", "during the stop", "--json")
    assert refused.returncode == 4 and refused.stdout == ""
    assert refused.stderr.strip().count("\n") == 0 and "stopped by an administrator" in refused.stderr

    resumed = run(data, "oversight", "resume", "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["stopped"] is False
    found = run(data, "search", probe, "--purpose", "after the stop", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["no_match"] is False

    entries = json.loads(run(data, "audit", "list", "--limit", "20", "--json").stdout)["entries"]
    actions = [e["action"] for e in entries]
    assert actions.count("oversight.stop") == 1 and actions.count("oversight.resume") == 1
    assert actions.count("search") == 1  # the refused search ran nothing and recorded nothing


def test_only_an_admin_stops_identification_from_the_command_line(gallery: Path, tmp_path: Path) -> None:
    data = copy_gallery(gallery, tmp_path)
    added = run(data, "user", "add", "olga", "--role", "operator", "--json")
    assert added.returncode == 0, added.stderr
    refused = run(data, "--actor", "olga", "oversight", "stop", "--json")
    assert refused.returncode == 4 and "admin" in refused.stderr
    assert json.loads(run(data, "oversight", "status", "--json").stdout)["stopped"] is False


def test_a_stop_from_another_process_holds_at_once_in_a_running_service_and_rights_work_goes_on(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = {"probe": jpeg(fixtures_dir / "identities" / "joe_biden" / "biden.jpg")}
    with serve(data) as client:
        operator = bearer(add_user(client, "olga", "operator"))
        admin = bearer(add_user(client, "ada", "admin"))
        assert (
            client.post("/api/search", headers=operator, data={"purpose": "before"}, files=probe).status_code
            == 200
        )

        stop = run(data, "oversight", "stop", "--json")  # the host's CLI, a separate process
        assert stop.returncode == 0, stop.stderr
        refused = client.post("/api/search", headers=operator, data={"purpose": "during"}, files=probe)
        assert "stopped by an administrator" in str(assert_error(refused, 409, "refused")["message"])
        assert client.get("/api/oversight", headers=operator).json()["stopped"] is True
        # a data subject's request is still received
        portal = client.post(
            "/api/portal/requests",
            data={"kind": "erasure", "contact": "me@example.org"},
            files={"photos": jpeg(fixtures_dir / "identities" / "joe_biden" / "biden2.jpg")},
        )
        assert portal.status_code == 202, portal.text

        assert_error(client.post("/api/oversight/resume", headers=operator), 403)
        resumed = client.post("/api/oversight/resume", headers=admin, json={"reason": "misuse ruled out"})
        assert resumed.status_code == 200 and resumed.json()["stopped"] is False
        assert (
            client.post("/api/search", headers=operator, data={"purpose": "after"}, files=probe).status_code
            == 200
        )
        assert client.post("/api/oversight/stop", headers=admin).json()["stopped"] is True
