"""The one JSON error shape of the service, and :class:`ApiError`, an error that already is an HTTP answer.

Every error the service answers, the API's and the pages' alike, has this body::

    {"error": {"code": "not_found", "message": "no request 7", "status": 404}}

``code`` is a stable machine-readable word, ``message`` one readable sentence, ``status`` repeats the
HTTP status. :class:`ApiError` is raised by the HTTP layer itself (a missing login, a missing role,
a rate limit, an upload over the size limit); how Lethe's own error tree becomes a status is
:mod:`lethe.api.errors`'s table, installed on the app with the handlers.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """An error raised by the HTTP layer itself (auth, limits, ...): its status, code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(status: int, code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "status": status}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status_code=status, headers=dict(headers or {}))


def wants_html(path: str, accept: str) -> bool:
    """Whether an error should be answered as a page: a browser asked (``Accept`` names
    ``text/html`` before any JSON) for something outside the API (``/api/``, the schema). The API
    and every client asking for JSON keep the JSON shape above."""
    if path == "/api" or path.startswith("/api/") or path == "/openapi.json":
        return False
    html = accept.find("text/html")
    if html < 0:
        return False
    json_at = accept.find("application/json")
    return json_at < 0 or html < json_at
