"""Users and API tokens of the web service: ``lethe user ...``, ``lethe token ...``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from lethe.catalog import Catalog
from lethe.cli._support import JsonOpt, actor, emit, err, exit_code, fail, out
from lethe.config import MAX_TOKEN_DAYS, Settings
from lethe.errors import LetheError
from lethe.users import ROLES, Users

user_app = typer.Typer(no_args_is_help=True, help="Users of the web service and their roles.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens (shown once, stored hashed).")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")


@contextmanager
def _users() -> Iterator[Users]:
    """Users over the catalog alone (no models, no index, no keys needed)."""
    try:
        settings = Settings.load()
        settings.ensure_data_dir()
        catalog = Catalog(settings.resolved_catalog_url)
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    try:
        yield Users(catalog, settings)
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    finally:
        catalog.close()


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: Annotated[list[str], typer.Option(help=f"A role (repeat for more): {', '.join(ROLES)}.")],
    as_json: JsonOpt = False,
) -> None:
    """Create a user; prints its generated password once."""
    with _users() as users:
        user, password = users.create(name, role, actor=actor())
    emit(
        as_json,
        user.as_dict() | {"password": password},
        lambda: out.print(
            f"user {user.name} ({', '.join(user.roles)}) created; password (shown once): {password}"
        ),
    )


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """Users and their roles."""
    with _users() as users:
        rows = users.list_users()

    def human() -> None:
        table = Table("id", "name", "roles", "created", "disabled")
        for u in rows:
            disabled = f"{u.disabled_at:%Y-%m-%d}" if u.disabled_at else ""
            table.add_row(str(u.id), u.name, ", ".join(u.roles), f"{u.created_at:%Y-%m-%d}", disabled)
        out.print(table)

    emit(as_json, {"users": [u.as_dict() for u in rows]}, human)


@user_app.command("reset-password")
def user_reset_password(name: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Give the user a new generated password (printed once); the old one stops working, their
    sessions end and every API token of theirs is revoked."""
    with _users() as users:
        reset = users.reset_password(name, actor=actor())
    revoked = reset.tokens_revoked

    def human() -> None:
        out.print(f"new password for {name}: {reset.password}", highlight=False)
        err.print(
            f"their sessions ended; {len(revoked)} API token(s) of theirs revoked"
            + (f" ({', '.join(map(str, revoked))}): make new ones" if revoked else "")
        )

    emit(as_json, {"user": name, "password": reset.password, "tokens_revoked": list(revoked)}, human)


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """The user can no longer log in; their sessions end and their API tokens are revoked."""
    with _users() as users:
        user = users.disable(name, actor=actor())
    emit(as_json, user.as_dict(), lambda: err.print(f"user {name} disabled; their API tokens revoked"))


@user_app.command("enable")
def user_enable(name: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Let a disabled user log in again; old sessions and tokens stay dead (they make new ones)."""
    with _users() as users:
        user = users.enable(name, actor=actor())
    emit(
        as_json,
        user.as_dict(),
        lambda: err.print(f"user {name} enabled: they log in again; their old tokens stay revoked"),
    )


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="Whose token.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    days: Annotated[
        int | None,
        typer.Option(help=f"Lifetime in days, 1 to {MAX_TOKEN_DAYS} (default LETHE_TOKEN_DAYS, 90)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token; prints it once (only its hash is stored). It expires after --days."""
    with _users() as users:
        token, secret = users.create_token(user, label=label, actor=actor(), days=days)
    emit(
        as_json,
        token.as_dict() | {"token": secret},
        lambda: out.print(
            f"token {token.id} for {token.user} (shown once, expires {token.expires_at:%Y-%m-%d %H:%M} UTC): "
            f"{secret}",
            highlight=False,
        ),
    )


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tokens (never the token itself)."""
    with _users() as users:
        rows = users.tokens(user)

    def human() -> None:
        table = Table("id", "user", "label", "created", "expires", "last used", "state")
        for t in rows:
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else t.state
            table.add_row(
                str(t.id), t.user, t.label, f"{t.created_at:%Y-%m-%d}", f"{t.expires_at:%Y-%m-%d}",
                f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "", state,
            )  # fmt: skip
        out.print(table)

    emit(as_json, {"tokens": [t.as_dict() for t in rows]}, human)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id.")], as_json: JsonOpt = False
) -> None:
    """Revoke a token: it stops working at once."""
    with _users() as users:
        token = users.revoke_token(token_id, actor=actor())
    emit(as_json, token.as_dict(), lambda: err.print(f"token {token.id} of {token.user} revoked"))
