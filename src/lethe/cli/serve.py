"""``lethe serve``: the web service (API + pages) with uvicorn, on 127.0.0.1 unless told otherwise.

The first user of a fresh data folder is the app factory's business (``lethe.service.create_app``), the
same when the service runs under ``uvicorn --factory``; this command only starts and reports.

Slow clients time out (security review, finding 19). uvicorn closes an idle keep-alive connection
(``timeout_keep_alive``) and limits a request head's size (``h11_max_incomplete_event_size``), but it
has no deadline for a request head that arrives a byte at a time: :func:`head_timeout_protocol` adds
one (``LETHE_HEADER_TIMEOUT_S``, from the connection's opening or the previous response). Bodies get
their deadline in the app (``LETHE_BODY_TIMEOUT_S``, ``lethe.api.middleware.BodyLimitMiddleware``).
uvicorn's own ``X-Forwarded-For`` handling is off: the app believes the header only from
``LETHE_TRUSTED_PROXIES`` (``lethe.http.clients``)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lethe.cli._support import exit_code, fail
from lethe.config import Settings
from lethe.errors import LetheError

if TYPE_CHECKING:
    import asyncio

#: Seconds an idle keep-alive connection stays open after a response.
KEEP_ALIVE_S = 5
#: The largest request head (request line and headers) read, in bytes; larger: 400.
MAX_HEAD_BYTES = 16 * 1024


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def head_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request head has not arrived in full
    ``seconds`` after the connection opened or after the previous response."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()  # still no whole request head: a slow or idle client

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # the head is in; the body has the app's own deadline

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeadTimeoutProtocol


def _check_free(host: str, port: int) -> None:
    """Fail with one line when nothing can listen on ``host:port`` (another program holds the port,
    or the address is not this machine's), before anything is created. uvicorn binds again right
    after: another program taking the port in between is still reported, by uvicorn."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port "
            "(lethe serve --port N, make run PORT=N)",
            1,
        )


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the web UI at / and the API (schema at /openapi.json) until stopped."""
    import uvicorn

    from lethe.service import create_app, keys_warning, show_first_password

    _check_free(host, port)  # before the first admin is made: a busy port must not use up its password
    first_password: list[str] = []
    try:
        settings = Settings.load()
        # on a fresh data folder: the first admin, its password shown once the server listens
        app = create_app(settings, announce=first_password.append)
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    if not _is_loopback(host):
        sys.stderr.write(
            f"\n  WARNING: listening on {host}, reachable from other machines. Lethe holds biometric\n"
            "  data: put it behind HTTPS (a reverse proxy), set LETHE_COOKIE_SECURE=true, and\n"
            "  restrict who can reach it.\n\n"
        )
    warning = keys_warning(settings)
    if warning:
        sys.stderr.write(warning)
    logging.getLogger("lethe").setLevel(logging.INFO)

    class Server(uvicorn.Server):
        """Says where it serves, then the first admin's password, once it listens: the last lines
        on screen (the newcomer review, issue 20: it was buried under the start-up log). A bind that
        fails after all still shows the password, which is never shown again."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            try:
                await super().startup(sockets)  # a failed bind exits from here
                if not self.should_exit:
                    sys.stderr.write(
                        f"Lethe serving on http://{host}:{port}/ (API schema at /openapi.json; "
                        "stop with Ctrl-C)\n"
                    )
            finally:
                if first_password:
                    show_first_password(settings, first_password.pop())

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="info",
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        http=head_timeout_protocol(settings.header_timeout_s),
    )
    server = Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(1)
