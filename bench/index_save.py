"""Saving the FAISS index: Lethe's streamed save against the baseline that serialises the whole file
in memory first and then writes it (what ``FaissIndex.save`` did before the file was streamed).

Usage: nice .venv/bin/python bench/index_save.py [--faces 100000] [--kind flat|ivf] [--repeats 5]

Each variant runs in a fresh process (so peak memory is its own): it builds the same index of random
unit vectors, saves it ``--repeats`` times and reports the median and spread of the save time and the
process's peak RSS growth during the saves. Random vectors are fine here: a save's cost depends on
the index's size, not on what the vectors look like. Both variants write the same content: since
the index file is sealed (a fresh key per save) their bytes differ, so the script checks that the two
files have the same size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

CHILD = r"""
import json, resource, statistics, sys, time
from pathlib import Path
import numpy as np
from lethe.index.faiss_index import FaissIndex
from lethe.storage import atomic_write

variant, kind, folder = sys.argv[1], sys.argv[3], Path(sys.argv[5])
faces, repeats = int(sys.argv[2]), int(sys.argv[4])
rng = np.random.default_rng(0)
vectors = rng.standard_normal((faces, 128), dtype=np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
index = FaissIndex(folder, dim=128, kind=kind)
index.rebuild(np.arange(1, faces + 1, dtype=np.int64), vectors, sources=np.ones(faces, dtype=np.int64))


class Buffer:
    def __init__(self):
        self.parts = []

    def write(self, chunk):
        self.parts.append(bytes(chunk))


def in_memory_first():  # the baseline: the whole file as one bytes object, then written
    buffer = Buffer()
    index._write_file(buffer)
    atomic_write(folder / "faces.faiss", b"".join(buffer.parts))


save = index.save if variant == "streamed" else in_memory_first
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(repeats):
    started = time.perf_counter()
    save()
    times.append(time.perf_counter() - started)
rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "variant": variant,
    "median_ms": statistics.median(times) * 1000,
    "min_ms": min(times) * 1000,
    "max_ms": max(times) * 1000,
    "peak_rss_growth_mb": (rss_after - rss_before) / 1024,
    "file_mb": (folder / "faces.faiss").stat().st_size / 2**20,
    "bytes": (folder / "faces.faiss").stat().st_size,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--kind", choices=["flat", "ivf"], default="flat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {}
    with TemporaryDirectory() as tmp:
        for variant in ("in-memory-first", "streamed"):
            folder = Path(tmp) / variant
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    variant,
                    str(args.faces),
                    args.kind,
                    str(args.repeats),
                    str(folder),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[variant] = json.loads(out.strip().splitlines()[-1])
    base, ours = results["in-memory-first"], results["streamed"]
    if base["bytes"] != ours["bytes"]:
        raise SystemExit("the two variants wrote files of different sizes")
    print(f"{args.faces} faces, {args.kind}, file {ours['file_mb']:.1f} MB, {args.repeats} saves each")
    for name, r in results.items():
        print(
            f"  {name:<16} median {r['median_ms']:7.1f} ms (min {r['min_ms']:.1f}, max {r['max_ms']:.1f}), "
            f"peak RSS growth {r['peak_rss_growth_mb']:.1f} MB"
        )
    print(f"  streamed / in-memory-first: time {ours['median_ms'] / base['median_ms']:.2f}x")


if __name__ == "__main__":
    main()
