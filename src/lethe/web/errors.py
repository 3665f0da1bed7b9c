"""Error pages for browsers: an unknown address, a wrong method or an unexpected failure asked for by
a browser (``Accept: text/html``, outside ``/api/``) gets ``error.html`` with its status and a way
home; the API and every client asking for JSON keep the one JSON error shape
(:func:`lethe.http.errors.wants_html` decides). :func:`install` wraps the handlers the API installed
before it, so the JSON answers stay theirs."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lethe.http.errors import error_response, wants_html
from lethe.web.common import current_viewer, render

log = logging.getLogger(__name__)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

#: What a page says for a status, beside its code.
MESSAGES = {
    404: "There is no page at this address. Check the link, or start again from the home page.",
    405: "This address does not accept that kind of request.",
    500: "Something went wrong on the server; the server log names the cause. Try again, or go back.",
}


async def _page(request: Request, status: int) -> Response:
    try:
        viewer = await current_viewer(request)
    except Exception:  # noqa: BLE001 - the app's state may be what failed: the page needs no viewer
        viewer = None
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    message = MESSAGES.get(status) or f"The request could not be answered ({phrase.lower()})."
    return render(
        request,
        "error.html",
        viewer,
        status=status,
        heading=f"{status} {phrase}",
        message=message,
        title=phrase,
    )


def _wrap(json_handler: Handler | None, status_of: Callable[[Exception], int]) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        status = status_of(exc)
        if wants_html(request.url.path, request.headers.get("accept", "")):
            if status >= 500:
                log.error("page failed: %s", exc.__class__.__name__, exc_info=exc)
            return await _page(request, status)
        if json_handler is not None:
            answer = json_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return error_response(status, "error", HTTPStatus(status).phrase)

    return handler


def install(app: FastAPI) -> None:
    """Answer browsers' errors with a page; keep the handlers already installed for everyone else."""
    handlers = app.exception_handlers
    http_json = handlers.get(StarletteHTTPException)
    app.add_exception_handler(
        StarletteHTTPException,
        _wrap(http_json, lambda exc: exc.status_code if isinstance(exc, StarletteHTTPException) else 500),
    )
    app.add_exception_handler(Exception, _wrap(handlers.get(Exception), lambda _exc: 500))
