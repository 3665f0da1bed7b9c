"""Web login and logout: a signed session cookie plus its CSRF token (see lethe.http.sessions).

``POST /login`` is refused (403 ``csrf_failed``) when a browser says it comes from a page of another
site (its ``Origin`` or ``Referer``): another site cannot log a visitor into the attacker's account.
A failed login is audited (``login.failed``: the user's id or ``unknown``, a keyed hash of the client
address). Logout ends every session of the user at once (:meth:`lethe.users.Users.end_sessions`).

Failed logins are also counted per account name, whatever the address
(:mod:`lethe.http.login_backoff`): past ``LETHE_LOGIN_FAILURES`` within the window, attempts for
that name get 429 with ``Retry-After`` until the delay passes, without their password being checked
(the right one is refused the same way), each audited as ``login.failed`` with reason ``backoff``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from lethe.http.auth import Authenticated
from lethe.http.clients import address_hash, same_site
from lethe.http.errors import ApiError
from lethe.http.sessions import CSRF_COOKIE, SESSION_COOKIE, SessionSigner, safe_next
from lethe.http.state import AppState, app_state, client_ip

__all__ = ["client_ip", "router"]

router = APIRouter(tags=["login"])
State = Annotated[AppState, Depends(app_state)]


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
    if not same_site(request):
        raise ApiError(403, "csrf_failed", "a login must come from this site's own login page")
    address = client_ip(request)
    state.login_limit.check(address)
    client = address_hash(state.client_hash_key, address)
    refused = state.login_backoff.refusal(name)
    if refused is not None:  # checked before the password: the right one gets the same answer
        await run_in_threadpool(lambda: state.users.refuse_login(name, client=client))
        raise refused
    user = await run_in_threadpool(lambda: state.users.login(name, password, client=client))
    if user is None:
        state.login_backoff.failed(name)
        raise ApiError(401, "login_failed", "wrong user name or password, or the user is disabled")
    state.login_backoff.succeeded(name)
    session = SessionSigner.new(user.id, user.session_generation)
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
    caller: Authenticated,
    next: Annotated[str | None, Form(max_length=500)] = None,  # noqa: A002
) -> Response:
    """End the user's sessions, at once and on every device (the cookies are cleared too; needs the
    CSRF token like every cookie POST)."""
    state.users.end_sessions(caller.id, actor=caller.actor)
    target = safe_next(next)
    response: Response = (
        RedirectResponse(target, status_code=303) if target else JSONResponse({"logged_out": True})
    )
    secure = state.settings.cookie_secure
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=secure)
    response.delete_cookie(CSRF_COOKIE, samesite="lax", secure=secure)
    return response
