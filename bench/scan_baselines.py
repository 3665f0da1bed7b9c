"""Search latency of Lethe's index against the linear scans that small face-search tools do, in one run.

Usage: nice .venv/bin/python bench/scan_baselines.py [--data ../shared/data] [--size 100000]
[--queries 200] [--pickle-queries 5]

Gallery: the real LFW faces plus face-like distractors up to ``--size`` (bench/ann_scale.py's
gallery); queries are real faces held out of it. One thread everywhere. Compared per query:

* Lethe: ``FaissIndex`` with the structure it picks at that size (``kind="auto"``), through
  ``FaissIndex.search`` (the product path);
* faiss ``IndexFlatIP`` (exact);
* numpy: ``X @ q`` + argpartition over an in-memory float32 matrix (what
  ``face_recognition.compare_faces``/``face_distance`` amount to);
* a ``deepface.find``-style scan, re-implemented here (deepface itself needs TensorFlow): the
  representations pickled as a list of ``{"identity", "embedding"}`` records, loaded into a pandas
  DataFrame once, then per query one cosine distance per row with ``DataFrame.iterrows`` and a sort
  -- the loop deepface's ``find`` runs. It is timed on ``--pickle-queries`` queries only (seconds each).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from ann_scale import mated_gallery, numpy_blas_threads, pcts
from lfw_embeddings import DEFAULT_CACHE
from machine import describe, machine

from lethe.index.faiss_index import FaissIndex


def per_query(queries: np.ndarray, fn: Any) -> dict[str, float]:
    fn(queries[0])  # warm-up
    ms = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        ms.append(1e3 * (time.perf_counter() - t0))
    return pcts(ms)


def deepface_style(gallery: np.ndarray, folder: Path) -> Any:
    """Pickle the gallery as deepface stores representations, load it as deepface does, and return
    its per-row search."""
    import pandas as pd

    path = folder / "representations.pkl"
    records = [{"identity": f"face_{i}.jpg", "embedding": v.tolist()} for i, v in enumerate(gallery)]
    with path.open("wb") as fh:
        pickle.dump(records, fh)
    del records
    with path.open("rb") as fh:
        df = pd.DataFrame(pickle.load(fh))

    def search(q: np.ndarray, k: int = 10) -> list[str]:
        target = q.tolist()
        distances = []
        for _, instance in df.iterrows():
            source = np.asarray(instance["embedding"])
            target_v = np.asarray(target)
            distances.append(
                1 - np.dot(source, target_v) / (np.linalg.norm(source) * np.linalg.norm(target_v))
            )
        result = df.assign(distance=distances).sort_values("distance")
        return result["identity"].head(k).tolist()

    return search


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pickle-queries", type=int, default=5)
    args = parser.parse_args()
    print(describe(machine()), file=sys.stderr)
    gallery, _, queries, _, summary = mated_gallery(args.data, args.cache, args.size, args.queries, 0)
    faiss.omp_set_num_threads(1)
    numpy_blas_threads(1)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lethe-scan-") as tmp:
        index = FaissIndex(Path(tmp) / "index", kind="auto")
        index.rebuild(np.arange(len(gallery), dtype=np.int64), gallery)
        kind = index.stats()["kind"]
        rows[f"Lethe `FaissIndex.search` ({kind})"] = per_query(
            queries, lambda q: index.search(q[None, :], 10)
        )
        flat = faiss.IndexFlatIP(gallery.shape[1])
        flat.add(gallery)
        rows["faiss IndexFlatIP (exact)"] = per_query(queries, lambda q: flat.search(q[None, :], 10))

        def np_scan(q: np.ndarray) -> np.ndarray:
            s = gallery @ q
            top = np.argpartition(-s, 10)[:10]
            return top[np.argsort(-s[top])]

        rows["numpy `X @ q` + argpartition"] = per_query(queries, np_scan)
        try:
            search = deepface_style(gallery, Path(tmp))
        except ImportError:
            print("pandas is not installed: the deepface-style scan is skipped", file=sys.stderr)
        else:
            rows["deepface.find-style pickle + iterrows"] = per_query(queries[: args.pickle_queries], search)
    lethe = next(iter(rows.values()))["p50_ms"]
    print(f"\nGallery {summary['size']:,} faces ({summary['real']:,} real LFW + distractors), one thread.\n")
    print("| search | p50 ms | p99 ms | p50 ÷ Lethe's p50 |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['p50_ms'] / lethe:,.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
