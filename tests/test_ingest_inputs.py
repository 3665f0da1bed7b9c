"""Tests for lethe.ingest.inputs: folder walking and CSV / JSONL manifests, on real files in tmp_path."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lethe.errors import ManifestError
from lethe.ingest.inputs import MAX_LINE_CHARS, OWN_FOLDER, InputItem, InputProblem, iter_inputs


def touch(path: Path, data: bytes = b"not really an image") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def items(results: list[InputItem | InputProblem]) -> list[InputItem]:
    return [r for r in results if isinstance(r, InputItem)]


def problems(results: list[InputItem | InputProblem]) -> list[InputProblem]:
    return [r for r in results if isinstance(r, InputProblem)]


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, *rows: object) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- folders ---------------------------------------------------------------------------------


def test_folder_is_walked_recursively_in_sorted_order_keeping_only_image_suffixes(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    for rel in ["b.jpg", "a.PNG", "notes.txt", "README", "sub/c.jpeg", "sub/deeper/d.webp", "a_sub/e.gif"]:
        touch(root / rel)
    touch(root / "sub" / "data.json")

    results = list(iter_inputs(root))

    assert problems(results) == []
    # Each folder's files sorted, then its subfolders in sorted order (os.walk top-down).
    real = root.resolve()
    assert [i.path for i in items(results)] == [
        real / "a.PNG",
        real / "b.jpg",
        real / "a_sub" / "e.gif",
        real / "sub" / "c.jpeg",
        real / "sub" / "deeper" / "d.webp",
    ]
    assert all(i.source_url is None and i.captured_at is None and i.caption is None for i in items(results))


def test_folder_order_is_stable_across_walks(tmp_path: Path) -> None:
    root = tmp_path / "c"
    for name in ["z.jpg", "m.jpg", "a.jpg", "k/b.jpg", "c/y.jpg"]:
        touch(root / name)
    first = list(iter_inputs(root))
    assert first == list(iter_inputs(root))
    assert [i.path.name for i in items(first)] == ["a.jpg", "m.jpg", "z.jpg", "y.jpg", "b.jpg"]


def test_symlink_pointing_outside_the_folder_is_a_problem_and_the_walk_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    secret = touch(tmp_path / "outside" / "secret.jpg")
    touch(root / "a.jpg")
    (root / "link.jpg").symlink_to(secret)
    touch(root / "z.jpg")

    results = list(iter_inputs(root))

    assert [i.path.name for i in items(results)] == ["a.jpg", "z.jpg"]
    [problem] = problems(results)
    assert problem.where == str(root / "link.jpg")
    assert "outside" in problem.reason
    assert all(i.path != secret.resolve() for i in items(results))


def test_symlink_pointing_inside_the_folder_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    target = touch(root / "photos" / "real.jpg")
    (root / "alias.jpg").symlink_to(target)

    results = list(iter_inputs(root))

    assert problems(results) == []
    assert [i.path for i in items(results)] == [target.resolve(), target.resolve()]


def test_symlink_loop_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    root.mkdir()
    (root / "a.jpg").symlink_to(root / "b.jpg")
    (root / "b.jpg").symlink_to(root / "a.jpg")
    touch(root / "c.jpg")

    results = list(iter_inputs(root))

    assert [i.path.name for i in items(results)] == ["c.jpg"]
    assert [p.where for p in problems(results)] == [str(root / "a.jpg"), str(root / "b.jpg")]
    assert all("loop" in p.reason for p in problems(results))


def test_a_folder_link_out_of_the_collection_is_a_problem_and_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    touch(tmp_path / "outside" / "secret.jpg")
    touch(root / "inside" / "a.jpg")
    (root / "door").symlink_to(tmp_path / "outside")
    (root / "alias").symlink_to(root / "inside")  # inside: not followed, its photos come from inside/
    (root / "loop").symlink_to(root / "loop")

    results = list(iter_inputs(root))

    assert [i.path.name for i in items(results)] == ["a.jpg"]
    assert [(p.where, p.reason) for p in problems(results)] == [
        (str(root / "door"), "symbolic link to a folder outside the collection folder"),
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder whatever its mode")
def test_a_subfolder_that_cannot_be_read_is_a_problem_not_silently_skipped(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    touch(root / "a.jpg")
    touch(root / "locked" / "b.jpg")
    (root / "locked").chmod(0)
    try:
        results = list(iter_inputs(root))
    finally:
        (root / "locked").chmod(0o700)
    assert [i.path.name for i in items(results)] == ["a.jpg"]
    [problem] = problems(results)
    assert problem.where == str(root / "locked") and problem.reason.startswith("cannot read folder")


def test_empty_folder_yields_nothing(tmp_path: Path) -> None:
    assert list(iter_inputs(tmp_path)) == []


# --- manifests: good rows --------------------------------------------------------------------


def test_csv_manifest_rows_resolve_against_the_manifest_folder(tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    manifest = write_csv(
        folder / "manifest.csv",
        "path,source_url,captured_at,caption",
        "photos/a.jpg,https://example.org/a,2024-05-01T10:00:00,Opening talk",
        "b.jpg,,,",
    )

    results = list(iter_inputs(manifest))

    assert problems(results) == []
    a, b = items(results)
    assert a == InputItem(
        path=folder.resolve() / "photos" / "a.jpg",
        source_url="https://example.org/a",
        captured_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        caption="Opening talk",
    )
    assert b == InputItem(path=folder.resolve() / "b.jpg")


def test_jsonl_manifest_rows(tmp_path: Path) -> None:
    manifest = write_jsonl(
        tmp_path / "m.jsonl",
        {"path": "x/one.png", "source_url": "http://example.org/1", "caption": "  padded  "},
        "",
        {"Path": "two.jpg", "captured_at": "2024-01-02"},
    )

    [one, two] = list(iter_inputs(manifest))

    assert one == InputItem(
        path=tmp_path.resolve() / "x" / "one.png", source_url="http://example.org/1", caption="padded"
    )
    assert two == InputItem(path=tmp_path.resolve() / "two.jpg", captured_at=datetime(2024, 1, 2, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01T10:00:00+00:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01T12:30:00+02:00", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T05:00:00-05:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01 10:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_captured_at_becomes_aware_utc(tmp_path: Path, text: str, expected_utc: datetime) -> None:
    manifest = write_jsonl(tmp_path / "m.jsonl", {"path": "a.jpg", "captured_at": text})

    [item] = list(iter_inputs(manifest))

    assert isinstance(item, InputItem)
    assert item.captured_at == expected_utc
    assert item.captured_at is not None and item.captured_at.tzinfo is UTC


def test_csv_column_names_are_case_and_space_insensitive_with_aliases(tmp_path: Path) -> None:
    manifest = write_csv(tmp_path / "m.csv", " Image , URL ,Caption", "a.jpg,https://example.org/a,hello")

    [item] = list(iter_inputs(manifest))

    assert item == InputItem(
        path=tmp_path.resolve() / "a.jpg", source_url="https://example.org/a", caption="hello"
    )


def test_csv_with_byte_order_mark_is_read(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(b"\xef\xbb\xbfpath\na.jpg\n")
    assert list(iter_inputs(manifest)) == [InputItem(path=tmp_path.resolve() / "a.jpg")]


def test_jsonl_with_byte_order_mark_is_read(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'\xef\xbb\xbf{"path": "a.jpg"}\n')
    assert list(iter_inputs(manifest)) == [InputItem(path=tmp_path.resolve() / "a.jpg")]


# --- manifests: per-row problems -------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason_part"),
    [
        ({"path": "http://example.org/a.jpg"}, "URL"),
        ({"path": "https://example.org/a.jpg"}, "URL"),
        ({"path": "file:///etc/passwd"}, "URL"),
        ({"path": "../x.jpg"}, "leaves"),
        ({"path": "sub/../../x.jpg"}, "leaves"),
        ({"path": "/etc/passwd"}, "leaves"),
        ({"path": "a.jpg", "captured_at": "yesterday"}, "ISO 8601"),
        ({"path": "a.jpg", "captured_at": "2024-13-01"}, "ISO 8601"),
        ({"path": "a.jpg", "source_url": "ftp://example.org/a.jpg"}, "http"),
        ({"path": "a.jpg", "source_url": "javascript:alert(1)"}, "http"),
        ({"caption": "no path at all"}, "no image path"),
        ({"path": "   "}, "no image path"),
        ({"path": 42}, "no image path"),
        ({"path": "bad\u0000name.jpg"}, "resolved"),
    ],
)
def test_bad_jsonl_row_is_a_problem_and_the_rest_goes_on(
    tmp_path: Path, row: dict[str, object], reason_part: str
) -> None:
    manifest = write_jsonl(tmp_path / "m.jsonl", {"path": "first.jpg"}, row, {"path": "last.jpg"})

    results = list(iter_inputs(manifest))

    assert [i.path.name for i in items(results)] == ["first.jpg", "last.jpg"]
    [problem] = problems(results)
    assert problem.where == "m.jsonl:2"
    assert reason_part in problem.reason


def test_bad_csv_rows_are_problems_with_line_numbers(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jpg"
    folder = tmp_path / "manifest_dir"
    folder.mkdir()
    manifest = write_csv(
        folder / "list.csv",
        "path,source_url,captured_at,caption",
        "ok1.jpg,,,",
        "https://example.org/a.jpg,,,",
        "../x.jpg,,,",
        f"{outside},,,",
        "ok2.jpg,,not-a-date,",
        "ok3.jpg,mailto:me@example.org,,",
        ",https://example.org/b,,",
        "ok4.jpg,,,",
    )

    results = list(iter_inputs(manifest))

    assert [i.path.name for i in items(results)] == ["ok1.jpg", "ok4.jpg"]
    assert [p.where for p in problems(results)] == [f"list.csv:{n}" for n in range(3, 9)]
    reasons = [p.reason for p in problems(results)]
    assert "URL" in reasons[0]
    assert "leaves" in reasons[1] and "leaves" in reasons[2]
    assert "ISO 8601" in reasons[3]
    assert "http" in reasons[4]
    assert reasons[5] == "row has no image path"


def test_manifest_path_through_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    touch(tmp_path / "outside" / "secret.jpg")
    (folder / "door").symlink_to(tmp_path / "outside")
    manifest = write_jsonl(folder / "m.jsonl", {"path": "door/secret.jpg"})

    [problem] = list(iter_inputs(manifest))

    assert isinstance(problem, InputProblem)
    assert "leaves" in problem.reason


def test_jsonl_lines_that_are_not_json_objects_are_problems(tmp_path: Path) -> None:
    manifest = write_jsonl(
        tmp_path / "m.jsonl",
        {"path": "a.jpg"},
        "{not json",
        '["a.jpg"]',
        '"a.jpg"',
        "null",
        {"path": "b.jpg"},
    )

    results = list(iter_inputs(manifest))

    assert [i.path.name for i in items(results)] == ["a.jpg", "b.jpg"]
    assert [(p.where, p.reason) for p in problems(results)] == [
        ("m.jsonl:2", "not valid JSON"),
        ("m.jsonl:3", "each line must be a JSON object"),
        ("m.jsonl:4", "each line must be a JSON object"),
        ("m.jsonl:5", "each line must be a JSON object"),
    ]


# --- whole-manifest errors -------------------------------------------------------------------


def test_missing_target_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        list(iter_inputs(tmp_path / "nope.csv"))
    with pytest.raises(ManifestError, match="does not exist"):
        list(iter_inputs(tmp_path / "no_folder"))


@pytest.mark.parametrize("name", ["list.txt", "list.json", "noext"])
def test_unsupported_suffix_is_a_manifest_error(tmp_path: Path, name: str) -> None:
    target = touch(tmp_path / name, b"path\na.jpg\n")
    with pytest.raises(ManifestError, match=r"\.csv / \.jsonl manifest nor a photo file"):
        list(iter_inputs(target))


@pytest.mark.parametrize("name", ["photo.jpg", "face.PGM", "face.ppm"])
def test_one_photo_file_is_one_item_read_beneath_its_own_folder(tmp_path: Path, name: str) -> None:
    """The newcomer review: a path to one .jpg was accepted, then the job failed ("neither a folder
    nor a manifest"). One photo file is now ingested alone."""
    target = touch(tmp_path / "album" / name)

    assert list(iter_inputs(target)) == [InputItem(path=target.resolve(), root=target.parent.resolve())]
    assert list(iter_inputs(target, forbidden=[tmp_path / "album"])) == [
        InputProblem(str(target), OWN_FOLDER)
    ]


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl"])
def test_manifest_that_is_not_utf8_is_a_manifest_error(tmp_path: Path, name: str) -> None:
    body = b"path\n\xff\xfe\xfa.jpg\n" if name.endswith(".csv") else b'{"path": "\xff\xfe.jpg"}\n'
    manifest = touch(tmp_path / name, body)
    with pytest.raises(ManifestError, match="UTF-8"):
        list(iter_inputs(manifest))


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("m.csv", "path\na.jpg\n".encode("utf-16")),  # with its byte-order mark
        ("m.jsonl", '{"path": "a.jpg"}\n'.encode("utf-16-le")),
        ("m.csv", "path\ncaf\xe9.jpg\n".encode("latin-1")),
    ],
)
def test_manifests_in_other_encodings_are_refused_naming_utf8(tmp_path: Path, name: str, body: bytes) -> None:
    with pytest.raises(ManifestError, match="UTF-8"):
        list(iter_inputs(touch(tmp_path / name, body)))


