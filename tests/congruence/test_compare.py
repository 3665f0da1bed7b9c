"""The comparison helper itself: a different answer on one stack fails the comparison, an error
is an answer, scores agree within the tolerance and no further, and ids become what they name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lethe.errors import InputError, NotFoundError

from .compare import SCORE_TOLERANCE, Stack, compare


@pytest.fixture
def pair(tmp_path: Path) -> list[Stack]:
    """Two stacks without engines (the helper never touches them), with one face each under
    different ids."""
    no_engine: Any = None
    first = Stack("first", no_engine, tmp_path / "a" / "data", tmp_path / "photos")
    second = Stack("second", no_engine, tmp_path / "b" / "data", tmp_path / "photos")
    first.faces[1] = second.faces[7] = ("identities/x/1.jpg", (1, 2, 3, 4))
    return [first, second]


def test_different_answers_fail(pair: list[Stack]) -> None:
    names = iter(["a", "b"])
    with pytest.raises(AssertionError, match=r"first and second differ:\n\.: 'a' != 'b'"):
        compare(pair, lambda s: next(names))
    with pytest.raises(AssertionError, match=r"\.k\[1\]: 2 != 3"):
        compare(pair, lambda s: {"k": [1, 2 if s is pair[0] else 3]})
    with pytest.raises(AssertionError, match="only on the second"):
        compare(pair, lambda s: {} if s is pair[0] else {"extra": 1})
    with pytest.raises(AssertionError, match="1 items != 2 items"):
        compare(pair, lambda s: [1] if s is pair[0] else [1, 1])
    with pytest.raises(AssertionError, match="True != 1"):
        compare(pair, lambda s: True if s is pair[0] else 1)


def test_scores_agree_within_the_tolerance_only(pair: list[Stack]) -> None:
    assert compare(pair, lambda s: 0.5 if s is pair[0] else 0.5 + SCORE_TOLERANCE / 10) == 0.5
    with pytest.raises(AssertionError, match="beyond"):
        compare(pair, lambda s: 0.5 if s is pair[0] else 0.5 + SCORE_TOLERANCE * 3)


def test_an_error_is_an_answer(pair: list[Stack]) -> None:
    def refuse(error: type[Exception]) -> Any:
        def op(stack: Stack) -> Any:
            raise error(f"no face in {stack.data_dir}")

        return op

    assert compare(pair, refuse(NotFoundError)) == {"error": "NotFoundError: no face in <data>"}
    with pytest.raises(AssertionError, match="differ"):
        compare(pair, lambda s: 0 if s is pair[0] else refuse(NotFoundError)(s))
    with pytest.raises(AssertionError, match="differ"):
        compare(pair, lambda s: refuse(NotFoundError if s is pair[0] else InputError)(s))
    with pytest.raises(ZeroDivisionError):  # not a Lethe error: a bug, never an agreement
        compare(pair, lambda s: 1 / 0)


def test_ids_times_and_folders_are_made_neutral(pair: list[Stack]) -> None:
    def op(stack: Stack) -> dict[str, object]:
        face_id = next(iter(stack.faces))
        return {
            "face": stack.face(face_id),
            "at": datetime.now(UTC) if stack is pair[0] else datetime(2020, 1, 1, tzinfo=UTC).isoformat(),
            "file": stack.data_dir / "exports" / "x.json",
            "photo": str(stack.photos / "identities" / "x" / "1.jpg"),
        }

    assert compare(pair, op) == {
        "face": ["identities/x/1.jpg", [1, 2, 3, 4]],
        "at": "<time>",
        "file": "<data>/exports/x.json",
        "photo": "identities/x/1.jpg",
    }
    with pytest.raises(AssertionError, match="unknown face 1"):
        compare(pair, lambda s: s.face(1))
