"""Edge operations answer the same way on both stacks (the same result, or the same error class and
message): erasing faces that do not exist or no longer exist, a request about a person already
erased, running or deciding what cannot be, refused probes, the same folder ingested again. Then
the audit trail: the same actions in the same order with the same details, and an intact chain.

Every test here comes after the whole story (it needs the last stage, ``accessed``) and changes
both stacks alike, so the audit comparisons at the end hold whatever was selected before them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lethe.errors import ImageError, InputError, NotFoundError, PrivacyError

from .compare import Stack, compare
from .conftest import ACTOR, ERASED_PERSON, PURPOSE, subject_request
from .test_ingest_search import neutral_report
from .test_subject_requests import neutral_erasure

pytestmark = [pytest.mark.xdist_group("congruence"), pytest.mark.usefixtures("accessed")]

MISSING = 10**9  # an id neither stack ever gave
ROSE = "identities/rose_leslie/img1.jpg"


def erased_face_ids(stack: Stack) -> list[int]:
    """The stack's own ids of the erased person's faces in their own photos (gone since the story)."""
    return sorted(f for f, (photo, _) in stack.faces.items() if photo in ERASED_PERSON)


def request_of(stack: Stack, kind: str) -> int:
    (request,) = [r for r in stack.lethe.requests.list_requests() if r.kind == kind][:1]
    return request.id


def error_class(answer: Any) -> str:
    assert isinstance(answer, dict) and "error" in answer, f"expected an error, got {answer!r}"
    return str(answer["error"]).split(":", 1)[0]


@pytest.mark.parametrize(
    "faces",
    [
        pytest.param(lambda s: [MISSING], id="an id that never existed"),
        pytest.param(erased_face_ids, id="faces already erased"),
        pytest.param(lambda s: [], id="no faces"),
    ],
)
def test_erasing_faces_that_are_not_there_erases_nothing(stacks: list[Stack], faces: Any) -> None:
    assert compare(stacks, lambda s: s.lethe.remove_faces(faces(s), actor=ACTOR)) == 0


def test_an_erasure_request_about_someone_already_erased_finds_nothing(
    stacks: list[Stack], fixtures_dir: Path
) -> None:
    probe = (fixtures_dir / ERASED_PERSON[1]).read_bytes()
    answer = compare(stacks, lambda s: subject_request(s, "erasure", probe), neutral_erasure)
    assert answer["run"]["erased_faces"] == answer["run"]["erased_images"] == 0
    assert answer["run"]["state"] == "answered" and answer["candidates"] == []
    (receipt,) = answer["outcome"]["receipts"]
    assert receipt["erased_faces"] == receipt["erased_images"] == [] and receipt["vectors_removed"] == 0


def open_and_decide(stack: Stack, probe: bytes, face_id: int) -> object:
    """A reviewer's decision on a face that is not a candidate of the (open) request."""
    opened = stack.lethe.requests.open(kind="erasure", photos=[probe], contact="x@example.org", actor=ACTOR)
    return stack.lethe.requests.decide(opened.id, face_id, confirm=True, actor="reviewer")


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        pytest.param(
            lambda s: s.lethe.requests.run(MISSING, actor=ACTOR), NotFoundError, id="run an unknown request"
        ),
        pytest.param(
            lambda s: s.lethe.requests.run(request_of(s, "access"), actor=ACTOR),
            PrivacyError,
            id="run an answered request again",
        ),
        pytest.param(
            lambda s: s.lethe.requests.verify(
                request_of(s, "erasure"), actor="dpo", method="id_document", attested=True
            ),
            PrivacyError,
            id="verify an answered request",
        ),
        pytest.param(
            lambda s: s.lethe.requests.decide(
                request_of(s, "erasure"), erased_face_ids(s)[0], confirm=True, actor="reviewer"
            ),
            PrivacyError,
            id="decide on an erased face of an answered request",
        ),
        pytest.param(
            lambda s: s.lethe.crop_jpeg(erased_face_ids(s)[0]), NotFoundError, id="the crop of an erased face"
        ),
        pytest.param(lambda s: s.lethe.crop_jpeg(MISSING), NotFoundError, id="the crop of no face"),
    ],
)
def test_what_cannot_be_done_is_refused_alike(stacks: list[Stack], op: Any, expected: type) -> None:
    assert error_class(compare(stacks, op)) == expected.__name__


