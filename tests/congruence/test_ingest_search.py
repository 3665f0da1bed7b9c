"""Ingest and search give the same answers on (faiss, sqlite) and (milvus, postgresql): the same
report for the same folder, the same faces under the same ids, the same matches with the same
scores (within :data:`compare.SCORE_TOLERANCE`) and the same audit entry for every search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .compare import SCORE_TOLERANCE, Outcome, Stack, assert_same
from .conftest import BAD_FILES, PROBES

pytestmark = pytest.mark.xdist_group("congruence")


def neutral_report(stack: Stack, report: Any) -> dict[str, object]:
    data = report.as_dict()
    for timing in ("seconds", "images_per_s"):
        del data[timing]
    data["errors"] = sorted(
        ({"path": stack.photo(e["path"]), "reason": e["reason"]} for e in data["errors"]),
        key=lambda e: e["path"],
    )
    return data


def test_the_same_folder_gives_the_same_ingest_report(
    stacks: list[Stack], ingested: list[Outcome], photos: Path
) -> None:
    report = assert_same(stacks, ingested, neutral_report)[0]
    assert {e["path"] for e in report["errors"]} == BAD_FILES
    photo_files = [p for p in photos.rglob("*") if p.is_file()]
    assert report["images"] + report["skipped"] + len(report["errors"]) == len(photo_files)
    assert report["faces"] >= 20


def test_the_same_faces_get_the_same_ids(stacks: list[Stack], ingested: list[Outcome]) -> None:
    """Both catalogs number faces and photos in the order the ingest commits them: the same ids
    name the same face (photo and box) on both. Everything else is compared by face, not id, so
    a difference here is reported here alone."""
    embedded, scale = stacks
    assert embedded.faces, "nothing was ingested"
    assert embedded.faces == scale.faces
    assert embedded.images == scale.images
    for stack in stacks:  # and each index held a vector for every face of its catalog
        assert stack.indexed == sorted(stack.faces), stack.name


def neutral_search(stack: Stack, value: dict[str, Any]) -> dict[str, object]:
    """A search answer by face: the matches (sorted by face), their ranking with ties (scores
    within the tolerance) as one rank, and the search's audit entry with its faces."""
    result, entry = value["result"], value["audit"]
    matches = [
        {
            "face": stack.face(m.face_id),
            "image": stack.photo(m.image),
            "source": m.source,
            "source_url": m.source_url,
            "box": m.box.as_list(),
            "band": m.band,
            "score": m.score,
            "crop_exists": Path(m.crop_path).is_file(),
        }
        for m in result.matches
    ]
    ranks: list[list[Any]] = []
    previous = None
    for match in matches:
        if previous is None or previous - match["score"] > SCORE_TOLERANCE:
            ranks.append([])
        ranks[-1].append(match["face"])
        previous = match["score"]
    details = dict(entry.details)
    details["face_ids"] = [stack.face(f) for f in details["face_ids"]]
    return {
        "probe_boxes": [b.as_list() for b in result.probe_faces],
        "used_face": result.used_face,
        "threshold": result.threshold,
        "calibration": result.calibration,
        "no_match": result.no_match,
        "matches": sorted(matches, key=lambda m: repr(m["face"])),
        "ranking": [sorted(rank, key=repr) for rank in ranks],
        "audit": {"seq": entry.seq, "actor": entry.actor, "action": entry.action, "details": details},
    }


@pytest.mark.parametrize("probe", list(PROBES))
def test_a_search_finds_the_same_faces_with_the_same_scores(
    stacks: list[Stack], searched: dict[str, list[Outcome]], probe: str
) -> None:
    answer = assert_same(stacks, searched[probe], neutral_search)[0]
    path, _ = PROBES[probe]
    assert answer["audit"]["action"] == "search"
    if "gallery photo" in probe:  # the probe's own photo comes first, as itself
        assert answer["ranking"][0][0][0] == path
        assert answer["matches"] and max(m["score"] for m in answer["matches"]) > 0.99
    elif "group photo" in probe:
        assert len(answer["probe_boxes"]) == 2 and answer["used_face"] == 1
        found = {m["image"] for m in answer["matches"]}
        assert any(image.startswith("identities/joe_biden/") for image in found), found
    else:
        assert answer["no_match"] and answer["audit"]["details"]["face_ids"] == []
