"""Erasure (GDPR Art. 17) end to end on real photos: one photo of a person erases every face of
theirs and nobody else's; no byte of what was erased survives anywhere in the data folder; a
process killed in the middle of an erasure has it finished on the next start."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from lethe.catalog.privacy_tables import (
    ErasedImageRow,
    ErasureJobRow,
    RequestProbeBlobRow,
    RequestProbeRow,
)
from lethe.catalog.tables import FaceRow, ImageRow
from lethe.config import Settings
from lethe.engine import Lethe

from conftest import (
    FIXTURE_AUTO_THRESHOLD,
    backend_env,
    child_env,
    copy_gallery,
    erased_bytes,
    index_holds_plaintext,
    make_settings,
    occurrences,
)

pytestmark = pytest.mark.storage

PURPOSE = "test: erasure"
BIDEN = "joe_biden"
REPO = Path(__file__).resolve().parents[1]


def face_labels(lethe: Lethe, fixtures_dir: Path, expected_faces: list[dict[str, str]]) -> dict[int, str]:
    """face id -> identity ("" for a face of nobody labelled, e.g. the child in a group photo).

    A face in ``identities/<person>/`` is that person's (each such photo holds one face); a face in
    a group photo is the identity of its most similar single-person face when that similarity
    reaches the match threshold. Checked against the labels of ``expected_faces.csv``."""
    root = fixtures_dir.resolve()
    with lethe.catalog.session() as session:
        rows = session.execute(select(FaceRow.id, ImageRow.uri).join(ImageRow)).all()
    uri = {int(fid): str(Path(u).relative_to(root)) for fid, u in rows}
    templates = lethe.catalog.face_templates(uri)
    labels = {fid: Path(path).parent.name for fid, path in uri.items() if path.startswith("identities/")}
    known = sorted(labels)
    matrix = np.vstack([templates[f] for f in known])
    for fid in uri:
        if fid in labels:
            continue
        scores = matrix @ templates[fid]
        best = int(np.argmax(scores))
        labels[fid] = labels[known[best]] if scores[best] >= lethe.settings.match_threshold else ""
    expected = {r["path"]: set(filter(None, r["identities"].split(";"))) for r in expected_faces}
    for path in set(uri.values()):
        assert {labels[f] for f, p in uri.items() if p == path} - {""} == expected[path], path
    return labels


def photos_of(fixtures_dir: Path, person: str) -> list[Path]:
    return sorted((fixtures_dir / "identities" / person).iterdir())


# -- erasure by one photo --------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["joe_biden", "barack_obama", "kit_harington", "rose_leslie"])
def test_erasure_by_one_photo_removes_that_person_and_nobody_else(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]], person: str
) -> None:
    data = copy_gallery(gallery, tmp_path)
    photos = photos_of(fixtures_dir, person)
    with Lethe(make_settings(data, erasure_auto_threshold=Settings().erasure_auto_threshold)) as lethe:
        labels = face_labels(lethe, fixtures_dir, expected_faces)
        theirs = sorted(f for f, who in labels.items() if who == person)
        counts_before = Counter(labels.values())
        image_of = face_images(lethe)
        images_before = Counter(image_of.values())
        solo = {i for i, n in images_before.items() if n == sum(image_of[f] == i for f in theirs)}
        assert len(theirs) == counts_before[person] >= 2 and solo
        before = lethe.search(photos[-1].read_bytes(), top_k=50, purpose=PURPOSE)
        assert set(theirs) <= {m.face_id for m in before.matches}, "the person is findable before"

        requests = lethe.requests
        opened = requests.open(
            kind="erasure", photos=[photos[0].read_bytes()], contact="person@example.org", actor="op"
        )
        requests.verify(opened.id, actor="op", method="id_document", attested=True)
        first = requests.run(opened.id, actor="op", auto_only=True)
        keys = {"erased_faces", "erased_images", "review_candidates", "remaining_after_verify"}
        assert keys <= set(first)
        assert first["remaining_after_verify"] == 0
        # The automatic band never takes anybody else; what it could not be sure of waits for review.
        pending = requests.candidates(opened.id, pending_only=True)
        assert first["review_candidates"] == len(pending)
        assert set(theirs) - set(lethe.catalog.face_ids().tolist()) | {c.face_id for c in pending} >= set(
            theirs
        )
        # A reviewer confirms the person's faces and rejects everyone else's (the labels are the truth).
        result = first
        for candidate in pending:
            requests.decide(
                opened.id, candidate.face_id, confirm=labels[candidate.face_id] == person, actor="dpo"
            )
        if pending:
            result = requests.run(opened.id, actor="dpo")
        assert result["erased_faces"] == len(theirs)
        assert result["erased_images"] == len(solo)
        assert result["review_candidates"] == 0
        assert result["remaining_after_verify"] == 0
        assert result["state"] == "answered"

        # Every face of the person is gone: none of their photos finds anything any more.
        for photo in photos:
            found = lethe.search(photo.read_bytes(), purpose=PURPOSE)
            assert len(found.probe_faces) == 1
            assert found.no_match, f"{photo.name} still finds {[m.image for m in found.matches]}"
        # Everyone else's faces are all still there, in group photos too.
        remaining = set(lethe.catalog.face_ids().tolist())
        assert remaining == {f for f, who in labels.items() if who != person}
        assert set(lethe.index.ids().tolist()) == remaining
        assert Counter(labels[f] for f in remaining) == counts_before - Counter({person: len(theirs)})
        images_after = Counter(face_images(lethe).values())
        for image, n in images_before.items():
            mine = sum(image_of[f] == image for f in theirs)
            assert images_after.get(image, 0) == n - mine
        with_faces = [r for r in expected_faces if r["faces_expected"] not in ("0", "0?")]  # others: no row
        assert lethe.catalog.count_images() == len(with_faces) - len(solo)
        assert all(lethe.crops.path(f).is_file() for f in remaining)
        assert not any(lethe.crops.path(f).exists() for f in theirs)
        # The photos left without a face are tombstoned: only their hash remains.
        with lethe.catalog.session() as session:
            assert len(session.scalars(select(ErasedImageRow.sha256)).all()) == len(solo)
        # The request is closed and its photo deleted, only its hash kept.
        view = requests.get(opened.id)
        assert view.state == "answered" and view.closed_at is not None and not view.overdue
        with lethe.catalog.session() as session:
            assert session.scalars(select(RequestProbeBlobRow)).all() == []
            assert list(session.scalars(select(RequestProbeRow.sha256))) == view.probe_hashes
        assert lethe.verify_audit().ok


def face_images(lethe: Lethe) -> dict[int, int]:
    """face id -> image id."""
    with lethe.catalog.session() as session:
        return {int(f): int(i) for f, i in session.execute(select(FaceRow.id, FaceRow.image_id))}


# -- no byte survives ------------------------------------------------------------------------------


def test_erased_bytes_are_found_nowhere_under_the_data_folder(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]]
) -> None:
    data = copy_gallery(gallery, tmp_path)
    probe = (fixtures_dir / "identities" / "barack_obama" / "obama1.jpg").read_bytes()
    with Lethe(make_settings(data)) as lethe:
        labels = face_labels(lethe, fixtures_dir, expected_faces)
        theirs = sorted(f for f, who in labels.items() if who == "barack_obama")
        kept = sorted(f for f, who in labels.items() if who == BIDEN)
        doomed = erased_bytes(lethe, theirs)
        survivors = erased_bytes(lethe, kept)
        # The check is meaningful: before erasure, every one of these byte strings is on disk (the
        # catalog holds the sealed templates, the crop store the crops, a Milvus index the plaintext
        # vectors), except the plaintext under FAISS, whose files are sealed: there it is nowhere.
        before = occurrences(data, doomed)
        for kind, values in doomed.items():
            for number in range(len(values)):
                found = any(hit.startswith(f"{kind} #{number} in ") for hit in before)
                expected = kind != "plaintext template" or index_holds_plaintext()
                assert found == expected, (kind, number)
        requests = lethe.requests
        opened = requests.open(kind="erasure", photos=[probe], contact="o@example.org", actor="op")
        requests.verify(opened.id, actor="op", method="id_document", attested=True)
        result = requests.run(opened.id, actor="op", auto_only=True)
        assert result["erased_faces"] == len(theirs) and result["remaining_after_verify"] == 0
        # While the engine is still open (write-ahead log and shared memory files present).
        assert occurrences(data, doomed) == []
        on_disk = {k: v for k, v in survivors.items() if k != "plaintext template" or index_holds_plaintext()}
        assert len(occurrences(data, survivors)) >= sum(len(v) for v in on_disk.values())
    assert occurrences(data, doomed) == []
    # A reopen (index checked against the catalog) brings nothing back.
    with Lethe(make_settings(data)) as lethe:
        assert set(lethe.index.ids().tolist()).isdisjoint(theirs)
    assert occurrences(data, doomed) == []


# -- killed mid-erasure ----------------------------------------------------------------------------

# Run in a child process: open the engine, plan an erasure, and SIGKILL itself at one point of it.
CHILD = r"""
import json, os, signal, sys
from pathlib import Path

