"""Web login and logout: a signed session cookie plus its CSRF token (see lethe.http.sessions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from lethe.http.auth import Authenticated
from lethe.http.errors import ApiError
from lethe.http.sessions import CSRF_COOKIE, SESSION_COOKIE, SessionSigner, safe_next
from lethe.http.state import AppState, app_state

router = APIRouter(tags=["login"])
State = Annotated[AppState, Depends(app_state)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=None)
async def login(
    request: Request,
    state: State,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str | None, Form(max_length=500)] = None,  # noqa: A002 - the usual form field name
) -> Response:
    """Log in with a user name and password (form fields). Sets the session cookie (HttpOnly) and
    the CSRF cookie; answers `{user, roles, csrf_token}`, or a 303 redirect to `next` when given."""
    state.login_limit.check(client_ip(request))
    user = await run_in_threadpool(state.users.authenticate, name, password)
    if user is None:
        raise ApiError(401, "login_failed", "wrong user name or password, or the user is disabled")
    session = SessionSigner.new(user.id)
    target = safe_next(next)
    response: Response
    if target:
        response = RedirectResponse(target, status_code=303)
    else:
        response = JSONResponse({"user": user.name, "roles": list(user.roles), "csrf_token": session.csrf})
    secure = state.settings.cookie_secure
    max_age = state.settings.session_max_age_s
    response.set_cookie(
        SESSION_COOKIE,
        state.sessions.dumps(session),
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        CSRF_COOKIE, session.csrf, max_age=max_age, httponly=False, samesite="lax", secure=secure
    )
    return response


@router.post("/logout", response_model=None)
def logout(
    state: State,
    _caller: Authenticated,
    next: Annotated[str | None, Form(max_length=500)] = None,  # noqa: A002
) -> Response:
    """End the session (the cookies are cleared; needs the CSRF token like every cookie POST)."""
    target = safe_next(next)
    response: Response = (
        RedirectResponse(target, status_code=303) if target else JSONResponse({"logged_out": True})
    )
    secure = state.settings.cookie_secure
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=secure)
    response.delete_cookie(CSRF_COOKIE, samesite="lax", secure=secure)
    return response
