"""LFW View 2 verification accuracy, the standard way: 10 folds of ``pairs.txt``, the threshold
chosen on 9 folds and tested on the 10th. A pair whose photo yields no face counts as an error.

The face of an LFW photo is the one nearest the image centre (the photos are centred on the person).
Besides the 10-fold accuracy, the pooled scores of all 6,000 pairs give the ROC: TAR at FAR 1e-3 and a
ROC/DET plot (``plot_roc_det``, needs matplotlib: ``pip install 'lethe[plots]'``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lethe.config import Settings
from lethe.errors import ConfigError, InputError, ModelError
from lethe.imaging import decode_image
from lethe.pipeline import FacePipeline, build_pipeline


@dataclass(frozen=True, slots=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int


@dataclass(frozen=True, slots=True)
class EvalResult:
    accuracy: float
    std: float
    folds: int
    fold_accuracies: list[float]
    thresholds: list[float]
    detection_failures: int
    pairs: int
    images: int
    scores: np.ndarray
    labels: np.ndarray

    @property
    def tar_at_far_1e3(self) -> tuple[float, float]:
        """(TAR, threshold) at FAR 0.001 over the pooled pairs."""
        return tar_at_far(self.scores, self.labels, 1e-3)

    def as_dict(self) -> dict[str, object]:
        tar, threshold = self.tar_at_far_1e3
        return {
            "accuracy": round(self.accuracy, 6),
            "std": round(self.std, 6),
            "folds": self.folds,
            "detection_failures": self.detection_failures,
            "pairs": self.pairs,
            "images": self.images,
            "fold_accuracies": [round(a, 6) for a in self.fold_accuracies],
            "thresholds": [round(t, 6) for t in self.thresholds],
            "tar_at_far_1e-3": round(tar, 6),
            "threshold_at_far_1e-3": round(threshold, 6),
        }


def _lfw_path(root: Path, name: str, number: str) -> Path:
    return root / name / f"{name}_{int(number):04d}.jpg"


def read_pairs(data: Path) -> list[Pair]:
    """Parse ``lfw_protocol/pairs.txt`` (header: folds and pairs per class)."""
    lfw, protocol = data / "lfw", data / "lfw_protocol" / "pairs.txt"
    try:
        lines = protocol.read_text().split("\n")
        folds, per_class = (int(x) for x in lines[0].split())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the LFW protocol file {protocol}") from exc
    pairs: list[Pair] = []
    for index, line in enumerate(line for line in lines[1:] if line.strip()):
        fold = index // (2 * per_class)
        parts = line.split()
        if len(parts) == 3:
            pairs.append(
                Pair(_lfw_path(lfw, parts[0], parts[1]), _lfw_path(lfw, parts[0], parts[2]), True, fold)
            )
        elif len(parts) == 4:
            pairs.append(
                Pair(_lfw_path(lfw, parts[0], parts[1]), _lfw_path(lfw, parts[2], parts[3]), False, fold)
            )
        else:
            raise InputError(f"{protocol}: line {index + 2} is not a pair")
    if len(pairs) != folds * per_class * 2:
        raise InputError(f"{protocol}: expected {folds * per_class * 2} pairs, found {len(pairs)}")
    missing = sorted({str(p) for pair in pairs for p in (pair.a, pair.b) if not p.is_file()})
    if missing:
        raise InputError(f"{len(missing)} photos of the protocol are missing, e.g. {missing[0]}")
    return pairs


def central_face(pipeline: FacePipeline, path: Path, max_pixels: int) -> np.ndarray | None:
    image = decode_image(path.read_bytes(), max_pixels=max_pixels)
    faces = pipeline.faces(image.pixels)
    if not faces:
        return None
    cx, cy = image.width / 2, image.height / 2

    def distance(face: object) -> float:
        box = face.box  # type: ignore[attr-defined]
        return float(((box.left + box.right) / 2 - cx) ** 2 + ((box.top + box.bottom) / 2 - cy) ** 2)

    return min(faces, key=distance).embedding


_PIPELINE: FacePipeline | None = None
_MAX_PIXELS = 0


def _init(settings: Settings) -> None:
    global _PIPELINE, _MAX_PIXELS
    _PIPELINE = build_pipeline(settings)
    _MAX_PIXELS = settings.max_image_pixels


def _embed(path: Path) -> np.ndarray | None:
    if _PIPELINE is None:
        raise ModelError("evaluation worker not initialised: its pipeline was never built")
    return central_face(_PIPELINE, path, _MAX_PIXELS)


def embed_all(
    paths: Iterable[Path],
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
) -> dict[Path, np.ndarray | None]:
    """The central face's template of every photo (None where no face is found)."""
    todo = sorted(set(paths))
    out: dict[Path, np.ndarray | None] = {}
    if settings.workers <= 1:
        _init(settings)
        results: Iterable[np.ndarray | None] = map(_embed, todo)
        for done, (path, vector) in enumerate(zip(todo, results, strict=True), start=1):
            out[path] = vector
            if progress:
                progress(done, len(todo))
        return out
    build_pipeline(settings)  # convert/cache the model once before the workers start
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        settings.workers, mp_context=context, initializer=_init, initargs=(settings,)
    ) as pool:
        for done, (path, vector) in enumerate(
            zip(todo, pool.map(_embed, todo, chunksize=16), strict=True), 1
        ):
            out[path] = vector
            if progress:
                progress(done, len(todo))
    return out


