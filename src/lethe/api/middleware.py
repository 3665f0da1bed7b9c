"""ASGI middleware: request body limit, access log, metrics and security headers.

The access log has one line per request with the method, the *route template* (``/api/requests/{
request_id}``, never the path with its ids or the query string), the status and the duration: no
tokens, cookies, bodies, file names or contact addresses ever reach it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lethe.http.errors import error_response
from lethe.http.metrics import Metrics

access_log = logging.getLogger("lethe.api.access")

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class BodyTooLarge(HTTPException):
    """Raised while the body is read; FastAPI passes HTTP exceptions on, the handler shapes it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes (LETHE_MAX_UPLOAD_BYTES)")


class BodyTimedOut(HTTPException):
    """The body did not arrive in time; raised while it is read, shaped like BodyTooLarge."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {seconds:g} s (LETHE_BODY_TIMEOUT_S)",
            headers={"Connection": "close"},  # the rest of the body is not read: the connection ends
        )


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes: at once from ``Content-Length``, else while it streams.
    408 (and the connection closed) for a body not received in full ``timeout_s`` seconds after the
    request's head: a client dribbling a body cannot hold a connection and a worker forever."""

    def __init__(self, app: ASGIApp, limit: int, timeout_s: float = 60.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False
        body_done = False
        deadline = time.monotonic() + self.timeout_s

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the body: only a disconnect comes, whenever it comes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise BodyTimedOut(self.timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)
        except BodyTimedOut as exc:
            if started:
                raise
            await self._refuse(scope, receive, send, status=408, code="request_timeout", message=exc.detail)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        status: int = 413,
        code: str = "payload_too_large",
        message: str | None = None,
    ) -> None:
        response = error_response(
            status,
            code,
            message or f"the request body is over the limit of {self.limit} bytes (LETHE_MAX_UPLOAD_BYTES)",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``<unmatched>`` (random 404 paths make no new series)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", "<unmatched>"))
    return "<unmatched>"


class ObserveMiddleware:
    """Access log line, request metrics and security headers for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                if scope["path"].startswith("/api/") and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = str(scope.get("method", "?"))
            self.metrics.observe_request(method, route, status, seconds)
            access_log.info("%s %s %d %.1fms", method, route, status, seconds * 1000)
