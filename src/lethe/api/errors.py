"""The one place where Lethe's errors become HTTP status codes, and the handlers that answer them.

Every error the service answers, whatever raised it (an unknown route, a wrong method, a body that
fails validation, a :class:`~lethe.errors.LetheError`, a refused login, a rate limit), has the one
JSON error shape of :mod:`lethe.http.errors`::

    {"error": {"code": "not_found", "message": "no request 7", "status": 404}}

:data:`LETHE_ERRORS` maps the error tree to (status, code); :func:`install` puts the handlers on
the app. Unexpected exceptions become a 500 ``internal_error`` that reveals nothing of the cause.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lethe.errors import (
    ConfigError,
    ConflictError,
    DeliveryError,
    ImageError,
    ImageTooLargeError,
    InputError,
    KeyShreddedError,
    LawfulBasisError,
    LetheError,
    ModelError,
    NoFaceError,
    NotFoundError,
    PrivacyError,
    SealedDataError,
    VectorIndexError,
)
from lethe.http.errors import ApiError, error_response
from lethe.http.uploads import IMAGE_KINDS

log = logging.getLogger(__name__)

#: Lethe's error tree -> (status, code). The first class that matches wins: subclasses first.
LETHE_ERRORS: tuple[tuple[type[LetheError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (SealedDataError, 500, "sealed_data_error"),
    (DeliveryError, 502, "delivery_failed"),
    (ImageTooLargeError, 413, "image_too_large"),
    (ImageError, 415, "unsupported_media_type"),
    (NoFaceError, 422, "no_face"),
    (InputError, 422, "invalid_input"),
    (LawfulBasisError, 422, "no_lawful_basis"),
    (KeyShreddedError, 410, "key_shredded"),
    (PrivacyError, 409, "refused"),
    (ModelError, 503, "model_unavailable"),
    (VectorIndexError, 500, "index_error"),
    (ConfigError, 500, "config_error"),
    (LetheError, 500, "error"),
)

#: Codes of plain HTTP errors (unknown route, wrong method, ...).
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def lethe_status(exc: LetheError) -> tuple[int, str]:
    for cls, status, code in LETHE_ERRORS:
        if isinstance(exc, cls):
            return status, code
    return 500, "error"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:500]


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header", "cookie")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    error = cast(ApiError, exc)
    return error_response(error.status, error.code, error.message, error.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    http = cast(StarletteHTTPException, exc)
    status = http.status_code
    code = HTTP_CODES.get(status, "error")
    detail = http.detail if isinstance(http.detail, str) else ""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    if status == 404 and detail in ("", "Not Found"):
        message = "nothing here: no such page or API endpoint"
    elif status == 405:
        message = "this endpoint does not accept that method"
    else:
        message = detail or phrase
    return error_response(status, code, _first_line(message), http.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "validation_error", _validation_message(cast(RequestValidationError, exc)))


async def _lethe_error(_request: Request, exc: Exception) -> JSONResponse:
    status, code = lethe_status(cast(LetheError, exc))
    if status >= 500:
        log.error("request failed: %s", exc.__class__.__name__)
    message = _first_line(str(exc)) or code.replace("_", " ")
    if code == "unsupported_media_type":
        message = f"not a supported image ({IMAGE_KINDS}): {message}"
    return error_response(status, code, message)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: %s", exc.__class__.__name__, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the server log names the cause")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(LetheError, _lethe_error)
    app.add_exception_handler(Exception, _unexpected)
