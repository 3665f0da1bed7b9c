"""Erasure that stays erased (issue 16, review finding 2): a photo erased on a person's request never
comes back, whatever source it is offered to, nor does a re-encoded or resized copy of it; the erasure
suppression that keeps the copies out expires after its documented period; only an admin's audited
override lets the photos back."""

from __future__ import annotations

import io
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, update

from lethe.catalog.privacy_tables import ErasedImageRow, SuppressionRow
from lethe.catalog.repository import now_utc
from lethe.engine import Lethe
from lethe.errors import ConflictError, InputError

from conftest import consent_source, copy_gallery, make_settings

pytestmark = pytest.mark.storage

PURPOSE = "test: erasure stays"


def erase_person(lethe: Lethe, folder: Path, probe: Path) -> tuple[int, dict[str, object]]:
    """A verified erasure request for the person of ``probe``: every face in ``folder`` (the
    person's own photos) confirmed, every other candidate rejected. (request id, outcome)."""
    requests = lethe.requests
    opened = requests.open(kind="erasure", photos=[probe.read_bytes()], contact="r@example.org", actor="desk")
    requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
    result = requests.run(opened.id, actor="dpo", auto_only=True)
    pending = requests.candidates(opened.id, pending_only=True)
    if pending:
        infos = lethe.catalog.faces([c.face_id for c in pending])
        for candidate in pending:
            mine = Path(infos[candidate.face_id].image_uri).parent == folder
            requests.decide(opened.id, candidate.face_id, confirm=mine, actor="dpo")
        result = requests.run(opened.id, actor="dpo")
    assert result["state"] == "answered", result
    return opened.id, result


def copies(photos: list[Path], target: Path, *, scale: float = 0.8) -> Path:
    """Each photo resized and re-encoded (JPEG at another quality, and PNG): other bytes, same faces."""
    target.mkdir()
    for photo in photos:
        with Image.open(photo) as image:
            smaller = image.convert("RGB").resize((int(image.width * scale), int(image.height * scale)))
        buffer = io.BytesIO()
        smaller.save(buffer, "JPEG", quality=70)
        (target / f"{photo.stem}-small.jpg").write_bytes(buffer.getvalue())
        smaller.save(target / f"{photo.stem}-small.png", "PNG")
    return target


def test_an_erased_person_stays_out_of_every_source_until_an_admin_lifts_it(
    gallery: Path, tmp_path: Path, fixtures_dir: Path
) -> None:
    data = copy_gallery(gallery, tmp_path)
    folder = fixtures_dir / "identities" / "rose_leslie"
    rose = sorted(folder.iterdir())
    biden = fixtures_dir / "identities" / "joe_biden" / "biden.jpg"
    with Lethe(make_settings(data)) as lethe:
        lethe.add_source(consent_source("press", "DE"))
        request_id, result = erase_person(lethe, folder, rose[-1])
        assert int(result["erased_images"]) >= len(rose)  # type: ignore[call-overload]
        for photo in rose:
            assert lethe.search(photo.read_bytes(), purpose=PURPOSE).no_match

        # The same folder into the same source: skipped (this held before).
        same = lethe.ingest("events", folder)
        assert (same.images, same.faces, same.skipped) == (0, 0, len(rose))
        # The same folder into another source: nothing comes back (the finding: it all came back).
        other = lethe.ingest("press", folder)
        assert (other.images, other.faces, other.skipped) == (0, 0, len(rose))
        # Resized, re-encoded copies: their faces are matched and kept out, their rows not stored;
        # another person's copy in the same folder goes in.
        resized = copies([*rose, biden], tmp_path / "copies")
        kept_out = lethe.ingest("press", resized)
        assert kept_out.errors == []
        assert (kept_out.images, kept_out.faces, kept_out.suppressed) == (2, 2, 2 * len(rose))
        for photo in rose:
            assert lethe.search(photo.read_bytes(), purpose=PURPOSE).no_match
        # What keeps the copies out is the request's erasure suppression: sealed templates only.
        suppressions = lethe.objections.erasure_suppressions()
        assert [(s["request_id"], s["scope"]) for s in suppressions] == [(request_id, "erasure")]
        assert lethe.objections.list_active() == []  # not an objection: the DPO cannot withdraw it
        with pytest.raises(ConflictError):
            lethe.objections.withdraw(int(suppressions[0]["id"]), actor="dpo")  # type: ignore[call-overload]

        # The only way back: an admin's override, with a reason, audited.
        job_id = lethe.requests.receipts(request_id)[0].job_id
        with pytest.raises(InputError):
            lethe.lift_erasure(actor="ada", reason="because", job_id=job_id)
        lifted = lethe.lift_erasure(
            actor="ada", reason="court order 12/2026: erasure unfounded", job_id=job_id
        )
        assert lifted["request_id"] == request_id and lifted["suppression_ids"] == [suppressions[0]["id"]]
        assert int(lifted["tombstones"]) >= len(rose)  # type: ignore[call-overload]
        back = lethe.ingest("press", resized)
        assert (back.images, back.faces, back.suppressed) == (2 * len(rose), 2 * len(rose), 0)
        again = lethe.ingest("press", folder)
        assert (again.images, again.faces) == (len(rose), len(rose))
        entry = lethe.audit_entries(action="erasure.lift", limit=1)[0]
        assert entry.actor == "ada" and entry.details["job_id"] == job_id
        assert entry.details["note"] == "court order 12/2026: erasure unfounded"  # off the chain, erasable
        with lethe.catalog.session() as session:
            row = session.get(SuppressionRow, suppressions[0]["id"])
            assert row is not None and row.templates is None and row.withdrawn_at is not None
        assert lethe.verify_audit().ok