def _best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold of best training accuracy, placed midway between neighbouring scores."""
    order = np.argsort(scores)
    ordered, same = scores[order], labels[order].astype(np.int64)
    # Threshold below position i: pairs 0..i-1 predicted different, i.. predicted same.
    correct_below = np.concatenate([[0], np.cumsum(1 - same)])
    correct_above = np.concatenate([np.cumsum(same[::-1])[::-1], [0]])
    best = int(np.argmax(correct_below + correct_above))
    if best == 0:
        return float(ordered[0]) - 1e-6
    if best == len(ordered):
        return float(ordered[-1]) + 1e-6
    return float((ordered[best - 1] + ordered[best]) / 2)


def evaluate(pairs: list[Pair], vectors: dict[Path, np.ndarray | None]) -> EvalResult:
    """10-fold protocol; a pair with a missing face is always counted as wrong."""
    scores = np.empty(len(pairs), dtype=np.float64)
    labels = np.array([p.same for p in pairs])
    failed = np.zeros(len(pairs), dtype=bool)
    for i, pair in enumerate(pairs):
        va, vb = vectors.get(pair.a), vectors.get(pair.b)
        if va is None or vb is None:
            failed[i] = True
            scores[i] = np.nan
        else:
            scores[i] = float(np.dot(va, vb))
    folds = np.array([p.fold for p in pairs])
    accuracies, thresholds = [], []
    for fold in sorted(set(folds.tolist())):
        train = (folds != fold) & ~failed
        threshold = _best_threshold(scores[train], labels[train])
        test = folds == fold
        predicted = np.where(failed[test], ~labels[test], scores[test] >= threshold)
        accuracies.append(float((predicted == labels[test]).mean()))
        thresholds.append(threshold)
    return EvalResult(
        accuracy=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
        folds=len(accuracies),
        fold_accuracies=accuracies,
        thresholds=thresholds,
        detection_failures=sum(1 for v in vectors.values() if v is None),
        pairs=len(pairs),
        images=len(vectors),
        scores=scores,
        labels=labels,
    )


def evaluate_lfw(
    data: Path,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    pairs = read_pairs(data)
    vectors = embed_all([p for pair in pairs for p in (pair.a, pair.b)], settings, progress)
    return evaluate(pairs, vectors)


def _accept_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Genuine and impostor scores, best first; a failed pair (NaN) is never accepted."""
    finite = np.where(np.isnan(scores), -np.inf, scores)
    genuine = np.sort(finite[labels.astype(bool)])[::-1]
    impostor = np.sort(finite[~labels.astype(bool)])[::-1]
    return genuine, impostor, len(genuine), len(impostor)


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> tuple[float, float]:
    """True accept rate at the lowest threshold whose false accept rate is at most ``far``
    (accept means score >= threshold), and that threshold."""
    genuine, impostor, n_genuine, n_impostor = _accept_rates(scores, labels)
    if not n_genuine or not n_impostor:
        raise InputError("TAR at FAR needs both genuine and impostor pairs")
    allowed = int(np.floor(far * n_impostor + 1e-9))
    if allowed >= n_impostor or not np.isfinite(impostor[allowed]):
        threshold = float(np.nextafter(impostor[-1], -np.inf)) if np.isfinite(impostor[-1]) else -1.0
    else:
        threshold = float(np.nextafter(impostor[allowed], np.inf))
    return float((genuine >= threshold).sum() / n_genuine), threshold


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct threshold, FAR ascending."""
    genuine, impostor, n_genuine, n_impostor = _accept_rates(scores, labels)
    both = np.concatenate([genuine, impostor])
    thresholds = np.unique(both[np.isfinite(both)])[::-1]
    far = np.searchsorted(-impostor, -thresholds, side="right") / n_impostor
    tar = np.searchsorted(-genuine, -thresholds, side="right") / n_genuine
    return far, tar


def plot_roc_det(results: dict[str, EvalResult], path: Path) -> Path:
    """Write a PNG with the ROC (TAR against FAR, log FAR) and the DET (FNMR against FMR, log-log) of
    each labelled result."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("plots need matplotlib: pip install 'lethe[plots]'") from exc
    figure, (roc, det) = plt.subplots(1, 2, figsize=(11, 4.5))
    plotted = {"roc": False, "det": False}
    for label, result in results.items():
        far, tar = roc_points(result.scores, result.labels)
        keep = far > 0  # log axes: only points with error rates above zero
        missed = keep & (tar < 1)
        roc.plot(far[keep], tar[keep], label=label)
        det.plot(far[missed], 1 - tar[missed], label=label)
        plotted["roc"] |= bool(keep.any())
        plotted["det"] |= bool(missed.any())
    roc.set(xlabel="false accept rate", ylabel="true accept rate", title="ROC, LFW View 2")
    det.set(xlabel="false match rate", ylabel="false non-match rate", title="DET, LFW View 2")
    if plotted["roc"]:
        roc.set_xscale("log")
    if plotted["det"]:
        det.set(xscale="log", yscale="log")
    for axis in (roc, det):
        axis.axvline(1e-3, color="grey", linestyle=":", linewidth=1)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
