"""Who is calling, and may they: API tokens, session cookies, CSRF and roles.

- ``Authorization: Bearer <token>``: an API token (exempt from CSRF: a browser never adds it alone);
  refused once revoked or expired.
- Otherwise the ``lethe_session`` cookie set by ``POST /login``; for a POST/PUT/PATCH/DELETE the
  CSRF token must come back in ``X-CSRF-Token`` or a ``csrf_token`` form field (see
  :mod:`lethe.http.sessions`). A session ended by logout, a password reset or disabling the user is
  refused at once (its generation no longer matches the user's).

No credentials → 401; credentials without the role the endpoint needs → 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from lethe.http.errors import ApiError
from lethe.http.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE
from lethe.http.state import AppState, app_state
from lethe.users import User, hash_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# Declared for the OpenAPI schema (the "Authorize" button of /docs); checked by hand below.
_bearer = HTTPBearer(auto_error=False, description="An API token: `lethe token create USER`.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The session of `POST /login`.")


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    via: str  # "token" | "session"
    #: The SHA-256 of the API token used (a token bound to a recipient makes searches disclosures).
    token_sha256: str | None = None

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def actor(self) -> str:
        """How the audit log names this user."""
        return f"user:{self.user.name}"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(
            403,
            "csrf_failed",
            f"missing or wrong CSRF token: send the {CSRF_HEADER} header or a {CSRF_FIELD} form field",
        )


async def principal(
    request: Request,
    state: Annotated[AppState, Depends(app_state)],
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _session: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """The authenticated caller; 401 when there is none."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _unauthorized("use the header Authorization: Bearer <token>")
        user = await run_in_threadpool(state.users.user_for_token, secret.strip())
        if user is None:
            raise _unauthorized("the token is not valid (unknown, revoked, expired, or its user is disabled)")
        found = Principal(user, "token", hash_token(secret.strip()))
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise _unauthorized("authentication required: an API token or a login session")
        session = state.sessions.loads(cookie)
        if session is None:
            raise _unauthorized("the session expired or is not valid; log in again")
        user = await run_in_threadpool(state.users.get_by_id, session.user_id)
        if user is None or not user.active:
            raise _unauthorized("the session's user no longer exists or is disabled")
        if user.session_generation != session.generation:
            raise _unauthorized("the session was ended (logout, password reset); log in again")
        if request.method not in SAFE_METHODS:
            await _check_csrf(request, session.csrf)
        found = Principal(user, "session")
    request.state.principal = found
    return found


def require(*roles: str) -> Any:
    """A dependency: the caller, who must hold one of ``roles`` (403 otherwise)."""
    wanted = tuple(roles)

    async def dependency(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if not caller.user.has_any(wanted):
            raise ApiError(
                403,
                "forbidden",
                f"this needs the role {' or '.join(wanted)}; you have {', '.join(caller.user.roles)}",
            )
        return caller

    dependency.__name__ = f"require_{'_or_'.join(wanted)}"
    return Depends(dependency)


Authenticated = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, require("admin")]
Operator = Annotated[Principal, require("operator")]
Dpo = Annotated[Principal, require("dpo")]
Reader = Annotated[Principal, require("admin", "operator", "dpo")]
OrderReader = Annotated[Principal, require("admin", "dpo")]
#: The consent ledger (never templates or contacts) and the consent texts' new versions.
LedgerKeeper = Annotated[Principal, require("admin", "dpo")]
#: Enrolling a consenting person at the desk (or from a paper form).
ConsentDesk = Annotated[Principal, require("operator", "dpo")]
CropViewer = Annotated[Principal, require("operator", "dpo")]
MetricsReader = Annotated[Principal, require("admin", "monitor")]
#: An event's guest page: turned on and off, what guests may do.
EventOrganiser = Annotated[Principal, require("admin", "operator")]
