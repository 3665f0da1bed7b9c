"""What to ingest: the files of a folder, or the rows of a CSV / JSONL manifest.

Every item is resolved inside its collection root: paths that escape it (``..``, absolute paths
elsewhere, symlinks pointing out) and URLs are refused per row, with a reason; the rest goes on.
Lethe never fetches anything from the network. Folders given as ``forbidden`` (Lethe's own, see
:mod:`lethe.ingest.roots`) are never walked into, and manifest rows pointing into them are refused.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from lethe.errors import ManifestError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm"}
)
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
PATH_KEYS = ("path", "image", "file")
#: A manifest line longer than this is refused (a JSONL row) or refuses the manifest (a CSV line):
#: memory stays bounded however the file is made (one 10 GB line, no newline at all).
MAX_LINE_CHARS = 256 * 1024


@dataclass(frozen=True, slots=True)
class InputItem:
    path: Path
    source_url: str | None = None
    captured_at: datetime | None = None
    caption: str | None = None
    #: The collection folder (or the manifest's) that ``path`` was found inside: the file is opened
    #: one folder at a time beneath it, so a folder swapped for a link later cannot lead out.
    root: Path | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class InputProblem:
    where: str
    reason: str


OWN_FOLDER = "inside a folder where Lethe keeps its own data (data, exports, keys): never ingested"


def is_inside(path: Path, forbidden: Sequence[Path]) -> bool:
    """Whether ``path`` (resolved) is one of the ``forbidden`` folders or inside one."""
    return any(path == folder or path.is_relative_to(folder) for folder in forbidden)


def iter_inputs(target: Path, forbidden: Sequence[Path] = ()) -> Iterator[InputItem | InputProblem]:
    """The items of a folder (walked), a manifest (its rows) or one photo file (by its suffix)."""
    if not target.exists():
        raise ManifestError(f"{target} does not exist")
    if target.is_dir():
        yield from _iter_folder(target, forbidden)
    elif target.suffix.lower() in MANIFEST_SUFFIXES:
        yield from _iter_manifest(target, forbidden)
    elif target.suffix.lower() in IMAGE_SUFFIXES:
        yield _single_file(target, forbidden)
    else:
        raise ManifestError(f"{target} is {NOT_AN_INPUT}")


#: What a target that is none of the three is.
NOT_AN_INPUT = (
    f"neither a folder, a .csv / .jsonl manifest nor a photo file ({', '.join(sorted(IMAGE_SUFFIXES))})"
)


def _single_file(path: Path, forbidden: Sequence[Path]) -> InputItem | InputProblem:
    """One photo named directly: read like a folder's file, beneath its own folder."""
    resolved = _resolve(path)
    if isinstance(resolved, str):
        return InputProblem(str(path), resolved)
    if forbidden and is_inside(resolved, forbidden):
        return InputProblem(str(path), OWN_FOLDER)
    return InputItem(path=resolved, root=resolved.parent)


def _iter_folder(root: Path, forbidden: Sequence[Path] = ()) -> Iterator[InputItem | InputProblem]:
    real_root = root.resolve()
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append, followlinks=False):
        while unreadable:  # a subfolder that cannot be listed is reported, not silently left out
            exc = unreadable.pop(0)
            yield InputProblem(str(exc.filename), f"cannot read folder: {exc.strerror or exc}")
        if forbidden and is_inside(Path(dirpath).resolve(), forbidden):
            yield InputProblem(dirpath, OWN_FOLDER)  # one report for the folder, nothing inside read
            dirnames.clear()
            continue
        dirnames.sort()
        for name in dirnames:
            link = Path(dirpath) / name
            if link.is_symlink():  # never followed; one that leads out of the collection is reported
                resolved = _resolve(link)
                if isinstance(resolved, str):
                    yield InputProblem(str(link), resolved)
                elif not resolved.is_relative_to(real_root):
                    yield InputProblem(str(link), "symbolic link to a folder outside the collection folder")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            resolved = _resolve(path)
            if isinstance(resolved, str):
                yield InputProblem(str(path), resolved)
                continue
            if not resolved.is_relative_to(real_root):
                yield InputProblem(str(path), "symbolic link points outside the collection folder")
                continue
            if forbidden and is_inside(resolved, forbidden):
                yield InputProblem(str(path), OWN_FOLDER)
                continue
            yield InputItem(path=resolved, root=real_root)
    for exc in unreadable:
        yield InputProblem(str(exc.filename), f"cannot read folder: {exc.strerror or exc}")