from lethe.config import Settings
from lethe.engine import Lethe
from lethe.privacy.gate.erasure import Eraser

data, point, ids = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def after(owner, name):
    real = getattr(owner, name)

    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        die()
        return out

    setattr(owner, name, wrapped)


engine = Lethe(Settings(data_dir=data, workers=1))
if point == "rows":
    after(Eraser, "_delete_rows")
elif point == "first-crop":
    after(engine.crops, "delete")
elif point == "index-remove":
    after(engine.index, "remove")
elif point == "index-save":
    after(engine.index, "save")
elif point == "checkpoint":
    after(engine.catalog, "checkpoint")
if isinstance(ids, int):  # a request id: run the request, which plans and executes the erasure
    print(ids, flush=True)
    engine.requests.run(ids, actor="crash-test", auto_only=True)
else:
    eraser = Eraser(engine.store)
    with engine.writing():
        job = eraser.plan(ids, reason="test", actor="crash-test")
        print(job, flush=True)
        if point == "plan":
            die()
        eraser.execute(job)
print("not killed", flush=True)
"""


def _kill_mid_erasure(data: Path, point: str, ids: list[int] | int, cwd: Path) -> int:
    env = child_env()
    env["PYTHONPATH"] = str(REPO / "src")
    env["LETHE_ERASURE_AUTO_THRESHOLD"] = str(FIXTURE_AUTO_THRESHOLD)
    env.update(backend_env(data))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), point, json.dumps(ids)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stdout, child.stderr[-2000:])
    return int(child.stdout.split()[0])


@pytest.mark.parametrize("point", ["plan", "rows", "first-crop", "index-remove", "index-save", "checkpoint"])
def test_erasure_killed_midway_is_completed_on_restart(
    gallery: Path,
    tmp_path: Path,
    fixtures_dir: Path,
    expected_faces: list[dict[str, str]],
    point: str,
) -> None:
    data = copy_gallery(gallery, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        labels = face_labels(lethe, fixtures_dir, expected_faces)
        theirs = sorted(f for f, who in labels.items() if who == BIDEN)
        others = sorted(f for f, who in labels.items() if who != BIDEN)
        doomed = erased_bytes(lethe, theirs)
        images_before = lethe.catalog.count_images()
    job_id = _kill_mid_erasure(data, point, theirs, tmp_path)
    with Lethe(make_settings(data)) as lethe:
        with lethe.catalog.session() as session:
            job = session.get(ErasureJobRow, job_id)
            assert job is not None
            assert job.state == "done" and job.completed_at is not None and job.receipt
            receipt = json.loads(job.receipt)
        # The receipt tells what the erasure did, whichever attempt did it.
        assert receipt["erased_faces"] == theirs
        hashes = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in photos_of(fixtures_dir, BIDEN))
        assert len(receipt["erased_images"]) == 2 and sorted(receipt["image_sha256"]) == hashes
        assert lethe.catalog.count_images() == images_before - 2
        assert lethe.catalog.faces(theirs) == {} and lethe.catalog.face_templates(theirs) == {}
        assert lethe.catalog.face_ids().tolist() == others
        assert lethe.index.ids().tolist() == others
        assert not any(lethe.crops.path(f).exists() for f in theirs)
        assert all(lethe.crops.path(f).is_file() for f in others)
        for photo in photos_of(fixtures_dir, BIDEN):
            assert lethe.search(photo.read_bytes(), top_k=50, purpose=PURPOSE).no_match
        verification = lethe.verify_audit()
        assert verification.ok, verification.problem
        done = [e for e in lethe.audit_entries(action="erasure.done") if e.details["job_id"] == job_id]
        assert len(done) == 1
    assert occurrences(data, doomed) == []
    # Never resurrected: a further reopen changes nothing and resumes nothing.
    with Lethe(make_settings(data)) as lethe:
        assert lethe.catalog.face_ids().tolist() == others
        assert lethe.index.ids().tolist() == others
        assert len(lethe.audit_entries(action="erasure.done")) == 1


def test_request_killed_mid_erasure_is_answered_in_full_when_run_again(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]]
) -> None:
    data = copy_gallery(gallery, tmp_path)
    photos = photos_of(fixtures_dir, BIDEN)
    with Lethe(make_settings(data)) as lethe:
        labels = face_labels(lethe, fixtures_dir, expected_faces)
        theirs = sorted(f for f, who in labels.items() if who == BIDEN)
        request_id = lethe.requests.open(
            kind="erasure", photos=[photos[0].read_bytes()], contact="jb@example.org", actor="op"
        ).id
        lethe.requests.verify(request_id, actor="op", method="id_document", attested=True)
    _kill_mid_erasure(data, "rows", request_id, tmp_path)
    with Lethe(make_settings(data)) as lethe:  # the erasure job is finished on open
        assert set(lethe.catalog.face_ids().tolist()).isdisjoint(theirs)
        requests = lethe.requests
        assert requests.get(request_id).state == "verified"  # not answered: the run was killed
        result = requests.run(request_id, actor="op", auto_only=True)
        # The answer counts what the interrupted run erased for this request.
        assert result["erased_faces"] == len(theirs)
        assert result["erased_images"] == 2
        assert (result["review_candidates"], result["remaining_after_verify"]) == (0, 0)
        assert result["state"] == "answered"
        assert lethe.verify_audit().ok


def test_an_erasure_by_another_process_is_not_undone_by_this_engines_next_write(
    gallery: Path, tmp_path: Path, fixtures_dir: Path, expected_faces: list[dict[str, str]]
) -> None:
    data = copy_gallery(gallery, tmp_path)
    new = tmp_path / "new"
    new.mkdir()
    stranger = fixtures_dir / "identities" / "tom_cruise" / "Tom_Cruise_avp_2014_4.jpg"
    (new / "tom.jpg").write_bytes(stranger.read_bytes() + b"\x00")
    with Lethe(make_settings(data)) as service, Lethe(make_settings(data)) as cli:
        labels = face_labels(cli, fixtures_dir, expected_faces)
        theirs = sorted(f for f, who in labels.items() if who == BIDEN)
        doomed = erased_bytes(cli, theirs)
        assert cli.remove_faces(theirs) == len(theirs)
        assert occurrences(data, doomed) == []
        assert service.ingest("events", new).faces == 1
        assert set(service.index.ids().tolist()) == set(service.catalog.face_ids().tolist())
        assert occurrences(data, doomed) == []


def test_erasure_deletes_the_persons_access_exports(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    """An access export holds decrypted crops of one person: erasing the person removes it too."""

    data = copy_gallery(gallery, tmp_path)
    biden = [(fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()]
    rose = [(fixtures_dir / "identities" / "rose_leslie" / "img1.jpg").read_bytes()]
    with Lethe(make_settings(data)) as lethe:
        requests = lethe.requests
        exports = []
        for photos in (biden, rose):
            access = requests.open(kind="access", photos=photos, contact="x@x.org").id
            requests.verify(access, actor="dpo", method="id_document", attested=True)
            requests.run(access, actor="dpo")
            exports.append(requests.export_path(access))
        biden_export, rose_export = exports
        assert (biden_export / "export.json").is_file() and (rose_export / "export.json").is_file()
        erasure = requests.open(kind="erasure", photos=biden, contact="b@x.org")
        requests.verify(erasure.id, actor="dpo", method="id_document", attested=True)
        requests.run(erasure.id, actor="dpo", auto_only=True)
    assert not biden_export.exists()
    assert (rose_export / "export.json").is_file()