def test_a_photo_erased_from_one_source_is_refused_by_hash_everywhere_until_lifted(
    engine: Lethe, tmp_path: Path, fixtures_dir: Path
) -> None:
    """A tombstone (an erased photo's hash) holds for every source; the override by hash lifts it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(fixtures_dir / "identities" / "joe_biden" / "biden.jpg", folder)
    engine.add_source(consent_source("gala"))
    engine.add_source(consent_source("belgium", "BE"))
    assert engine.ingest("gala", folder).faces == 1
    engine.remove_faces(engine.catalog.face_ids().tolist(), actor="test", reason="retention")
    assert engine.ingest("belgium", folder).skipped == 1  # before the fix: ingested again
    with engine.catalog.session() as session:
        (sha,) = session.scalars(select(ErasedImageRow.sha256)).all()
    with pytest.raises(InputError):
        engine.lift_erasure(actor="ada", reason="a mistaken retention purge", sha256="not-a-hash")
    engine.lift_erasure(actor="ada", reason="a mistaken retention purge", sha256=sha)
    assert engine.ingest("belgium", folder).faces == 1
    assert engine.audit_entries(action="erasure.lift", limit=1)[0].details["image_sha256"] == [sha]


def test_the_erasure_suppression_expires_after_its_period(tmp_path: Path, fixtures_dir: Path) -> None:
    folder = fixtures_dir / "identities" / "rose_leslie"
    rose = sorted(folder.iterdir())
    with Lethe(make_settings(tmp_path / "data", erasure_suppression_days=30)) as lethe:
        lethe.add_source(consent_source())
        lethe.add_source(consent_source("press", "DE"))
        lethe.ingest("events", folder)
        erase_person(lethe, folder, rose[0])
        resized = copies(rose, tmp_path / "copies")
        assert lethe.ingest("press", resized).faces == 0
        # 29 days later it still holds; past 30 days it is deleted at the next ingest, audited.
        for days, faces in ((29, 0), (31, 2 * len(rose))):
            with lethe.catalog.session() as session, session.begin():
                session.execute(update(SuppressionRow).values(created_at=now_utc() - timedelta(days=days)))
            assert lethe.ingest("press", resized).faces == faces
        with lethe.catalog.session() as session:
            (row,) = session.scalars(select(SuppressionRow)).all()
        assert row.templates is None and row.withdrawn_at is not None
        expired = lethe.audit_entries(action="suppression.expire", limit=1)[0]
        assert expired.details == {"suppression_ids": [row.id], "days": 30}
        assert lethe.objections.erasure_suppressions()[0]["withdrawn_at"] is not None
