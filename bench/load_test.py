"""A bounded loopback load test: concurrent searches against `lethe serve` while it ingests.

Usage: nice .venv/bin/python bench/load_test.py [--data ../shared/data] [--clients 8] [--seconds 60]
           [--gallery 1000] [--ingest 1000]

Sets up a fresh data folder with the first ``--gallery`` LFW photos ingested (the CLI), an operator
with an API token, then starts ``lethe serve`` on a free 127.0.0.1 port, starts an ingest job of the
next ``--ingest`` photos through ``POST /api/ingest``, and runs ``--clients`` threads that each post
``/api/search`` (real LFW probes, in turn) for ``--seconds``. Reports requests, errors (any status
but 200, or a transport error), p50/p99 latency and how far the ingest got meanwhile. The per-user
search rate limit is raised for the run (one token drives all clients).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from machine import describe, machine

LETHE = Path(sys.executable).with_name("lethe")


def cli(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run([str(LETHE), *args, "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--gallery", type=int, default=1000)
    parser.add_argument("--ingest", type=int, default=1000)
    args = parser.parse_args()
    print(describe(machine()), file=sys.stderr)
    photos = sorted((args.data / "lfw").glob("*/*.jpg"))
    if len(photos) < args.gallery + args.ingest:
        raise SystemExit(f"need {args.gallery + args.ingest} LFW photos under {args.data / 'lfw'}")
    with tempfile.TemporaryDirectory(prefix="lethe-load-") as tmp:
        root = Path(tmp)
        first, second = root / "first", root / "second"
        for folder, chunk in (
            (first, photos[: args.gallery]),
            (second, photos[args.gallery :][: args.ingest]),
        ):
            folder.mkdir()
            for photo in chunk:
                shutil.copy(photo, folder / photo.name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_")} | {
            "LETHE_DATA_DIR": str(root / "data"),
            "LETHE_WORKERS": "1",
            "LETHE_SEARCH_RATE_PER_MINUTE": "1000000",
        }
        source = ("--basis", "consent", "--art9", "explicit_consent", "--purpose", "load test")
        cli(env, "source", "add", "lfw", *source, "--jurisdiction", "FR", "--retention-days", "30")
        t0 = time.perf_counter()
        seeded = cli(env, "ingest", "lfw", str(first))
        print(f"gallery: {seeded['images']} photos, {seeded['faces']} faces in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip
        cli(env, "user", "add", "loadop", "--role", "operator")
        token = str(cli(env, "token", "create", "loadop")["token"])
        port = free_port()
        log = (root / "serve.log").open("w")
        server = subprocess.Popen([str(LETHE), "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/api/health", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("lethe serve did not start") from None
                    time.sleep(0.2)
            job = httpx.post(
                f"{url}/api/ingest", json={"source": "lfw", "path": str(second)}, headers=headers, timeout=30
            ).json()
            probes = [p.read_bytes() for p in photos[: args.gallery : max(1, args.gallery // 50)]]
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            stop = time.monotonic() + args.seconds

            def client(n: int) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                    i = n
                    while time.monotonic() < stop:
                        probe = probes[i % len(probes)]
                        i += args.clients
                        t = time.perf_counter()
                        try:
                            r = http.post(
                                "/api/search",
                                files={"probe": ("probe.jpg", probe, "image/jpeg")},
                                data={"purpose": "load test", "top": "10"},
                            )
                            ok, what = r.status_code == 200, str(r.status_code)
                        except httpx.HTTPError as exc:
                            ok, what = False, type(exc).__name__
                        with lock:
                            (latencies if ok else errors).append(
                                1e3 * (time.perf_counter() - t) if ok else what  # type: ignore[arg-type]
                            )

            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            load_start = os.getloadavg()[0]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            during = httpx.get(f"{url}/api/ingest/{job['id']}", headers=headers, timeout=30).json()
            while during["state"] == "running":
                time.sleep(1)
                during = httpx.get(f"{url}/api/ingest/{job['id']}", headers=headers, timeout=30).json()
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()
            shutil.copy(root / "serve.log", Path(tempfile.gettempdir()) / "lethe-load-serve.log")
    ms = np.asarray(latencies)
    print(
        f"\n{args.clients} clients x {args.seconds:.0f} s of POST /api/search against `lethe serve` "
        f"(gallery {seeded['faces']} faces at the start), while POST /api/ingest stored "
        f"{during['images']} more photos ({during['state']}); load average {load_start:.2f} at start.\n"
    )
    print("| requests | errors | searches/s | p50 ms | p99 ms | max ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(ms) + len(errors)} | {len(errors)} | {len(ms) / args.seconds:.1f} | "
        f"{np.percentile(ms, 50):.0f} | {np.percentile(ms, 99):.0f} | {ms.max():.0f} |"
    )
    if errors:
        print("errors:", {e: errors.count(e) for e in set(errors)})
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
