"""Saving and loading the FAISS index file sealed (chunked AES-256-GCM, lethe.index._sealed) against
the former unsealed format, in one run on one machine.

Usage: nice .venv/bin/python bench/index_sealing.py [--faces 1000000] [--kind flat|ivf] [--repeats 3]

The baseline is the former plaintext path, kept here only (Lethe itself no longer writes it): the
FAISS file streamed into the temporary file with the source ids and a SHA-256 trailer, and on load a
checksum pass then ``faiss.read_index``. Both variants run alternately on the same index of random
unit vectors (a save's cost depends on the file's size, not on what the vectors look like); medians
and the spread of ``--repeats`` runs each, and the ratio sealed / unsealed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import resource
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import BinaryIO

import faiss
import numpy as np

from lethe.index.faiss_index import _MAGIC, _TRAILER, INDEX_FILE, FaissIndex, _read_checked
from lethe.storage import atomic_write

UNSEALED = "unsealed.faiss"


def save_unsealed(index: FaissIndex, folder: Path) -> None:
    """The former ``FaissIndex._write_file``: FAISS file, source ids, trailer, in clear."""

    def write(handle: BinaryIO) -> None:
        digest, written = hashlib.sha256(), 0

        def put(chunk: bytes) -> None:
            nonlocal written
            handle.write(chunk)
            digest.update(chunk)
            written += len(chunk)

        faiss.write_index(index._index, faiss.PyCallbackIOWriter(put))  # type: ignore[attr-defined]
        length = written
        put(index._sources.astype("<i8").tobytes())
        handle.write(_TRAILER.pack(_MAGIC, length, written - length, digest.digest()))

    atomic_write(folder / UNSEALED, write)


def load_unsealed(folder: Path) -> int:
    """The former load: checksum the whole file, then let FAISS parse it."""
    length, _ = _read_checked(folder / UNSEALED)
    if length is None:
        raise SystemExit("unsealed file failed its checksum")
    return int(faiss.read_index(str(folder / UNSEALED)).ntotal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=["flat", "ivf"], default="flat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.faces, 128), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, args.faces + 1, dtype=np.int64)
    times: dict[str, list[float]] = {
        k: [] for k in ("save_unsealed", "save_sealed", "load_unsealed", "load_sealed")
    }
    with TemporaryDirectory() as tmp:
        folder = Path(tmp)
        index = FaissIndex(folder, dim=128, kind=args.kind)
        index.rebuild(ids, vectors, sources=np.ones(args.faces, dtype=np.int64))
        del vectors
        for _ in range(args.repeats):
            for name, run in (
                ("save_unsealed", lambda: save_unsealed(index, folder)),
                ("save_sealed", index.save),
                ("load_unsealed", lambda: load_unsealed(folder)),
                ("load_sealed", lambda: len(FaissIndex(folder, dim=128, kind=args.kind))),
            ):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
        sizes = {
            "unsealed_mb": (folder / UNSEALED).stat().st_size / 2**20,
            "sealed_mb": (folder / INDEX_FILE).stat().st_size / 2**20,
        }
    summary = {
        name: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v)}
        for name, v in times.items()
    }
    ratios = {
        op: summary[f"{op}_sealed"]["median_s"] / summary[f"{op}_unsealed"]["median_s"]
        for op in ("save", "load")
    }
    cpu = platform.processor() or platform.machine()
    print(f"{args.faces} faces, {args.kind}, {args.repeats} runs each; {cpu}")
    print(f"files: unsealed {sizes['unsealed_mb']:.1f} MB, sealed {sizes['sealed_mb']:.1f} MB")
    for name, r in summary.items():
        print(f"  {name:<14} median {r['median_s']:6.2f} s (min {r['min_s']:.2f}, max {r['max_s']:.2f})")
    print(f"  sealed / unsealed: save {ratios['save']:.2f}x, load {ratios['load']:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:.0f} MB")
    print(json.dumps({"summary": summary, "ratios": ratios, "sizes": sizes, "peak_rss_mb": peak}))


if __name__ == "__main__":
    main()
