"""The demographic performance report (issue 19 item 7) on a labelled split of real LFW people, with
the real models: per-group FNIR/FPIR with Wilson intervals, groups taken only from the operator's
CSV, unlabelled photos left out and counted, a bad CSV refused with nothing written.

The labelling here is ARBITRARY: the test puts LFW people into groups by the first letter of their
name (A-E, F-L, M-Z). It stands for an operator's labels; it means nothing about the people."""

from __future__ import annotations

import csv
import json
import shutil
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lethe.calibration import wilson
from lethe.cli import app
from lethe.config import Settings
from lethe.demographics import (
    Labels,
    demographic_report,
    differential,
    measure,
    rate_with_intervals,
    read_labels,
    split,
)
from lethe.errors import InputError
from lethe.evaluation import embed_all
from lethe.privacy.demographic_report import HTML_NAME, JSON_NAME, pack_files
from lethe.store import Store

pytestmark = pytest.mark.usefixtures("default_models")


def arbitrary_group(name: str) -> str:
    """An arbitrary, name-based labelling (no meaning): by the name's first letter."""
    first = name[0].upper()
    return "A-E" if first <= "E" else "F-L" if first <= "L" else "M-Z"


@pytest.fixture(scope="module")
def people(lfw_dir: Path) -> list[str]:
    """37 LFW people with exactly three photos (every 8th of them, alphabetically): 10, 12 and 15
    people in the three groups; one more person is copied but left unlabelled."""
    names = sorted(p.name for p in lfw_dir.iterdir() if len(list(p.glob("*.jpg"))) == 3)
    return [*names[::8], names[1]]


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = ("image", "group")) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def evaluation_set(tmp_path_factory: pytest.TempPathFactory, lfw_dir: Path, people: list[str]) -> Path:
    """images/<person>/<photo> for 38 people; labels.csv names the photos of the first 37."""
    root = tmp_path_factory.mktemp("demographics")
    for name in people:
        shutil.copytree(lfw_dir / name, root / "images" / name)
    rows = [
        {"image": f"{name}/{photo.name}", "group": arbitrary_group(name)}
        for name in people[:37]
        for photo in sorted((root / "images" / name).glob("*.jpg"))
    ]
    write_csv(root / "labels.csv", rows)
    return root


@pytest.fixture(scope="module")
def labels(evaluation_set: Path) -> Labels:
    return read_labels(evaluation_set / "labels.csv", evaluation_set / "images")


@pytest.fixture(scope="module")
def vectors(labels: Labels, tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Any]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), workers=1)
    return embed_all([r.path for r in labels.rows], settings)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def cli(data: Path, *args: str) -> Any:
    return CliRunner().invoke(app, [*args], env={"LETHE_DATA_DIR": str(data)})


def audit_entries(data: Path, action: str) -> list[dict[str, Any]]:
    result = cli(data, "audit", "list", "--action", action, "--json")
    assert result.exit_code == 0, result.output
    entries: list[dict[str, Any]] = json.loads(result.stdout)["entries"]
    return entries


