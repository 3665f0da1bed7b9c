"""The one helper of the congruence suite: run an operation on both stacks, then compare.

:func:`compare` runs ``op(stack)`` on the embedded stack and on the scale stack, turns each answer
into a stack-neutral form and asserts the two forms are equal. An answer is either a value or a
:class:`~lethe.errors.LetheError` (recorded as its class and message, so "both refuse the same way"
is an answer too). Any other exception propagates: a bug in the test must not look like agreement.

Stack-neutral means: a face id becomes the face it names (photo path relative to the input folder
and box), an image id its photo path, the data folder ``<data>``, a timestamp ``<time>``. Ids are
compared as ids only where a test says so (``test_ingest_search.py``), so that one difference is
reported once and does not hide every other comparison.

Floats are equal within :data:`SCORE_TOLERANCE`. The scores are inner products of L2-normalised
float32 SFace embeddings (128-D): FAISS computes them with its own SIMD/BLAS kernels, Milvus with
knowhere's, summing in a different order. Each product carries a float32 rounding error of at
most about ``128 * 2**-24 ≈ 8e-6``; on the fixtures the largest difference measured was 1.2e-7
(one float32 step at 1.0). So 1e-5 allows the arithmetic and nothing else: a different vector or
a lost normalisation moves a score far more, and Milvus's quantised IVF_SQ8 index in place of the
exact one moved the fixtures' scores by 2e-5 to 7e-4, which this tolerance fails.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lethe.engine import Lethe
from lethe.errors import LetheError

SCORE_TOLERANCE = 1e-5

_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")


@dataclass(eq=False)
class Stack:
    """One engine under comparison, with what its ids mean (filled in after the ingest)."""

    name: str
    lethe: Lethe
    data_dir: Path
    photos: Path  #: the folder that was ingested: photo paths are given relative to it
    faces: dict[int, tuple[str, tuple[int, ...]]] = field(default_factory=dict)  #: id -> (photo, box)
    images: dict[int, str] = field(default_factory=dict)  #: image id -> photo
    indexed: list[int] = field(default_factory=list)  #: the index's face ids after the ingest

    def photo(self, uri: str) -> str:
        path = Path(uri)
        return str(path.relative_to(self.photos)) if path.is_relative_to(self.photos) else uri

    def face(self, face_id: int) -> object:
        """The face an id names, or the id marked unknown (an id this stack never had)."""
        return self.faces.get(int(face_id), f"<unknown face {face_id}>")

    def image(self, image_id: int) -> object:
        return self.images.get(int(image_id), f"<unknown image {image_id}>")

    def neutral(self, value: Any) -> Any:
        """Timestamps, the data folder, the photos folder and the index's generation id (random at
        each save, a name rather than a content) made stack-neutral, recursively."""
        if isinstance(value, datetime):
            return "<time>"
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, str):
            if _ISO_TIME.match(value):
                return "<time>"
            return value.replace(str(self.data_dir), "<data>").replace(str(self.photos) + "/", "")
        if isinstance(value, Mapping):
            return {
                k: "<generation>" if k == "index_generation" and isinstance(v, str) else self.neutral(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.neutral(v) for v in value]
        return value


@dataclass(frozen=True)
class Outcome:
    """What an operation answered on one stack: a value, or the Lethe error it raised."""

    value: Any = None
    error: str | None = None  #: "ClassName: message"


def run_both(stacks: Sequence[Stack], op: Callable[[Stack], Any]) -> list[Outcome]:
    """Run ``op`` on every stack, in order; a :class:`LetheError` is an answer, recorded."""
    outcomes = []
    for stack in stacks:
        try:
            outcomes.append(Outcome(value=op(stack)))
        except LetheError as exc:
            outcomes.append(Outcome(error=f"{type(exc).__name__}: {stack.neutral(str(exc))}"))
    return outcomes


def differences(a: Any, b: Any, where: str = "") -> Iterator[str]:
    """Where ``a`` and ``b`` differ: floats within :data:`SCORE_TOLERANCE`, all else exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        if type(a) is not type(b) or a != b:
            yield f"{where or '.'}: {a!r} != {b!r}"
        return
    if not isinstance(a, int | float):
        pass
    elif isinstance(b, int | float) and (isinstance(a, float) or isinstance(b, float)):
        if not math.isclose(a, b, rel_tol=0.0, abs_tol=SCORE_TOLERANCE):
            yield f"{where or '.'}: {a!r} != {b!r} (beyond {SCORE_TOLERANCE})"
        return
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                yield f"{where}.{key}: only on {'the first' if key in a else 'the second'}"
            else:
                yield from differences(a[key], b[key], f"{where}.{key}")
        return
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            yield f"{where or '.'}: {len(a)} items != {len(b)} items ({a!r} != {b!r})"
            return
        for number, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from differences(x, y, f"{where}[{number}]")
        return
    if a != b:
        yield f"{where or '.'}: {a!r} != {b!r}"


def assert_same(
    stacks: Sequence[Stack],
    outcomes: Sequence[Outcome],
    normalise: Callable[[Stack, Any], Any] | None = None,
) -> list[Any]:
    """Assert both outcomes are the same answer once made stack-neutral; returns the neutral forms
    (a value, or ``{"error": ...}``), for the test's own assertions about what that answer is."""
    forms: list[Any] = []
    for stack, outcome in zip(stacks, outcomes, strict=True):
        if outcome.error is not None:
            forms.append({"error": outcome.error})
        else:
            value = outcome.value if normalise is None else normalise(stack, outcome.value)
            forms.append(stack.neutral(value))
    found = list(differences(forms[0], forms[1]))
    assert not found, f"{stacks[0].name} and {stacks[1].name} differ:\n" + "\n".join(found[:40])
    return forms


def compare(
    stacks: Sequence[Stack],
    op: Callable[[Stack], Any],
    normalise: Callable[[Stack, Any], Any] | None = None,
) -> Any:
    """Run ``op`` on both stacks and assert the same answer; returns it (stack-neutral)."""
    return assert_same(stacks, run_both(stacks, op), normalise)[0]
