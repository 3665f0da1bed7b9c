"""Explore FAISS structures for the 1M-face target (recall@10 >= 0.99 at p50 <= 1 ms, one thread).

Usage: nice .venv/bin/python bench/ann_structures.py [--size 1000000] [--nlist 4096]
           [--specs "IVF4096,SQ8" "IVF4096,PQ32x4fs" HNSW32]

Gallery: the real LFW faces (bench/lfw_embeddings.py's cache) but 500 held out as queries (random,
seed 0), then Gaussian face-like distractors up to ``--size``. Each structure is built with
``faiss.index_factory`` (inner product), searched one query at a time on one thread, at several
nprobe (IVF) or efSearch (HNSW) values; quantised structures are also tried with re-ranking: take
K x 10 candidates and re-order them by exact float32 scores. recall@10 is against exact search.
This is an exploration of alternatives, not the product path (bench/ann_scale.py times that).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np
from lfw_embeddings import DEFAULT_CACHE, face_like_distractors, load_lfw_faces
from machine import describe, machine


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--nlist", type=int, default=4096, help="k-means training sample: 100 x nlist")
    parser.add_argument("--specs", nargs="+", default=["IVF4096,SQ8", "IVF4096,PQ32x4fs", "HNSW32"])
    args = parser.parse_args()
    print(describe(machine()), flush=True)
    faces = load_lfw_faces(args.data, args.cache)
    rng = np.random.default_rng(0)
    held_out = rng.choice(faces.faces, 500, replace=False)
    real = np.setdiff1d(np.arange(faces.faces), held_out)
    gallery = np.concatenate(
        [faces.templates[real], face_like_distractors(faces.templates, args.size - real.size, 0)]
    ).astype(np.float32)
    queries = np.ascontiguousarray(faces.templates[held_out])
    exact = faiss.IndexFlatIP(gallery.shape[1])
    exact.add(gallery)
    _, truth = exact.search(queries, 10)

    def recall(found: np.ndarray) -> float:
        return float(np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(found, truth, strict=True)]))

    for spec in args.specs:
        faiss.omp_set_num_threads(2)
        start = time.perf_counter()
        index = faiss.index_factory(gallery.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
        is_ivf = "IVF" in spec
        if is_ivf:
            index.train(gallery[rng.choice(len(gallery), min(len(gallery), 100 * args.nlist), replace=False)])
            index.add_with_ids(gallery, np.arange(len(gallery)))
        else:
            index.add(gallery)
        print(f"{spec}: build {time.perf_counter() - start:.1f} s", flush=True)
        ivf = faiss.extract_index_ivf(index) if is_ivf else None
        quantised = any(code in spec for code in ("SQ", "PQ"))
        faiss.omp_set_num_threads(1)
        for width in [64, 128, 256] if is_ivf else [32, 64, 128]:
            for factor in [1, 4, 10] if quantised else [1]:
                if ivf is not None:
                    ivf.nprobe = width
                else:
                    index.hnsw.efSearch = width
                latencies, found = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    _, candidates = index.search(q[None, :], 10 * factor)
                    hits = candidates[0][candidates[0] >= 0]
                    if factor > 1:
                        hits = hits[np.argsort(-(gallery[hits] @ q))[:10]]
                    latencies.append(1e3 * (time.perf_counter() - t0))
                    found.append(np.pad(hits[:10], (0, 10 - len(hits[:10])), constant_values=-1))
                p50, p99 = np.percentile(latencies, [50, 99])
                print(
                    f"  {spec} {'nprobe' if ivf is not None else 'efSearch'} {width} re-rank x{factor}: "
                    f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, recall@10 {recall(np.array(found)):.4f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