def test_the_report_through_the_command_line(evaluation_set: Path, people: list[str], tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    with closing(Store(Settings(data_dir=data))) as store:
        assert pack_files(store, now=datetime.now(UTC)) == {}  # no report run yet: nothing for the pack
    result = cli(
        data,
        "eval", "groups", "--labels", str(evaluation_set / "labels.csv"),
        "--images", str(evaluation_set / "images"), "--threshold", "0.3", "--out", str(out),
        "--workers", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = csv_rows(evaluation_set / "labels.csv")
    groups = sorted({r["group"] for r in rows})

    # The groups are exactly the CSV's; every count is the CSV's.
    assert report["labels"]["groups"] == groups and list(report["groups"]) == groups
    assert report["labels"]["rows"] == len(rows) == 111
    assert report["labels"]["unlabelled_excluded"] == 3  # the 38th person's photos
    for group, g in report["groups"].items():
        photos = [r for r in rows if r["group"] == group]
        persons = {r["image"].split("/")[0] for r in photos}
        assert g["photos"] == len(photos) and g["people"] == len(persons)
        assert g["held_out"] == len(persons) // 2 and g["failure_to_enrol"] == 0
        # Every labelled photo is an enrolment or a search; each enrolled person has one in the gallery.
        assert g["enrolled"] + g["mated_searches"] + g["non_mated_searches"] == len(photos)
        assert g["mated_searches"] == 2 * g["enrolled"] and g["non_mated_searches"] == 3 * g["held_out"]
        assert g["measured"] and g["reason"] is None
    assert [g["people"] for g in report["groups"].values()] == [10, 12, 15]

    # The installation's operating threshold first, then the one asked for.
    assert [r["threshold"] for r in report["results"]] == [Settings().match_threshold, 0.3]
    for result_at in report["results"]:
        for group, rates in result_at["groups"].items():
            assert rates["fnir"]["n"] == report["groups"][group]["mated_searches"]
            assert rates["fpir"]["n"] == report["groups"][group]["non_mated_searches"]
            for rate in (rates["fnir"], rates["fpir"]):
                low, high = rate["ci95"]
                assert low <= rate["rate"] <= high and rate["rate"] == round(rate["errors"] / rate["n"], 6)
                assert rate["people"] <= rate["n"]
                if rate["errors"] in (0, rate["n"]):  # resampling people cannot vary it
                    assert rate["ci95_people"] is None
                else:
                    low, high = rate["ci95_people"]
                    assert low <= rate["rate"] <= high
        matrix = result_at["wrong_candidates_by_group"]
        assert list(matrix) == groups and all(list(row) == groups for row in matrix.values())
        for group, rates in result_at["groups"].items():
            assert rates["wrong_candidates"]["same_group"] == matrix[group][group]
            assert sum(rates["wrong_candidates"].values()) == sum(matrix[group].values())
    # A lower threshold returns more: FPIR can only grow, FNIR only fall.
    strict, loose = report["results"]
    for group in groups:
        assert loose["groups"][group]["fpir"]["errors"] >= strict["groups"][group]["fpir"]["errors"]
        assert loose["groups"][group]["fnir"]["errors"] <= strict["groups"][group]["fnir"]["errors"]

    # Written into the data folder and the --out folder, the same bytes; the pack takes the last one.
    saved = {name: (data / "reports" / name).read_bytes() for name in (JSON_NAME, HTML_NAME)}
    assert saved == {name: (out / name).read_bytes() for name in (JSON_NAME, HTML_NAME)}
    assert json.loads(saved[JSON_NAME]) == {k: v for k, v in report.items() if k != "files"}
    with closing(Store(Settings(data_dir=data))) as store:
        assert pack_files(store, now=datetime.now(UTC)) == saved
    page = saved[HTML_NAME].decode()
    assert "Groups are labels the operator supplied" in page and "Wilson" in page
    assert all(f"<td>{g}</td>" in page for g in groups)
    # No person's name and no file name in the report or the audit entry: counts and group labels only.
    audited = audit_entries(data, "report.demographic")
    assert len(audited) == 1
    details = audited[0]["details"]
    assert details["labelled_photos"] == 111 and details["unlabelled_excluded"] == 3
    assert details["groups"] == details["groups_measured"] == 3
    for text in (saved[JSON_NAME].decode(), page, json.dumps(details)):
        assert not [name for name in people if name in text]


def test_groups_come_from_the_labels_never_from_faces(
    labels: Labels, vectors: dict[Path, Any], evaluation_set: Path, tmp_path: Path
) -> None:
    """Renaming the groups in the CSV renames them in the report and changes nothing else: the split,
    the rates and the matrix follow the labels; no face decides a group."""
    threshold = Settings().match_threshold
    base = measure(labels, vectors, [threshold, 0.3])
    rename = {"A-E": "M-Z", "M-Z": "A-E", "F-L": "unstated"}
    rows = [{**r, "group": rename[r["group"]]} for r in csv_rows(evaluation_set / "labels.csv")]
    relabelled = read_labels(write_csv(tmp_path / "relabelled.csv", rows), evaluation_set / "images")
    moved = measure(relabelled, vectors, [threshold, 0.3])
    assert moved["labels"]["groups"] == sorted(rename.values())
    assert {p.identity: p.enrolled for p in split(labels, 0)} == {
        p.identity: p.enrolled for p in split(relabelled, 0)
    }
    for old, new in rename.items():
        assert moved["groups"][new] == base["groups"][old]
        for before, after in zip(base["results"], moved["results"], strict=True):
            assert after["groups"][new] == before["groups"][old]
            assert after["wrong_candidates_by_group"][new] == {
                rename[k]: v for k, v in before["wrong_candidates_by_group"][old].items()
            }
    # The split is deterministic for a seed, and the seed changes it.
    assert split(labels, 0) == split(labels, 0)
    assert split(labels, 0) != split(labels, 1)


def test_a_group_without_faces_shows_failure_to_acquire_and_fnir_one(
    evaluation_set: Path, fixtures_dir: Path, tmp_path: Path
) -> None:
    """Every photo of the M-Z people but their first becomes a photo with no face (a dog): each of
    the group's mated searches fails to acquire and counts as a miss, FNIR 1.0 with its interval."""
    images = tmp_path / "images"
    shutil.copytree(evaluation_set / "images", images)
    dog = (fixtures_dir / "no_face" / "dog.jpg").read_bytes()
    rows = csv_rows(evaluation_set / "labels.csv")
    replaced = [r for r in rows if r["group"] == "M-Z" and not r["image"].endswith("_0001.jpg")]
    for row in replaced:
        (images / row["image"]).write_bytes(dog)
    report = demographic_report(
        evaluation_set / "labels.csv", images, Settings(data_dir=tmp_path / "data", workers=1)
    )
    group = report["groups"]["M-Z"]
    fta = group["failure_to_acquire"]
    assert fta["mated"] + fta["non_mated"] == len(replaced) == 30
    assert fta["mated"] == group["mated_searches"] == 2 * group["enrolled"] > 0
    assert group["failure_to_enrol"] == 0  # each enrolled on the one photo with a face
    fnir = report["results"][0]["groups"]["M-Z"]["fnir"]
    assert fnir["rate"] == 1.0 and fnir["errors"] == fnir["n"] == group["mated_searches"]
    assert fnir["ci95"] == [round(wilson(fnir["n"], fnir["n"])[0], 6), 1.0]  # type: ignore[index]
    # No face: no false positive, still a non-mated search (the denominator keeps it).
    assert report["results"][0]["groups"]["M-Z"]["fpir"]["n"] == group["non_mated_searches"]
    for other in ("A-E", "F-L"):
        assert report["groups"][other]["failure_to_acquire"] == {"mated": 0, "non_mated": 0}
        assert report["results"][0]["groups"][other]["fnir"]["rate"] < 1.0
    assert report["results"][0]["differential"]["fnir"]["highest"] == "M-Z"


def test_a_group_with_too_few_people_is_listed_not_measured(labels: Labels, vectors: dict[Path, Any]) -> None:
    report = measure(labels, vectors, [0.3], min_identities=11)
    small = report["groups"]["A-E"]
    assert not small["measured"] and small["reason"] == "not measured (n < 11): 10 people"
    assert small["people"] == 10 and small["threshold_for_target_fpir"] is None
    rates = report["results"][0]["groups"]["A-E"]
    assert rates["fnir"]["rate"] is None and rates["fnir"]["ci95"] is None and rates["fnir"]["n"] == 10
    assert rates["fpir"]["rate"] is None and rates["fpir"]["ci95"] is None
    measured = report["results"][0]["all_measured_groups"]
    assert measured["fpir"]["n"] == sum(report["groups"][g]["non_mated_searches"] for g in ("F-L", "M-Z"))
    assert report["results"][0]["differential"]["fpir"]["highest"] in {"F-L", "M-Z", None}
    with pytest.raises(InputError, match="at least 2 people"):
        measure(labels, vectors, [0.3], min_identities=1)


def _run_expecting_refusal(data: Path, labels_csv: Path, images: Path, message: str) -> None:
    out = data.parent / "out"
    result = cli(
        data, "eval", "groups", "--labels", str(labels_csv), "--images", str(images),
        "--out", str(out), "--workers", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stdout == ""
    assert not out.exists() and not (data / "reports").exists()
    assert audit_entries(data, "report.demographic") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("unknown_column", "unknown column 'age'"),
        ("no_group_column", "no 'group' column"),
        ("missing_image", "1 photo(s) of labels.csv do not exist"),
        ("empty_group", "line 3: no group"),
        ("two_groups", "line 4: the person of line 2 in another group"),
        ("same_photo_twice", "line 5: the photo of line 2 again"),
    ],
)
def test_a_bad_labels_file_is_refused_and_nothing_is_written(
    evaluation_set: Path, tmp_path: Path, change: str, message: str
) -> None:
    rows = csv_rows(evaluation_set / "labels.csv")
    columns: tuple[str, ...] = ("image", "group")
    if change == "unknown_column":
        rows, columns = [{**r, "age": "40"} for r in rows], ("image", "group", "age")
    elif change == "no_group_column":
        rows, columns = [{"image": r["image"]} for r in rows], ("image",)
    elif change == "missing_image":
        rows[5] = {**rows[5], "image": "Nobody/Nobody_0001.jpg"}
    elif change == "empty_group":
        rows[1] = {**rows[1], "group": " "}
    elif change == "two_groups":
        rows[2] = {**rows[2], "group": "another"}
    else:
        rows[3] = dict(rows[0])
    labels_csv = write_csv(tmp_path / "labels.csv", rows, columns)
    _run_expecting_refusal(tmp_path / "data", labels_csv, evaluation_set / "images", message)


def test_identity_column_and_absolute_paths(evaluation_set: Path, tmp_path: Path) -> None:
    """The identity column overrides the folder; an absolute image path is taken as it is."""
    rows = csv_rows(evaluation_set / "labels.csv")[:6]
    absolute = [
        {
            "image": str(evaluation_set / "images" / r["image"]),
            "group": r["group"],
            "identity": "p" + str(i // 3),
        }
        for i, r in enumerate(rows)
    ]
    read = read_labels(write_csv(tmp_path / "l.csv", absolute, ("image", "group", "identity")), tmp_path)
    assert [r.identity for r in read.rows] == ["p0"] * 3 + ["p1"] * 3
    assert all(r.path.is_absolute() and r.path.is_file() for r in read.rows)
    assert read.unlabelled == 0  # nothing under tmp_path but the CSV


def test_wilson_interval() -> None:
    # Known values: 5 of 10 -> [0.2366, 0.7634]; 0 of 10 -> upper z^2 / (n + z^2) = 0.2775.
    low, high = wilson(5, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.23659, abs=1e-5) and high == pytest.approx(0.76341, abs=1e-5)
    low, high = wilson(0, 10)  # type: ignore[misc]
    assert low == 0.0 and high == pytest.approx(1.959964**2 / (10 + 1.959964**2), abs=1e-6)
    assert wilson(10, 10) == (pytest.approx(1 - 0.27753, abs=1e-5), 1.0)
    assert wilson(0, 0) is None
    for errors, n in [(1, 3), (7, 250), (249, 250), (40, 41)]:
        low, high = wilson(errors, n)  # type: ignore[misc]
        assert low <= errors / n <= high and high - low < 1


def test_the_interval_over_people_is_wider_when_a_persons_searches_go_together() -> None:
    """Ten searches each of five people, two of whom are always missed: 20 of 50 searches, but only
    five independent people. Wilson's interval over the searches is narrow; over people resampled
    it is wide, as it should be; both hold the rate, and the same seed gives the same interval."""
    people = {f"p{i}": (10 if i < 2 else 0, 10) for i in range(5)}
    rate = rate_with_intervals(people, seed=0)
    assert (rate["n"], rate["errors"], rate["people"], rate["rate"]) == (50, 20, 5, 0.4)
    (w_low, w_high), (p_low, p_high) = rate["ci95"], rate["ci95_people"]
    assert p_low <= 0.4 <= p_high and w_low <= 0.4 <= w_high
    assert p_high - p_low > 2 * (w_high - w_low)
    assert rate_with_intervals(people, seed=0) == rate
    assert rate_with_intervals({"a": (0, 3), "b": (0, 2)}, seed=0)["ci95_people"] is None
    assert rate_with_intervals({"a": (3, 3), "b": (2, 2)}, seed=0)["ci95_people"] is None
    # Independent searches (one each of 50 people): both intervals about the same width.
    spread = rate_with_intervals({f"p{i}": (int(i < 20), 1) for i in range(50)}, seed=0)
    width = spread["ci95_people"][1] - spread["ci95_people"][0]
    assert width == pytest.approx(spread["ci95"][1] - spread["ci95"][0], rel=0.3)


def test_the_differential_in_words() -> None:
    def rate(errors: int, n: int) -> dict[str, Any]:
        low, high = wilson(errors, n)  # type: ignore[misc]
        return {"n": n, "errors": errors, "rate": errors / n, "ci95": [low, high]}

    rates = {"a": {"fnir": rate(10, 100)}, "b": {"fnir": rate(2, 100)}, "c": {"fnir": rate(30, 100)}}
    told = differential(rates, {"a", "b", "c"}, "fnir", "a missed search", 0.5)
    assert told["ratio"] == 15.0 and (told["highest"], told["lowest"]) == ("c", "b")
    assert "15 times group b" in told["words"] and "do not overlap" in told["words"]
    close = differential(rates, {"a", "b"}, "fnir", "a missed search", 0.5)
    assert close["ratio"] == 5.0 and "overlap: at these sample sizes" in close["words"]
    rates["b"]["fnir"] = rate(0, 100)
    assert differential(rates, {"a", "b"}, "fnir", "a missed search", 0.5)["ratio"] is None
    assert "no finite ratio" in differential(rates, {"a", "b"}, "fnir", "a missed search", 0.5)["words"]
    assert differential(rates, {"a"}, "fnir", "x", 0.5)["words"].startswith("Fewer than two groups")


def test_an_operator_may_not_run_it(evaluation_set: Path, tmp_path: Path) -> None:
    """A report on the installation's fairness is the DPO's or an admin's (as the monitoring report)."""
    data = tmp_path / "data"
    assert cli(data, "user", "add", "otto", "--role", "operator", "--json").exit_code == 0
    result = cli(
        data, "--actor", "otto", "eval", "groups", "--labels", str(evaluation_set / "labels.csv"),
        "--images", str(evaluation_set / "images"), "--json",
    )  # fmt: skip
    assert result.exit_code == 4 and "does not hold the dpo role" in result.stderr
    assert not (data / "reports").exists()