def test_deciding_on_a_face_that_is_no_candidate_is_refused_alike(
    stacks: list[Stack], fixtures_dir: Path
) -> None:
    probe = (fixtures_dir / ROSE).read_bytes()
    answer = compare(stacks, lambda s: open_and_decide(s, probe, erased_face_ids(s)[0]))
    assert error_class(answer) == NotFoundError.__name__


@pytest.mark.parametrize(
    ("probe", "options", "expected"),
    [
        pytest.param(b"not a photo at all", {}, ImageError, id="bytes that are no image"),
        pytest.param(b"", {}, ImageError, id="no bytes"),
        pytest.param(ROSE, {"face": 3}, InputError, id="a face the probe does not have"),
        pytest.param(ROSE, {"purpose": " "}, InputError, id="no purpose"),
        pytest.param(ROSE, {"top_k": 0}, InputError, id="top 0"),
    ],
)
def test_a_refused_search_is_refused_alike(
    stacks: list[Stack], fixtures_dir: Path, probe: bytes | str, options: dict[str, Any], expected: type
) -> None:
    data = (fixtures_dir / probe).read_bytes() if isinstance(probe, str) else probe
    kwargs = {"purpose": PURPOSE, "actor": ACTOR} | options
    assert error_class(compare(stacks, lambda s: s.lethe.search(data, **kwargs))) == expected.__name__


def test_a_request_without_a_face_is_refused_alike(stacks: list[Stack], fixtures_dir: Path) -> None:
    probe = (fixtures_dir / "no_face" / "dog.jpg").read_bytes()
    answer = compare(
        stacks,
        lambda s: s.lethe.requests.open(kind="erasure", photos=[probe], contact="x@example.org"),
    )
    assert error_class(answer) == InputError.__name__


def test_the_same_folder_ingested_again_is_skipped_alike(stacks: list[Stack], photos: Path) -> None:
    report = compare(stacks, lambda s: s.lethe.ingest("events", photos, actor=ACTOR), neutral_report)
    assert report["images"] == report["faces"] == 0 and report["skipped"] > 0


# -- the audit trail, after everything above ---------------------------------------------------------


def audit_trail(stack: Stack) -> list[dict[str, Any]]:
    """Every audit entry, oldest first, with face and image ids as faces and photos."""
    entries = []
    for entry in reversed(stack.lethe.audit_entries(limit=1_000_000)):
        details = dict(entry.details)
        for key, name in (("face_ids", stack.face), ("image_ids", stack.image), ("face_id", stack.face)):
            if key in details:
                value = details[key]
                details[key] = [name(i) for i in value] if isinstance(value, list) else name(value)
        if entry.action.startswith("communication.") and "sha256" in details:
            details["sha256"] = "<hash of a letter naming each stack's own dates and reference>"
        entries.append({"seq": entry.seq, "actor": entry.actor, "action": entry.action, "details": details})
    return entries


def test_the_audit_trails_hold_the_same_actions_in_the_same_order(stacks: list[Stack]) -> None:
    actions = compare(stacks, lambda s: [e.action for e in reversed(s.lethe.audit_entries(limit=1_000_000))])
    for expected in ("source.add", "ingest", "search", "request.open", "erasure.rows", "erasure.done"):
        assert any(a.startswith(expected) for a in actions), (expected, sorted(set(actions)))


def test_the_audit_entries_hold_the_same_details(stacks: list[Stack]) -> None:
    trail = compare(stacks, audit_trail)
    assert [e["seq"] for e in trail] == list(range(1, len(trail) + 1))


def test_both_audit_chains_verify(stacks: list[Stack]) -> None:
    answer = compare(stacks, lambda s: s.lethe.verify_audit().as_dict() | {"head": "<hash>"})
    assert answer["ok"] is True and answer["first_bad_seq"] is None and answer["entries"] > 20
