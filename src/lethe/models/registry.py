"""Model files: pinned by sha256, downloaded atomically, or located in an installed package.

dlib's weights ship in the PyPI package ``face_recognition_models`` (no download at run time). The
optional YuNet detector is downloaded from the OpenCV Zoo on first use unless a path is given; the
download is checked against a pinned sha256 before it is moved into place.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lethe.errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    filename: str
    sha256: str
    size_bytes: int
    url: str | None
    licence: str


MODELS: dict[str, ModelSpec] = {
    "yunet": ModelSpec(
        name="yunet",
        filename="face_detection_yunet_2023mar.onnx",
        sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        size_bytes=232_589,
        url=(
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx"
        ),
        licence="MIT (OpenCV Zoo)",
    ),
}

#: dlib model files inside ``face_recognition_models`` (Davis King, CC0 / public domain weights).
DLIB_FILES = {
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def ensure_model(
    name: str,
    *,
    path: Path | None = None,
    cache_dir: Path | None = None,
    offline: bool = False,
    url: str | None = None,
) -> Path:
    """Return a verified local file for model ``name``.

    ``path`` wins when given (it must match the pinned hash). Otherwise the file is looked up in
    ``cache_dir`` and, unless ``offline``, downloaded from ``url`` (default: the registry's URL).
    """
    try:
        spec = MODELS[name]
    except KeyError as exc:
        raise ModelError(f"unknown model {name!r}") from exc
    if path is not None:
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        _verify(path, spec)
        return path
    if cache_dir is None:
        raise ModelError(f"no path and no cache folder for model {name}")
    target = cache_dir / spec.filename
    if target.is_file():
        _verify(target, spec)
        return target
    source = url or spec.url
    setting = f"LETHE_{name.upper()}_MODEL_PATH"
    if offline:
        raise ModelError(
            f"model {name} is not at {target} and downloads are off (LETHE_OFFLINE); "
            f"set {setting} to a local copy"
        )
    if source is None:
        raise ModelError(f"model {name} is not at {target} and has no download URL; set {setting}")
    _download(source, target, spec)
    return target


def _verify(path: Path, spec: ModelSpec) -> None:
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise ModelError(f"{path} has sha256 {actual}, expected {spec.sha256} for {spec.name}")


def _download(url: str, target: Path, spec: ModelSpec) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading model %s", spec.name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", dir=target.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            for block in iter(lambda: response.read(1 << 16), b""):
                size += len(block)
                if size > spec.size_bytes * 4:
                    raise ModelError(f"download of {spec.name} is larger than expected; aborted")
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            raise ModelError(
                f"download of {spec.name} has sha256 {digest.hexdigest()}, expected {spec.sha256}"
            )
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:  # ValueError: urllib's "unknown url type"
        raise ModelError(f"cannot download {spec.name}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
