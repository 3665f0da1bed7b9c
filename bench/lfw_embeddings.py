"""Every face of every LFW photo through Lethe's real pipeline, cached in an ``.npz`` (shared helper).

Usage: nice .venv/bin/python bench/lfw_embeddings.py [--data ../shared/data]
[--cache bench/.cache/lfw_faces.npz] [--workers 2] [--limit N] [--variants sface sface-flip onnx]

With ``--variants``, one detection pass feeds several embedders (``NAME`` or ``NAME-flip``), each
written to its own cache beside ``--cache`` (``lfw_faces_<variant>.npz``) with the key that the same
settings in the environment (``LETHE_EMBEDDER``, ``LETHE_EMBED_FLIP``) give, so later runs find it.

Other benchmarks call :func:`load_lfw_faces` (and :func:`face_like_distractors` for large
galleries). Each photo goes through ``build_pipeline(Settings())`` (default detector and embedder;
``data_dir`` is the cache folder, so the ONNX model cache lands there) as the ingest runs it. Per
face: the photo it came from, its box, its unit template, and whether it is the *central* face --
the face nearest the image centre, which is the person LFW labels the photo with. The cache is keyed
by a hash of the photo list (relative paths and sizes) and of the pipeline settings; it is
recomputed when the key differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import lethe
from lethe.config import Settings
from lethe.errors import LetheError
from lethe.imaging import decode_image
from lethe.pipeline import FacePipeline, build_embedder, build_pipeline
from lethe.types import EMBEDDING_DIM

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "lfw_faces.npz"
_PIPELINE: FacePipeline | None = None
_VARIANTS: list[FacePipeline] = []
_MAX_PIXELS = 0
_SCALARS = ("key", "errors", "compute_seconds")


@dataclass(frozen=True)
class LfwFaces:
    """Per photo: ``paths`` (relative, ``Person/Person_0001.jpg``), ``photo_person``. Per face (row =
    face id): ``image`` (row in ``paths``), ``person`` (the photo's label), ``is_central``,
    ``centre_dist`` (box centre to image centre, in image-diagonal units), ``boxes`` (left, top,
    right, bottom), ``templates`` (unit float32)."""

    key: str
    paths: npt.NDArray[np.str_]
    photo_person: npt.NDArray[np.str_]
    image: npt.NDArray[np.int32]
    person: npt.NDArray[np.str_]
    is_central: npt.NDArray[np.bool_]
    centre_dist: npt.NDArray[np.float32]
    boxes: npt.NDArray[np.int32]
    templates: npt.NDArray[np.float32]
    errors: int
    compute_seconds: float

    @property
    def faces(self) -> int:
        return int(self.templates.shape[0])

    def photos_without_face(self) -> npt.NDArray[np.int64]:
        """Rows of ``paths`` where the pipeline found no face."""
        return np.setdiff1d(np.arange(len(self.paths)), self.image)


def list_photos(lfw: Path) -> list[Path]:
    """Every ``.jpg`` under ``lfw/<Person>/``, sorted by (person folder, file name)."""
    return sorted((p for p in lfw.glob("*/*.jpg") if p.is_file()), key=lambda p: p.relative_to(lfw).parts)


def cache_key(lfw: Path, photos: list[Path], settings: Settings) -> str:
    h = hashlib.sha256()
    for p in photos:
        h.update(f"{p.relative_to(lfw).as_posix()}\t{p.stat().st_size}\n".encode())
    used = (
        "detector",
        "embedder",
        "detect_max_side_px",
        "min_face_px",
        "max_image_pixels",
        "yunet_model_path",
        "embed_flip",
    )
    config = {k: str(getattr(settings, k)) for k in used} | {"lethe": lethe.__version__}
    h.update(json.dumps(config, sort_keys=True).encode())
    return h.hexdigest()


def variant_settings(base: Settings, variant: str) -> Settings:
    """``base`` with the embedder (and flip) a variant name such as ``sface-flip`` names."""
    embedder, _, flip = variant.partition("-")
    return base.model_copy(update={"embedder": embedder, "embed_flip": flip == "flip"})


def _init(data_dir: str, variants: tuple[str, ...] = ()) -> None:
    global _PIPELINE, _MAX_PIXELS, _VARIANTS
    settings = Settings(data_dir=Path(data_dir))
    _PIPELINE, _MAX_PIXELS = build_pipeline(settings), settings.max_image_pixels
    _VARIANTS = [
        FacePipeline(_PIPELINE.detector, build_embedder(s), flip=s.embed_flip)
        for s in (variant_settings(settings, v) for v in variants)
    ]


Found = tuple[int, int, npt.NDArray[np.int32], list[npt.NDArray[np.float32]]]


def _faces_of(path: str) -> Found | None:
    """(width, height, boxes, templates per variant -- or the one pipeline's) of one photo;
    ``None`` when it cannot be decoded."""
    assert _PIPELINE is not None  # noqa: S101 - set by the pool initializer
    try:
        image = decode_image(Path(path).read_bytes(), max_pixels=_MAX_PIXELS)
    except (OSError, LetheError):
        return None
    if _VARIANTS:
        dets = sorted(_PIPELINE.detector.detect(image.pixels), key=lambda d: d.box.area, reverse=True)
        boxes = np.array([d.box.as_list() for d in dets], dtype=np.int32).reshape(-1, 4)
        per = [
            np.asarray(v.templates(image.pixels, dets), np.float32).reshape(-1, EMBEDDING_DIM)
            for v in _VARIANTS
        ]
        return image.width, image.height, boxes, per
    faces = _PIPELINE.faces(image.pixels)
    boxes = np.array([f.box.as_list() for f in faces], dtype=np.int32).reshape(-1, 4)
    vectors = np.array([f.embedding for f in faces], dtype=np.float32).reshape(-1, EMBEDDING_DIM)
    return image.width, image.height, boxes, [vectors]


def compute(
    lfw: Path,
    photos: list[Path],
    data_dir: Path,
    workers: int,
    keys: list[str],
    variants: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The cache arrays, one dict per variant (or one for the configured pipeline)."""
    base = Settings(data_dir=data_dir)
    for v in variants or ("",):  # prepare the derived graphs once, before the workers start
        build_embedder(variant_settings(base, v) if v else base)
    image_rows: list[int] = []
    central: list[bool] = []
    dists: list[float] = []
    boxes: list[npt.NDArray[np.int32]] = []
    vectors: list[list[npt.NDArray[np.float32]]] = [[] for _ in keys]
    errors, t0 = 0, time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    init = (str(data_dir), variants)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=init) as pool:
        results = pool.map(_faces_of, [str(p) for p in photos], chunksize=32)
        for row, result in enumerate(results):
            if (row + 1) % 1000 == 0:
                print(f"  {row + 1}/{len(photos)} photos, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            if result is None:
                errors += 1
                continue
            width, height, b, v = result
            if not len(b):
                continue
            centres = np.stack([(b[:, 0] + b[:, 2]) / 2 - width / 2, (b[:, 1] + b[:, 3]) / 2 - height / 2], 1)
            d = np.hypot(centres[:, 0], centres[:, 1]) / np.hypot(width, height)
            image_rows += [row] * len(b)
            central += [i == int(np.argmin(d)) for i in range(len(b))]
            dists += d.tolist()
            boxes.append(b)
            for kept, got in zip(vectors, v, strict=True):
                kept.append(got)
    people = [p.parent.name for p in photos]
    image = np.array(image_rows, dtype=np.int32)
    seconds = time.perf_counter() - t0
    return [
        _arrays(key, lfw, photos, people, image, central, dists, boxes, v, errors, seconds)
        for key, v in zip(keys, vectors, strict=True)
    ]


def _arrays(
    key: str,
    lfw: Path,
    photos: list[Path],
    people: list[str],
    image: npt.NDArray[np.int32],
    central: list[bool],
    dists: list[float],
    boxes: list[npt.NDArray[np.int32]],
    vectors: list[npt.NDArray[np.float32]],
    errors: int,
    seconds: float,
) -> dict[str, Any]:
    return {
        "key": np.array(key),
        "paths": np.array([p.relative_to(lfw).as_posix() for p in photos]),
        "photo_person": np.array(people),
        "image": image,
        "person": np.array(people)[image] if image.size else np.array([], dtype=str),
        "is_central": np.array(central, dtype=bool),
        "centre_dist": np.array(dists, dtype=np.float32),
        "boxes": np.concatenate(boxes) if boxes else np.zeros((0, 4), np.int32),
        "templates": np.concatenate(vectors) if vectors else np.zeros((0, EMBEDDING_DIM), np.float32),
        "errors": np.array(errors),
        "compute_seconds": np.array(seconds),
    }


def _read(cache: Path, key: str) -> dict[str, Any] | None:
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as npz:
            if str(npz["key"]) == key:
                return {name: npz[name] for name in npz.files}
        print(f"{cache}: key differs (other photos or settings); recomputing", file=sys.stderr)
    return None


def _write(cache: Path, arrays: dict[str, Any]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)


def _faces(arrays: dict[str, Any]) -> LfwFaces:
    return LfwFaces(
        key=str(arrays["key"]),
        errors=int(arrays["errors"]),
        compute_seconds=float(arrays["compute_seconds"]),
        **{name: arrays[name] for name in LfwFaces.__dataclass_fields__ if name not in _SCALARS},
    )


def _photos(data_dir: Path, limit: int | None) -> tuple[Path, list[Path]]:
    lfw = Path(data_dir).resolve() / "lfw"
    photos = list_photos(lfw)[:limit] if limit else list_photos(lfw)
    if not photos:
        raise FileNotFoundError(f"no photos under {lfw}")
    return lfw, photos


def load_lfw_faces(
    data_dir: Path, cache: Path = DEFAULT_CACHE, workers: int = 2, limit: int | None = None
) -> LfwFaces:
    """The faces of ``data_dir/lfw`` (the first ``limit`` photos when given), from ``cache`` when its
    key matches, else computed with ``workers`` processes and written there."""
    lfw, photos = _photos(data_dir, limit)
    cache = Path(cache)
    key = cache_key(lfw, photos, Settings(data_dir=cache.parent))
    arrays = _read(cache, key)
    if arrays is None:
        print(f"computing the faces of {len(photos)} photos with {workers} workers", file=sys.stderr)
        arrays = compute(lfw, photos, cache.parent, workers, [key])[0]
        _write(cache, arrays)
    return _faces(arrays)


def variant_cache(cache: Path, variant: str) -> Path:
    return Path(cache).with_name(f"lfw_faces_{variant}.npz")


def load_variants(
    data_dir: Path, cache: Path, variants: tuple[str, ...], workers: int = 2, limit: int | None = None
) -> dict[str, LfwFaces]:
    """Each variant's faces (one shared detection pass when any must be computed)."""
    lfw, photos = _photos(data_dir, limit)
    base = Settings(data_dir=Path(cache).parent)
    keys = [cache_key(lfw, photos, variant_settings(base, v)) for v in variants]
    found = [_read(variant_cache(cache, v), k) for v, k in zip(variants, keys, strict=True)]
    if any(a is None for a in found):
        print(f"computing {', '.join(variants)} for {len(photos)} photos, {workers} workers", file=sys.stderr)
        found = list(compute(lfw, photos, Path(cache).parent, workers, keys, variants))
        for v, arrays in zip(variants, found, strict=True):
            _write(variant_cache(cache, v), arrays)
    return {v: _faces(a) for v, a in zip(variants, found, strict=True) if a is not None}


def face_like_distractors(real: npt.NDArray[np.float32], n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """``n`` unit vectors drawn from a Gaussian with the mean and covariance of ``real`` templates:
    distractors that sit where faces sit (uniform random vectors in 128-D have no such structure)."""
    rng = np.random.default_rng(seed)
    mean, cov = real.mean(0, dtype=np.float64), np.cov(real, rowvar=False)
    chol = np.linalg.cholesky(cov + 1e-9 * np.eye(len(mean)))
    out = np.empty((n, len(mean)), dtype=np.float32)
    for s in range(0, n, 100_000):
        x = mean + rng.standard_normal((min(100_000, n - s), len(mean))) @ chol.T
        out[s : s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _gaussian(x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean and Cholesky factor of the covariance of the rows of ``x``."""
    cov = np.cov(x, rowvar=False)
    return x.mean(0), np.linalg.cholesky(cov + 1e-9 * np.eye(x.shape[1]))


def clustered_distractors(
    faces: LfwFaces, n: int, seed: int = 0, per_identity: int = 10
) -> npt.NDArray[np.float32]:
    """``n`` unit vectors from synthetic people with ``per_identity`` photos each, shaped like LFW's:
    identity centres drawn from a Gaussian fitted to the mean templates of the LFW people with >= 2
    central faces, photos = centre + a deviation drawn from the pooled within-person covariance
    (corrected for the sample means), re-normalised. Unlike :func:`face_like_distractors`, the
    gallery then has neighbourhoods -- several photos of one face -- as a real collection does."""
    rng = np.random.default_rng(seed)
    central = np.flatnonzero(faces.is_central)
    people, inverse, counts = np.unique(faces.person[central], return_inverse=True, return_counts=True)
    templates = faces.templates[central].astype(np.float64)
    sums = np.zeros((len(people), templates.shape[1]))
    np.add.at(sums, inverse, templates)
    means = sums / counts[:, None]
    several = counts >= 2
    keep = several[inverse]
    scale = np.sqrt(counts / np.maximum(counts - 1, 1))[inverse][keep, None]  # unbiased spread
    within = (templates[keep] - means[inverse][keep]) * scale
    centre_mean, centre_chol = _gaussian(means[several])
    _, within_chol = _gaussian(np.vstack([within, -within]))  # zero-mean by construction
    out = np.empty((n, templates.shape[1]), dtype=np.float32)
    done = 0
    while done < n:
        ids = min(10_000, -(-(n - done) // per_identity))
        centres = centre_mean + rng.standard_normal((ids, len(centre_mean))) @ centre_chol.T
        x = np.repeat(centres, per_identity, axis=0)
        x += rng.standard_normal(x.shape) @ within_chol.T
        x = x[: n - done]
        out[done : done + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        done += len(x)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding lfw/")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the .npz cache file")
    parser.add_argument("--workers", type=int, default=2, help="embedding processes")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (sorted)")
    parser.add_argument("--variants", nargs="*", default=(), help="embedders on one detection pass")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.variants:
        found = load_variants(args.data, args.cache, tuple(args.variants), args.workers, args.limit)
    else:
        found = {"configured": load_lfw_faces(args.data, args.cache, args.workers, args.limit)}
    for name, f in found.items():
        report(name, f, t0)
    return 0


def report(name: str, f: LfwFaces, t0: float) -> None:
    central = int(f.is_central.sum())
    print(
        f"{name}: {len(f.paths)} photos, {len(set(f.photo_person.tolist()))} people, {f.faces} faces "
        f"({central} central), {len(f.photos_without_face())} photos without a face, {f.errors} unreadable; "
        f"computed in {f.compute_seconds:.0f} s, loaded in {time.perf_counter() - t0:.1f} s; key {f.key[:12]}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
