"""A real ``lethe serve`` for tests: a subprocess on a free 127.0.0.1 port over a fresh data folder,
waited for until it answers, stopped at the end. (test_api_auth.py starts its own by hand: it reads
the command's stderr itself.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lethe.users import FIRST_PASSWORD_FILE

from conftest import child_env

LETHE = Path(sys.executable).with_name("lethe")


@dataclass
class Served:
    url: str
    port: int
    admin_password: str
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lethe_serve(folder: Path, **env: str) -> Iterator[Served]:
    """``lethe serve`` with ``LETHE_DATA_DIR=folder/data`` and the ``LETHE_*`` variables in ``env``;
    the first admin's password read from the file it is written to (its stderr is no terminal), which
    the first login of admin deletes."""
    port = free_port()
    variables = child_env() | {"LETHE_DATA_DIR": str(folder / "data"), "LETHE_WORKERS": "1"} | env
    log_path = folder / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(LETHE), "serve", "--port", str(port)], env=variables, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"lethe serve did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
        password = (folder / "data" / FIRST_PASSWORD_FILE).read_text().strip()
        yield Served(url, port, password, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lethe_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    """``lethe ARGS --json`` beside a served instance (``env`` names its data folder and actor): its
    JSON answer; a failing command fails the test with its output."""
    done = subprocess.run([str(LETHE), *args, "--json"], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))
