"""Data-subject requests give the same answers on both stacks: an erasure request erases the same
faces and photos with the same receipt, after which neither stack finds the person; an access
request exports the same document and the same crops."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lethe.privacy import signatures

from .compare import Outcome, Stack, assert_same, compare
from .conftest import ACCESS_PROBE, ERASED_PERSON, PURPOSE
from .test_ingest_search import neutral_search

pytestmark = pytest.mark.xdist_group("congruence")


def face_key(face: Any) -> str:
    """A face (photo, box) as a set member, whether its box is a tuple or, made neutral, a list."""
    return json.dumps(face)


def without_ref(value: Any, ref: str) -> Any:
    """The request's random reference (in the view, the export's folder and page) as ``<ref>``."""
    return json.loads(json.dumps(value).replace(ref, "<ref>"))


def neutral_receipt(stack: Stack, receipt: dict[str, Any]) -> dict[str, Any]:
    """By face and photo; its signature (each stack signs with its own key, at its own time) as its
    kind and whether it verifies under that stack's published key."""
    check = signatures.verify_object(receipt, stack.lethe.keyring.document_public_key())
    receipt = dict(receipt) | {"signature": {"kind": receipt["signature"]["kind"], "status": check.status}}
    receipt["erased_faces"] = sorted((stack.face(f) for f in receipt["erased_faces"]), key=repr)
    images = zip(receipt.pop("erased_images"), receipt.pop("image_sha256"), strict=True)
    receipt["erased_images"] = sorted((stack.image(i), sha) for i, sha in images)
    return receipt


def neutral_candidates(stack: Stack, candidates: list[Any]) -> list[dict[str, Any]]:
    """What a request found, by face: score, band, round and the reviewer's decision."""
    fields = ("score", "band", "round", "decision", "decided_by")
    found = [{"face": stack.face(c.face_id)} | {f: getattr(c, f) for f in fields} for c in candidates]
    return sorted(found, key=lambda c: repr(c["face"]))


def neutral_erasure(stack: Stack, value: dict[str, Any]) -> dict[str, Any]:
    view = value["request"].as_dict()
    outcome = dict(view.pop("outcome") or {})
    outcome["receipts"] = [neutral_receipt(stack, r) for r in outcome.get("receipts", [])]
    answer = {
        "run": value["run"],
        "request": view,
        "outcome": outcome,
        "candidates": neutral_candidates(stack, value["candidates"]),
    }
    return without_ref(stack.neutral(answer), value["request"].ref)


def test_an_erasure_request_erases_the_same_faces_and_photos(
    stacks: list[Stack], searched: dict[str, list[Outcome]], erased: dict[str, list[Outcome]]
) -> None:
    answer = assert_same(stacks, erased["request"], neutral_erasure)[0]
    assert answer["run"]["state"] == answer["request"]["state"] == "answered"
    assert answer["request"]["closed_at"] == "<time>"
    (receipt,) = answer["outcome"]["receipts"]
    assert receipt["reason"] == "erasure request"
    assert receipt["signature"] == {"kind": "erasure-receipt", "status": "valid"}
    assert [photo for photo, _ in receipt["erased_images"]] == sorted(ERASED_PERSON)
    erased_faces = receipt["erased_faces"]
    assert answer["run"]["erased_faces"] == len(erased_faces) == receipt["vectors_removed"]
    assert receipt["crops_deleted"] == len(erased_faces)
    # Every face the person's own photo found before (the group photos' included) is gone.
    before = assert_same(stacks, searched["biden, a gallery photo"], neutral_search)[0]
    assert {face_key(m["face"]) for m in before["matches"]} <= {face_key(f) for f in erased_faces}
    # Both indexes hold the same faces afterwards: everyone's but the erased faces.
    left = compare(stacks, lambda s: sorted((s.face(i) for i in s.lethe.index.ids()), key=repr))
    assert len(left) == len(stacks[0].faces) - len(erased_faces)
    assert not {face_key(f) for f in left} & {face_key(f) for f in erased_faces}


@pytest.mark.parametrize("photo", ERASED_PERSON)
def test_after_the_erasure_neither_stack_finds_the_person(
    stacks: list[Stack], erased: dict[str, list[Outcome]], photo: str
) -> None:
    answer = assert_same(stacks, erased[photo], neutral_search)[0]
    assert len(answer["probe_boxes"]) == 1
    assert answer["no_match"] and answer["matches"] == [] and answer["audit"]["details"]["face_ids"] == []


_FACE_NAMED = re.compile(r"(crops/|face )(\d+)")


def neutral_access(stack: Stack, value: dict[str, Any]) -> dict[str, Any]:
    """The export by face: face ids and crop file names (in the document, the folder and the page)
    as faces."""
    export = value["export"]

    def by_face(text: str) -> str:
        return _FACE_NAMED.sub(lambda m: f"{m[1]}{json.dumps(stack.face(int(m[2])))}", text)

    document = export["document"]
    for item in document["faces"]:
        item["face_id"] = stack.face(item["face_id"])
        item["crop"] = by_face(item["crop"])
    answer = {
        "run": value["run"],
        "request": value["request"].as_dict(),
        "candidates": neutral_candidates(stack, value["candidates"]),
        "document": document,
        "files": sorted(map(by_face, export["files"])),
        "crops": {by_face(f"crops/{name}"): digest for name, digest in export["crops"].items()},
        "page": re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "<time>", by_face(export["page"])),
    }
    return without_ref(stack.neutral(answer), value["request"].ref)


def test_an_access_request_exports_the_same_document_and_crops(
    stacks: list[Stack], accessed: list[Outcome], searched: dict[str, list[Outcome]]
) -> None:
    answer = assert_same(stacks, accessed, neutral_access)[0]
    assert answer["run"]["state"] == "answered" and answer["run"]["review_candidates"] == 0
    items = answer["document"]["faces"]
    assert answer["run"]["faces"] == len(items) >= 7
    assert {i["image"].split("/")[0] for i in items} == {"identities", "group_labelled"}
    assert all(i["image"].startswith(("identities/barack_obama/", "group_labelled/")) for i in items)
    assert ACCESS_PROBE in {i["image"] for i in items}
    crops = sorted(i["crop"] for i in items)
    assert sorted(answer["crops"]) == crops
    photos = sorted(p["file"] for p in answer["document"]["photos"] if p["file"])
    assert len(photos) == len(answer["document"]["photos"])  # every photo still at its path: a copy of each
    signed = ["export.json.sig.json", "how-to-check-the-signature.txt"]  # each stack's own signature
    copies = ["access_copy.pdf", "portability.zip"]  # the copy as a PDF; the consent source's archive
    assert answer["files"] == sorted(["export.json", "index.html", *signed, *copies, *crops, *photos])
    assert "<time>" in answer["page"] and "<ref>" in answer["page"]
    # Every face the earlier search returned lists that search, with its purpose; no other does.
    search = assert_same(stacks, searched["obama, a gallery photo"], neutral_search)[0]
    returned = {face_key(m["face"]) for m in search["matches"]}
    assert returned
    for item in items:
        purposes = [s["purpose"] for s in item["searches"]]
        assert (PURPOSE in purposes) == (face_key(item["face_id"]) in returned), item
