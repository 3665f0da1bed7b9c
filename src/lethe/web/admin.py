"""The admin's page of users and API tokens (``/users``): who may log in with which roles, a new
user with a one-time password, a password reset, disable and enable, tokens listed, made for
yourself and revoked. It reads through :class:`lethe.users.Users` and changes nothing itself: its
forms post to the JSON API (``/api/users``, ``/api/tokens``) with the session's CSRF token, so the
rules and the audit are the API's; a password or token is shown once, from the API's answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lethe.users import ROLES
from lethe.web.common import AdminPage, State, render

router = APIRouter()


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, state: State, viewer: AdminPage) -> HTMLResponse:
    """Users with their roles and state, and every API token (never the token itself)."""
    users = state.users.list_users()
    tokens = state.users.tokens(None)
    by_user: dict[str, list[dict[str, object]]] = {}
    for token in tokens:
        by_user.setdefault(token.user, []).append(token.as_dict())
    return render(
        request,
        "users.html",
        viewer,
        users=[u.as_dict() | {"active": u.active, "tokens": by_user.get(u.name, [])} for u in users],
        roles=ROLES,
        title="Users",
    )