def _iter_manifest(manifest: Path, forbidden: Sequence[Path] = ()) -> Iterator[InputItem | InputProblem]:
    root = manifest.parent.resolve()
    try:
        with manifest.open("rb") as handle:
            head = handle.read(4096)
        # UTF-16 without a byte-order mark is "valid UTF-8" full of NUL characters: not the text meant.
        if head.count(b"\x00") * 4 >= len(head) > 0:
            raise ManifestError(f"{manifest} is not valid UTF-8 text (UTF-16?)")
        if manifest.suffix.lower() == ".csv":
            rows: Iterator[tuple[int, dict[str, object]]] = _csv_rows(manifest)
        else:
            rows = _jsonl_rows(manifest)
        for line, row in rows:
            item = _manifest_item(root, f"{manifest.name}:{line}", row)
            if isinstance(item, InputItem) and forbidden and is_inside(item.path, forbidden):
                item = InputProblem(f"{manifest.name}:{line}", OWN_FOLDER)
            yield item
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{manifest} is not valid UTF-8 text") from exc
    except csv.Error as exc:
        raise ManifestError(f"{manifest} is not a valid CSV file: {exc}") from exc
    except OSError as exc:
        raise ManifestError(f"cannot read {manifest}: {exc.strerror or exc}") from exc


def _bounded_lines(handle: TextIO) -> Iterator[str | None]:
    """The lines of ``handle``, read with a bounded buffer; ``None`` stands for a line longer than
    :data:`MAX_LINE_CHARS`, which is read and dropped chunk by chunk."""
    while line := handle.readline(MAX_LINE_CHARS + 1):
        if len(line) <= MAX_LINE_CHARS or line.endswith(("\n", "\r")):
            yield line
            continue
        while (rest := handle.readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
            pass
        yield None


def _csv_lines(handle: TextIO, manifest: Path) -> Iterator[str]:
    for number, line in enumerate(_bounded_lines(handle), start=1):
        if line is None:
            raise ManifestError(f"{manifest} line {number} is longer than {MAX_LINE_CHARS} characters")
        yield line


def _csv_rows(manifest: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(_csv_lines(handle, manifest))
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        if not fields & set(PATH_KEYS):
            raise ManifestError(
                f"{manifest} has no 'path' column (columns: path, source_url, captured_at, caption)"
            )
        for row in reader:
            yield reader.line_num, {(k or "").strip().lower(): v for k, v in row.items()}


def _jsonl_rows(manifest: Path) -> Iterator[tuple[int, dict[str, object]]]:
    # utf-8-sig: a byte-order mark (Windows editors) must not turn line 1 into "not valid JSON".
    with manifest.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(_bounded_lines(handle), start=1):
            if line is None:
                yield number, {"__error__": f"line is longer than {MAX_LINE_CHARS} characters"}
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                yield number, {"__error__": "not valid JSON"}
                continue
            if not isinstance(row, dict):
                yield number, {"__error__": "each line must be a JSON object"}
                continue
            yield number, {str(k).lower(): v for k, v in row.items()}


def _manifest_item(root: Path, where: str, row: dict[str, object]) -> InputItem | InputProblem:
    if "__error__" in row:
        return InputProblem(where, str(row["__error__"]))
    raw = next((row[k] for k in PATH_KEYS if row.get(k)), None)
    if not isinstance(raw, str) or not raw.strip():
        return InputProblem(where, "row has no image path")
    raw = raw.strip()
    if "://" in raw or raw.startswith(("data:", "//")):
        return InputProblem(where, "a URL where a file path is expected: Lethe never downloads images")
    path = _resolve(root / raw)
    if isinstance(path, str):
        return InputProblem(where, path)
    if not path.is_relative_to(root):
        return InputProblem(where, "path leaves the manifest's folder")
    source_url = _text(row.get("source_url") or row.get("url"))
    if source_url and not source_url.startswith(("http://", "https://")):
        return InputProblem(where, "source_url must be an http(s) URL")
    captured = _text(row.get("captured_at"))
    captured_at = None
    if captured:
        try:
            captured_at = datetime.fromisoformat(captured.replace("Z", "+00:00"))
        except ValueError:
            return InputProblem(where, f"captured_at {captured!r} is not an ISO 8601 date")
        # Naive times are taken as UTC; times with an offset are converted to UTC.
        captured_at = (
            captured_at.replace(tzinfo=UTC) if captured_at.tzinfo is None else captured_at.astimezone(UTC)
        )
    return InputItem(
        path=path,
        source_url=source_url,
        captured_at=captured_at,
        caption=_text(row.get("caption")),
        root=root,
    )


def _resolve(path: Path) -> Path | str:
    """The absolute path with every symlink followed, or the reason it cannot be resolved.

    Python 3.11's ``Path.resolve`` raises ``RuntimeError`` on a symlink loop and ``ValueError``
    on a NUL byte; either must be one bad item, not the end of the whole walk or manifest."""
    try:
        return path.resolve()
    except RuntimeError:
        return "symbolic link loop"
    except (OSError, ValueError) as exc:
        return f"path cannot be resolved: {exc}"


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
