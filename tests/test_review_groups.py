"""The same photo in several sources is reviewed once (security review, section 21: deduplication is
per source, so the same photo in two sources gave two candidates and doubled the review work of
every erasure). Each source keeps its own rows; the review queue lists the same face of the same
photo content once, with its members, and one decision applies to all of them; running the request
erases every copy of a confirmed face, even one ingested after the decision, and tombstones keep
them out of any later source."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from lethe.errors import PrivacyError

from api_support import add_user, bearer, serve
from conftest import REVIEW_AUTO_THRESHOLD, REVIEW_FLOOR_THRESHOLD, consent_source

pytestmark = pytest.mark.storage

#: Only copies of the requester's own photo are erased at once; her other photos wait for review.
BANDS = {"erasure_auto_threshold": REVIEW_AUTO_THRESHOLD, "erasure_review_threshold": REVIEW_FLOOR_THRESHOLD}
PURPOSE = "test: the same photo in several sources"
PHOTOS = ("identities/rose_leslie/img1.jpg", "identities/rose_leslie/img2.jpg",
          "group_labelled/kit_with_rose.jpg", "identities/joe_biden/biden.jpg")  # fmt: skip


def test_the_same_photo_in_two_sources_is_one_decision_and_is_erased_from_every_source(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    folder = tmp_path / "shared-nas"
    folder.mkdir()
    for photo in PHOTOS:
        shutil.copy(fixtures_dir / photo, folder / Path(photo).name)
    rose = (fixtures_dir / PHOTOS[0]).read_bytes()
    with serve(tmp_path / "data", **BANDS, login_rate_per_minute=100) as client:
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        for source in ("events", "press"):  # one NAS folder registered twice: an ordinary mistake
            engine.add_source(consent_source(source))
            assert engine.ingest(source, folder, actor="operator").faces == 5
        requests = engine.requests
        opened = requests.open(
            kind="erasure", photos=[(fixtures_dir / PHOTOS[1]).read_bytes()], contact="r@example.org",
            actor="desk",
        )  # fmt: skip
        requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
        first = requests.run(opened.id, actor="dpo", auto_only=True)
        assert first["erased_faces"] == 2  # the automatic band: her photo in both sources

        # Four candidate faces wait (her other photo and her face in the group photo, each in two
        # sources); the queue shows two, each listing both sources.
        assert len(requests.candidates(opened.id, pending_only=True)) == 4
        dpo = bearer(add_user(client, "dana", "dpo"))
        listed = client.get(f"/api/requests/{opened.id}/candidates", headers=dpo, params={"pending": "true"})
        assert listed.status_code == 200, listed.text
        queue = listed.json()["candidates"]
        assert len(queue) == 2
        for entry in queue:
            members = entry["members"]
            assert {m["source"] for m in members} == {"events", "press"} and len(members) == 2
            assert entry["face_id"] == members[0]["face_id"]
            assert entry["also_in"] == [m["source"] for m in members[1:]]

        # The review page shows each once, with the other source.
        client.post("/login", data={"name": "dana", "password": "dana-password-123"}).raise_for_status()
        page = client.get(f"/requests/{opened.id}/review").text
        assert page.count('class="review-item') == 2 and page.count("also in: ") == 2
        assert "2 of 2 still to decide" in page
        client.cookies.clear()

        # One decision per entry applies to both sources' faces, audited once naming both.
        for entry in queue:
            decided = client.post(
                f"/api/requests/{opened.id}/candidates/{entry['face_id']}",
                headers=dpo,
                json={"confirm": True},
            )
            assert decided.status_code == 200, decided.text
            assert decided.json()["decision"] == "confirmed"
            assert decided.json()["members"] == entry["members"]
        assert requests.candidates(opened.id, pending_only=True) == []
        audited = [e.details for e in engine.audit_entries(action="request.decide", limit=10)]
        assert sorted(sorted(d["face_ids"]) for d in audited) == sorted(
            sorted(m["face_id"] for m in e["members"]) for e in queue
        )

        # A third copy arrives before the answer (another source over the same folder): it is the
        # face the reviewer confirmed (its template a seed of the answer's search, which the copy
        # matches exactly), so the answer erases it too instead of asking again.
        engine.add_source(consent_source("late"))
        late = engine.ingest("late", folder, actor="operator")
        assert (late.skipped, late.faces) == (1, 4)  # her erased photo stays out; the rest goes in
        answer = requests.answer(opened.id, actor="dpo")
        assert answer["state"] == "answered", answer
        assert answer["erased_faces"] == 2 + 4 + 2
        assert requests.candidates(opened.id, pending_only=True) == []
        assert engine.search(rose, purpose=PURPOSE, actor="operator").no_match

        # Tombstones hold everywhere: a fourth source over the same folder brings nothing of her back.
        engine.add_source(consent_source("archive"))
        again = engine.ingest("archive", folder, actor="operator")
        assert (again.skipped, again.suppressed, again.faces) == (2, 1, 2)  # Kit and Biden only
        assert engine.search(rose, purpose=PURPOSE, actor="operator").no_match


def test_an_answer_that_finds_new_candidates_closes_nothing_and_the_queue_shows_them_in_context(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    """A photo of the requester ingested after the run is found by the answer's own search: the
    answer is refused (409, nothing erased, the request stays in review) and the new candidate waits
    in the review queue with its photo's name and source; while an ingest job may still bring
    candidates the answer is refused too, with that reason."""
    folder, late = tmp_path / "events", tmp_path / "late"
    folder.mkdir()
    late.mkdir()
    for photo in (PHOTOS[0], PHOTOS[2], PHOTOS[3]):
        shutil.copy(fixtures_dir / photo, folder / Path(photo).name)
    shutil.copy(fixtures_dir / PHOTOS[1], late / "rose_at_the_bar.jpg")
    with serve(tmp_path / "data", **BANDS, login_rate_per_minute=100) as client:
        engine = client.app.state.lethe.engine  # type: ignore[attr-defined]
        engine.add_source(consent_source("events"))
        engine.ingest("events", folder, actor="operator")
        requests = engine.requests
        opened = requests.open(
            kind="erasure", photos=[(fixtures_dir / PHOTOS[0]).read_bytes()], contact="r@example.org"
        )
        requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
        assert requests.run(opened.id, actor="dpo", auto_only=True)["state"] == "in_review"
        for candidate in requests.candidates(opened.id, pending_only=True):
            requests.decide(opened.id, candidate.face_id, confirm=True, actor="dpo")
        assert requests.readiness(opened.id)["ready"] is True
        busy = requests.readiness(opened.id, ingest_running=True)
        assert busy["ready"] is False and busy["may_arrive"] is True and "ingest job" in str(busy["reason"])
        with pytest.raises(PrivacyError, match="ingest job"):
            requests.answer(opened.id, actor="dpo", ingest_running=True)

        engine.add_source(consent_source("late"))
        engine.ingest("late", late, actor="operator")
        faces = engine.catalog.count_faces()
        dpo = bearer(add_user(client, "dana", "dpo"))
        refused = client.post(f"/api/requests/{opened.id}/answer", headers=dpo)
        assert refused.status_code == 409, refused.text
        assert "1 new candidate(s)" in refused.json()["error"]["message"]
        assert engine.catalog.count_faces() == faces  # nothing erased
        detail = client.get(f"/api/requests/{opened.id}", headers=dpo).json()
        assert detail["state"] == "in_review" and detail["answer_readiness"]["pending"] == 1

        client.post("/login", data={"name": "dana", "password": "dana-password-123"}).raise_for_status()
        page = client.get(f"/requests/{opened.id}/review").text
        assert 'data-answer-ready="false"' in page and "1 of 2 still to decide" in page
        assert '<span class="photo-name">rose_at_the_bar.jpg</span>' in page
        assert '<span class="source">late</span>' in page and "<kbd>y</kbd> same person" in page
        request_page = client.get(f"/requests/{opened.id}").text
        disabled = r'<button type="button" id="answer-open"[^>]*disabled>Answer and close'
        assert re.search(disabled, request_page)
        (new,) = requests.candidates(opened.id, pending_only=True)
        requests.decide(opened.id, new.face_id, confirm=True, actor="dpo")
        assert 'data-answer-ready="true"' in client.get(f"/requests/{opened.id}/review").text
        answered = client.post(f"/api/requests/{opened.id}/answer", headers=dpo)
        assert answered.status_code == 200 and answered.json()["state"] == "answered", answered.text
        assert engine.catalog.count_faces() < faces
