"""Search latency, recall, insert time and bytes on disk: Lethe's FAISS index vs its Milvus index
(milvus-lite), both as Lethe builds them, on one face gallery.

Usage: nice .venv/bin/python bench/milvus_vs_faiss.py [--data ../shared/data] [--size 1000000]
[--queries 300] [--k 10] [--threshold 0.93] [--seed 0] [--tmp DIR] [--out FILE.json]

Gallery and queries as in bench/ann_scale.py (its ``mated_gallery``: every LFW face the pipeline
finds but the queries, plus face-like distractors up to ``--size``; one real query per person with a
labelled mate). Each backend gets the gallery through ``rebuild`` with the product's defaults, so
each picks its own structure by size: ``FaissIndex`` (IVF-SQ8 above 100k faces, exact below) and
``MilvusIndex`` on a milvus-lite folder (IVF_SQ8 / FLAT by the same rule, 16 hash partitions). The
Milvus build is timed until its index is built on every segment (milvus-lite builds them in the
background after the flush); builds use FAISS's default thread count. Queries run one at a time
through the product's ``search`` on one thread (FAISS's OpenMP and numpy's OpenBLAS pinned to 1;
milvus-lite runs in this process and uses the same FAISS library). Ground truth: faiss
``IndexFlatIP``. Recall@k against it, and the mated hit (a gallery face of the query's person at
rank 1 with score >= ``--threshold``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil
from ann_scale import F32, I64, mated_gallery, numpy_blas_threads, quality, timed
from lfw_embeddings import DEFAULT_CACHE
from machine import describe, machine

from lethe.index import FaissIndex, MilvusIndex, VectorIndex


def product_search(index: VectorIndex) -> Any:
    def search(q: F32, k: int) -> tuple[F32, I64]:
        hits = index.search(q, k)[0]
        return np.array([[s for _, s in hits]], np.float32), np.array([[i for i, _ in hits]], np.int64)

    return search


def wait_for_milvus_index(index: MilvusIndex, timeout_s: float = 3600.0) -> None:
    """milvus-lite indexes flushed segments in a background thread: wait until all rows are."""
    client: Any = index._client  # noqa: SLF001 - a benchmark may look inside
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client.describe_index(index.collection, "vector")
        if int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= len(index):
            return
        time.sleep(1.0)
    raise TimeoutError("milvus-lite did not finish building its index")


def build(name: str, index: VectorIndex, gallery: F32, sources: I64) -> dict[str, Any]:
    print(f"building {name} ({len(gallery):,} faces)", file=sys.stderr)
    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    index.rebuild(np.arange(len(gallery), dtype=np.int64), gallery, sources=sources)
    if isinstance(index, MilvusIndex):
        wait_for_milvus_index(index)
    build_s = time.perf_counter() - t0
    st = index.stats()
    out = dict(
        build_s=build_s,
        kind=st["kind"],
        nlist=st.get("nlist"),
        nprobe=st.get("nprobe"),
        file_bytes=int(st["file_bytes"]),  # type: ignore[call-overload]
        bytes_per_face=int(st["file_bytes"]) / len(gallery),  # type: ignore[call-overload]
        rss_growth_mb=(psutil.Process().memory_info().rss - rss0) / 1e6,
    )
    print(f"  {name}: {out}", file=sys.stderr)
    return out


def markdown(r: dict[str, Any]) -> str:
    g, f, m = r["gallery"], r["faiss"], r["milvus"]

    def row(name: str, x: dict[str, Any]) -> str:
        return (
            f"| {name} | {x['kind']} (nlist {x['nlist']}, nprobe {x['nprobe']}) | {x['build_s']:.1f} | "
            f"{x['file_bytes'] / 1e6:.1f} ({x['bytes_per_face']:.0f} B/face) | "
            f"{x['latency']['p50_ms']:.2f} | {x['latency']['p99_ms']:.2f} | {x['recall_at_k']:.4f} | "
            f"{100 * x['mated_rank1']:.1f}% |"
        )

    return "\n".join(
        [
            f"## Milvus-lite vs FAISS on {g['size']:,} faces ({r['date']})\n",
            f"Command: `{r['command']}`  ",
            f"Machine: {describe(r['machine'])}; pymilvus {r['pymilvus']}, milvus-lite {r['milvus_lite']}; "
            f"1-min load average {r['loadavg_start']:.2f} at start, {r['loadavg_end']:.2f} at end; "
            f"builds on {r['build_threads']} threads, per-query timings through each backend's `search` "
            "on 1 thread\n",
            f"Gallery: {g['real']:,} real LFW faces + {g['distractors']:,} face-like distractors; "
            f"{g['queries']} real queries. Ground truth: IndexFlatIP.\n",
            "| backend | structure | build s | on disk MB | p50 ms | p99 ms | recall@10 | mated @1 |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            row("FAISS (`FaissIndex`)", f),
            row("milvus-lite (`MilvusIndex`)", m),
            f"\nMilvus-lite / FAISS: p50 {m['latency']['p50_ms'] / f['latency']['p50_ms']:.1f}x, "
            f"p99 {m['latency']['p99_ms'] / f['latency']['p99_ms']:.1f}x, "
            f"build {m['build_s'] / f['build_s']:.1f}x, "
            f"bytes {m['file_bytes'] / f['file_bytes']:.1f}x. Exact search would find the mate at rank 1 for "
            f"{100 * r['exact']['mated_rank1']:.1f}% of queries.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--data", type=Path, default=Path("../shared/data"), help="folder holding lfw/")
    add("--cache", type=Path, default=DEFAULT_CACHE, help="face cache (.npz), computed when missing")
    add("--size", type=int, default=1_000_000, help="gallery size (real faces + distractors)")
    add("--queries", type=int, default=300)
    add("--k", type=int, default=10)
    add("--threshold", type=float, default=0.93, help="operating threshold for mated hits")
    add("--seed", type=int, default=0)
    add("--tmp", type=Path, default=None, help="folder for the temporary indexes")
    add("--out", type=Path, default=None, help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    import milvus_lite
    import pymilvus

    r: dict[str, Any] = dict(date=datetime.now(UTC).isoformat(timespec="seconds"), machine=machine())
    r |= dict(command=shlex.join([sys.executable, *sys.argv]), loadavg_start=os.getloadavg()[0])
    r |= dict(pymilvus=pymilvus.__version__, milvus_lite=milvus_lite.__version__, k=args.k)
    gallery, glabels, queries, persons, r["gallery"] = mated_gallery(
        args.data, args.cache, args.size, args.queries, args.seed
    )
    sources = (np.arange(len(gallery)) % 7 + 1).astype(np.int64)
    flat = faiss.IndexFlatIP(gallery.shape[1])
    flat.add(gallery)
    gt_scores, gt = flat.search(queries, args.k)
    del flat
    gt_ok = gt_scores >= args.threshold
    r["exact"] = quality(gt, gt_scores, gt, gt_ok, glabels, persons, args.threshold)
    r["build_threads"] = faiss.omp_get_max_threads()
    with tempfile.TemporaryDirectory(prefix="lethe-mvf-", dir=args.tmp) as tmp:
        for name, index in (
            ("faiss", FaissIndex(Path(tmp) / "faiss")),
            ("milvus", MilvusIndex(Path(tmp) / "milvus")),
        ):
            try:
                faiss.omp_set_num_threads(r["build_threads"])
                res = build(name, index, gallery, sources)
                faiss.omp_set_num_threads(1)
                r["blas_pinned"] = numpy_blas_threads(1)
                lat, ids, scores = timed(queries, args.k, product_search(index))
                res |= {"latency": lat} | quality(ids, scores, gt, gt_ok, glabels, persons, args.threshold)
                print(
                    f"  {name}: p50 {lat['p50_ms']:.2f} ms, recall {res['recall_at_k']:.4f}", file=sys.stderr
                )
                r[name] = res
            finally:
                index.close()
    r["loadavg_end"] = os.getloadavg()[0]
    print(markdown(r))
    if args.out:
        args.out.write_text(json.dumps(r, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
