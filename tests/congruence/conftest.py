"""The two stacks and the story told on both, once per test process.

The embedded stack is a SQLite catalog with a FAISS index; the scale stack a PostgreSQL catalog on
the tests' throwaway server (``pg_server.py``) with milvus-lite in its data folder. Both ingest
the same folder of fixture photos (with two files that are not photos), then live through one
story, stage by stage: search, an erasure request, search again, an access request. Each stage is
a session fixture that needs the one before, so the story runs in the same order whichever tests
are selected, and each test compares the answers of one stage. The engines stay open for the
session; tests that change data run after every stage (they need the last one).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lethe.catalog.tables import FaceRow
from lethe.engine import Lethe

from .compare import Outcome, Stack, run_both
from conftest import consent_source, make_settings, postgres_catalog

PURPOSE = "congruence: find the person"
ACTOR = "operator"
TOP = 20  # more than any person's faces: no cut-off at a tie between two scores
#: Two people stay out of the gallery: their photos are strangers' probes.
STRANGERS = ("identities/tom_cruise", "identities/lin_manuel_miranda")
#: What the story searches for, before the erasure: name -> (photo, face of the probe to use).
PROBES: dict[str, tuple[str, int | None]] = {
    "biden, a gallery photo": ("identities/joe_biden/biden.jpg", None),
    "obama, a gallery photo": ("identities/barack_obama/obama1.jpg", None),
    "rose, a gallery photo": ("identities/rose_leslie/img2.jpg", None),
    "kit, a gallery photo": ("identities/kit_harington/john2.jpeg", None),
    "biden, the second face of a group photo": ("group_labelled/two_people.jpg", 1),
    "a stranger": ("identities/tom_cruise/Tom_Cruise_avp_2014_4.jpg", None),
    "a photo without a face": ("no_face/dog.jpg", None),
}
ERASED_PERSON = ("identities/joe_biden/biden2.jpg", "identities/joe_biden/biden.jpg")
ACCESS_PROBE = "identities/barack_obama/obama2.jpg"
#: Not photos: they must be refused by path, with the same reason, on both.
BAD_FILES = {"bad/truncated.jpg", "bad/not-a-photo.png"}


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """The ingested folder: the fixture photos but the strangers', a truncated JPEG and a text
    file named like a PNG."""
    folder = (tmp_path_factory.mktemp("congruence-photos") / "photos").resolve()
    shutil.copytree(
        fixtures_dir,
        folder,
        ignore=lambda d, names: [
            n
            for n in names
            if (Path(d) / n).relative_to(fixtures_dir).as_posix() in STRANGERS
            or n.endswith((".csv", ".txt", ".md"))
            or n in {"licenses", "SHA256SUMS"}
        ],
    )
    (folder / "bad").mkdir()
    good = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    (folder / "bad" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "bad" / "not-a-photo.png").write_bytes(b"this is not a picture\n")
    return folder


@pytest.fixture(scope="session")
def stacks(
    tmp_path_factory: pytest.TempPathFactory, photos: Path, yunet_model: Path, sface_model: Path
) -> Iterator[list[Stack]]:
    """(faiss, sqlite) and (milvus, postgresql), each with the same consented source. Without a
    PostgreSQL server this skips, or fails where LETHE_TEST_REQUIRE names postgresql (CI)."""
    root = tmp_path_factory.mktemp("congruence").resolve()
    scale_dir = root / "milvus-postgresql" / "data"
    scale_settings = make_settings(scale_dir, index="milvus", catalog_url=postgres_catalog(scale_dir))
    embedded_dir = root / "faiss-sqlite" / "data"
    embedded_settings = make_settings(embedded_dir, index="faiss", catalog_url=None)
    with Lethe(embedded_settings) as embedded, Lethe(scale_settings) as scale:
        pair = [
            Stack("faiss+sqlite", embedded, embedded_dir, photos),
            Stack("milvus+postgresql", scale, scale_dir, photos),
        ]
        for stack in pair:
            stack.lethe.add_source(consent_source(), actor=ACTOR)
        yield pair


def learn_ids(stack: Stack) -> None:
    """Note what each face and image id of the catalog names, for stack-neutral comparisons."""
    with stack.lethe.catalog.session() as session:
        ids = [int(i) for i in session.scalars(select(FaceRow.id))]
    for face_id, info in stack.lethe.catalog.faces(ids).items():
        stack.faces[face_id] = (stack.photo(info.image_uri), tuple(info.box.as_list()))
        stack.images[info.image_id] = stack.photo(info.image_uri)
    stack.indexed = sorted(int(i) for i in stack.lethe.index.ids())


def search(stack: Stack, probe: bytes, face: int | None = None) -> dict[str, Any]:
    """One search and the audit entry it wrote."""
    result = stack.lethe.search(probe, purpose=PURPOSE, actor=ACTOR, top_k=TOP, face=face)
    entry = stack.lethe.audit_entries(limit=1)[0]
    return {"result": result, "audit": entry}


@pytest.fixture(scope="session")
def ingested(stacks: list[Stack], photos: Path) -> list[Outcome]:
    outcomes = run_both(stacks, lambda s: s.lethe.ingest("events", photos, actor=ACTOR))
    for stack in stacks:
        learn_ids(stack)
    return outcomes


@pytest.fixture(scope="session")
def searched(stacks: list[Stack], ingested: list[Outcome], fixtures_dir: Path) -> dict[str, list[Outcome]]:
    return {
        name: run_both(stacks, lambda s, p=path, f=face: search(s, (fixtures_dir / p).read_bytes(), f))
        for name, (path, face) in PROBES.items()
    }


def read_export(folder: Path) -> dict[str, Any]:
    """An access export as data: its JSON document, its page and the sha256 of every crop."""
    crops = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "crops").iterdir())}
    return {
        "files": sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()),
        "document": json.loads((folder / "export.json").read_text()),
        "page": (folder / "index.html").read_text(),
        "crops": crops,
    }


def subject_request(stack: Stack, kind: str, probe: bytes) -> dict[str, Any]:
    """A data-subject request end to end: opened with a photo, the requester's identity verified,
    run on the automatic band (``lethe request run --auto``); an access request's export read."""
    requests = stack.lethe.requests
    opened = requests.open(kind=kind, photos=[probe], contact="subject@example.org", actor=ACTOR)
    requests.verify(opened.id, actor="dpo", method="id_document", attested=True)
    run = requests.run(opened.id, actor="dpo", auto_only=True)
    answer = {"run": run, "request": requests.get(opened.id), "candidates": requests.candidates(opened.id)}
    if kind == "access":
        answer["export"] = read_export(requests.export_path(opened.id))
    return answer


@pytest.fixture(scope="session")
def erased(
    stacks: list[Stack], searched: dict[str, list[Outcome]], fixtures_dir: Path
) -> dict[str, list[Outcome]]:
    """The erasure request, then the person's photos searched for again."""
    probe = (fixtures_dir / ERASED_PERSON[0]).read_bytes()
    stages = {"request": run_both(stacks, lambda s: subject_request(s, "erasure", probe))}
    for path in ERASED_PERSON:
        stages[path] = run_both(stacks, lambda s, p=path: search(s, (fixtures_dir / p).read_bytes()))
    return stages


@pytest.fixture(scope="session")
def accessed(stacks: list[Stack], erased: dict[str, list[Outcome]], fixtures_dir: Path) -> list[Outcome]:
    """The last stage of the story: an access request of someone who was not erased."""
    probe = (fixtures_dir / ACCESS_PROBE).read_bytes()
    return run_both(stacks, lambda s: subject_request(s, "access", probe))