def test_a_nul_byte_in_a_csv_path_is_a_problem_for_that_row(tmp_path: Path) -> None:
    manifest = touch(tmp_path / "m.csv", b"path\nfirst.jpg\nbad\x00name.jpg\nlast.jpg\n")
    results = list(iter_inputs(manifest))
    assert [i.path.name for i in items(results)] == ["first.jpg", "last.jpg"]
    [problem] = problems(results)
    assert problem.where == "m.csv:3" and "resolved" in problem.reason


def test_an_overlong_csv_line_refuses_the_manifest_without_reading_it_whole(tmp_path: Path) -> None:
    manifest = touch(tmp_path / "m.csv", b"path\nok.jpg\n" + b"x" * (MAX_LINE_CHARS * 3) + b"\n")
    with pytest.raises(ManifestError, match=f"line 3 is longer than {MAX_LINE_CHARS} characters"):
        list(iter_inputs(manifest))


def test_an_overlong_jsonl_line_is_a_problem_and_the_rest_goes_on(tmp_path: Path) -> None:
    long_row = json.dumps({"path": "a.jpg", "caption": "x" * MAX_LINE_CHARS})
    manifest = write_jsonl(tmp_path / "m.jsonl", {"path": "first.jpg"}, long_row, {"path": "last.jpg"})
    results = list(iter_inputs(manifest))
    assert [i.path.name for i in items(results)] == ["first.jpg", "last.jpg"]
    assert [(p.where, p.reason) for p in problems(results)] == [
        ("m.jsonl:2", f"line is longer than {MAX_LINE_CHARS} characters")
    ]


def test_csv_without_a_path_column_is_a_manifest_error(tmp_path: Path) -> None:
    manifest = write_csv(tmp_path / "m.csv", "filename,caption", "a.jpg,hello")
    with pytest.raises(ManifestError, match="no 'path' column"):
        list(iter_inputs(manifest))


def test_empty_csv_is_a_manifest_error(tmp_path: Path) -> None:
    manifest = touch(tmp_path / "m.csv", b"")
    with pytest.raises(ManifestError, match="no 'path' column"):
        list(iter_inputs(manifest))


def test_empty_jsonl_yields_nothing(tmp_path: Path) -> None:
    manifest = touch(tmp_path / "m.jsonl", b"\n\n")
    assert list(iter_inputs(manifest)) == []
