"""Users and API tokens (admin). Passwords and tokens are shown once, in the response that made them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from lethe.config import MAX_TOKEN_DAYS
from lethe.errors import PrivacyError
from lethe.http.auth import Admin
from lethe.http.errors import ApiError
from lethe.http.params import RowId
from lethe.http.state import AppState, app_state
from lethe.users import ROLES

router = APIRouter(prefix="/api", tags=["users"])
State = Annotated[AppState, Depends(app_state)]


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    roles: list[str] = Field(min_length=1, description=f"Any of: {', '.join(ROLES)}.")


class NewToken(BaseModel):
    label: str = Field(default="", max_length=200, description="What the token is for.")
    days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKEN_DAYS,
        description=f"Lifetime in days, 1 to {MAX_TOKEN_DAYS}; default `LETHE_TOKEN_DAYS` (90).",
    )


@router.post("/users", status_code=201)
def create_user(body: NewUser, state: State, caller: Admin) -> dict[str, object]:
    """Create a user; the answer holds its generated password, shown this once."""
    user, password = state.users.create(body.name, body.roles, actor=caller.actor)
    return user.as_dict() | {"password": password}


@router.get("/users")
def list_users(state: State, _caller: Admin) -> dict[str, object]:
    """Users and their roles (never a password hash)."""
    return {"users": [u.as_dict() for u in state.users.list_users()]}


@router.post("/users/{name}/reset-password")
def reset_password(name: str, state: State, caller: Admin) -> dict[str, object]:
    """Give the user a new generated password, in this answer only (shown once); the old one stops
    working, their sessions end and every API token of theirs is revoked (`tokens_revoked` lists
    them). Audited as `user.password`."""
    reset = state.users.reset_password(name, actor=caller.actor)
    return {"user": name, "password": reset.password, "tokens_revoked": list(reset.tokens_revoked)}


@router.post("/users/{name}/disable")
def disable_user(name: str, state: State, caller: Admin) -> dict[str, object]:
    """The user can no longer log in; every session ends and every token is revoked."""
    return state.users.disable(name, actor=caller.actor).as_dict()


@router.post("/users/{name}/enable")
def enable_user(name: str, state: State, caller: Admin) -> dict[str, object]:
    """A disabled user may log in again (409 when not disabled). Old sessions and tokens stay
    dead: the user logs in and makes new tokens."""
    return state.users.enable(name, actor=caller.actor).as_dict()


@router.post("/users/{name}/tokens", status_code=201)
def create_token(name: str, state: State, caller: Admin, body: NewToken | None = None) -> dict[str, object]:
    """A new API token for yourself (`name` is your own user name), valid `days` (default
    `LETHE_TOKEN_DAYS`, at most 365); the answer holds it, shown this once (stored hashed). A token
    for another user is refused (403) and the attempt audited: it would let an admin act, and be
    audited, as someone else. Other users make their own (log in) or get one from the host: `lethe
    token create NAME`."""
    try:
        token, secret = state.users.create_own_token(
            caller.user,
            name,
            label=body.label if body else "",
            actor=caller.actor,
            days=body.days if body else None,
        )
    except PrivacyError as exc:
        raise ApiError(403, "forbidden", str(exc)) from exc
    return token.as_dict() | {"token": secret}


@router.get("/tokens")
def list_tokens(
    state: State, _caller: Admin, user: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, object]:
    """Tokens (id, owner, label, dates, `state`: active, expired or revoked; never the token)."""
    return {"tokens": [t.as_dict() for t in state.users.tokens(user)]}


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: RowId, state: State, caller: Admin) -> dict[str, object]:
    """The token stops working at once."""
    return state.users.revoke_token(token_id, actor=caller.actor).as_dict()
