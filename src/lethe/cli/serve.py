"""``lethe serve``: the web service (API + pages) with uvicorn, on 127.0.0.1 unless told otherwise.

The first user of a fresh data folder is the app factory's business (``lethe.service.create_app``), the
same when the service runs under ``uvicorn --factory``; this command only starts and reports."""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Annotated

import typer

from lethe.cli._support import exit_code, fail
from lethe.config import Settings
from lethe.errors import LetheError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the web UI at / and the API (schema at /openapi.json) until stopped."""
    import uvicorn

    from lethe.service import create_app

    try:
        app = create_app(Settings.load())  # on a fresh data folder: the first admin, its password once
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    if not _is_loopback(host):
        sys.stderr.write(
            f"\n  WARNING: listening on {host}, reachable from other machines. Lethe holds biometric\n"
            "  data: put it behind HTTPS (a reverse proxy), set LETHE_COOKIE_SECURE=true, and\n"
            "  restrict who can reach it.\n\n"
        )
    logging.getLogger("lethe").setLevel(logging.INFO)
    sys.stderr.write(f"Lethe serving on http://{host}:{port}/ (API docs at /docs; stop with Ctrl-C)\n")
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", server_header=False)
