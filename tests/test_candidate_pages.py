"""The candidate of a search for its verifiers (issue 18 part 4): the probe's face served only to a
holder of the verifier competence and audited; the candidate page only for verifiers, showing the
two faces side by side and nobody's verdict; the score's plain-language band in the candidate's
view once the viewer may see the score."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from api_support import add_user, assert_error, bearer, jpeg, login, serve
from conftest import copy_gallery

pytestmark = pytest.mark.usefixtures("default_models")

OBAMA = Path("identities") / "barack_obama" / "obama.jpg"


def test_the_probe_face_and_the_candidate_page_are_for_verifiers_only(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with serve(data) as client:
        otto = bearer(add_user(client, "otto", "operator"))
        vera = bearer(add_user(client, "vera", "operator"))
        admin = bearer(add_user(client, "ada", "admin"))
        dpo = bearer(add_user(client, "dora", "dpo"))
        trained = {"trained_on": date.today().isoformat()}
        assert (
            client.put("/api/users/vera/competences/verifier", headers=admin, json=trained).status_code == 200
        )

        found = client.post(
            "/api/search",
            headers=otto,
            data={"purpose": "who is this"},
            files={"probe": jpeg(fixtures_dir / OBAMA)},
        )
        assert found.status_code == 200, found.text
        seq, match = found.json()["audit_seq"], found.json()["matches"][0]
        base, page = match["candidate_url"], match["candidate_page"]

        # The probe's face: refused to the searcher, who holds no verifier competence.
        assert "competence" in str(assert_error(client.get(f"{base}/probe", headers=otto), 409)["message"])
        probe = client.get(f"{base}/probe", headers=vera)
        assert probe.status_code == 200 and probe.headers["content-type"] == "image/jpeg"
        assert probe.content[:2] == b"\xff\xd8" and probe.headers["cache-control"] == "private, no-store"
        views = client.get("/api/audit", headers=dpo, params={"action": "probe.view"}).json()["entries"]
        assert [(e["actor"], e["details"]["search_seq"], e["details"]["face_id"]) for e in views] == [
            ("user:vera", seq, match["face_id"])
        ]
        assert_error(client.get(f"/api/searches/{seq}/candidates/999999/probe", headers=vera), 404)

        # The candidate's view: no score nor band before vera's verdict, both after it.
        before = client.get(base, headers=vera).json()
        assert before["score"] is None and before["likelihood"] is None
        after = client.post(f"{base}/verdict", headers=vera, json={"verdict": "confirm"}).json()
        assert after["score"] == pytest.approx(match["score"], abs=1e-4)
        assert after["likelihood"]["words"] in {
            "very likely the same person",
            "likely the same person",
            "possible — check carefully",
        }

        # The page: a non-verifier is told why; a verifier sees both faces and no one's verdict.
        login(client, "otto")
        refused = client.get(page)
        assert refused.status_code == 403 and "Not a verifier" in refused.text
        login(client, "vera")
        shown = client.get(page)
        assert shown.status_code == 200, shown.text
        assert f'src="{base}/probe"' in shown.text and 'id="candidate-face"' in shown.text
        assert "style=" not in shown.text and "<script>" not in shown.text  # the strict CSP
        assert "user:" not in shown.text and "otto" not in shown.text
        assert client.get(f"/searches/{seq}/candidates/999999").status_code == 404
