"""What every command shares: the engine context, JSON output, exit codes, the acting user.

Exit codes (the one place they live): 0 success; 1 an unexpected Lethe error or a conflict; 2 bad
input, settings or usage; 3 something named does not exist; 4 refused by a privacy rule (no lawful
basis, restricted source, shredded key, wrong request state); 5 a model could not be loaded; 6 the
audit chain is broken or a signature does not verify.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from lethe.config import Settings
from lethe.engine import Lethe
from lethe.errors import (
    ConfigError,
    InputError,
    LawfulBasisError,
    LetheError,
    ModelError,
    NotFoundError,
    PrivacyError,
)
from lethe.storage import atomic_write
from lethe.users import Users

err = Console(stderr=True)
out = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


_ACTOR_OPTION: ContextVar[str | None] = ContextVar("lethe_cli_actor", default=None)
_ENGINE: ContextVar[Lethe | None] = ContextVar("lethe_cli_engine", default=None)
_ACTOR_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")

#: ``lethe --actor NAME ...`` (the app's callback), or a command's own ``--actor`` passed to actor().
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who acts, for the audit log: an existing user, or a local administrator identity "
        "(default: LETHE_ACTOR).",
        show_default=False,
    ),
]


def set_actor(name: str | None) -> None:
    """Remember ``--actor`` given before the command (``lethe --actor NAME COMMAND``)."""
    _ACTOR_OPTION.set(name)


def _os_account() -> str:
    """The operating-system account running the command, from the process's uid (never from
    ``$LOGNAME``/``$USER``, which anyone can set)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def actor(name: str | None = None, *, role: str | None = None) -> str:
    """Who is acting, for the audit log: ``name`` (a command's own ``--actor``), else ``lethe
    --actor NAME``, else the ``LETHE_ACTOR`` setting; ``cli:NAME@ACCOUNT`` with the operating-system
    account from the process's uid. Neither given: the command stops (exit 2) with a one-line
    reason naming both. Inside :func:`engine_from_settings`, a name that is an existing user must be
    active (and hold ``role`` when one is asked for); any other name is a local administrator
    identity (docs/cli.md, "Who acts"). Read-only commands never call it."""
    engine = _ENGINE.get()
    chosen = name or _ACTOR_OPTION.get()
    if not chosen:
        try:
            chosen = engine.settings.actor if engine is not None else Settings.load().actor
        except ConfigError as exc:
            fail(str(exc), 2)
    if not chosen:
        fail("no acting identity: pass --actor NAME or set LETHE_ACTOR (the audit log names who acted)", 2)
    if not _ACTOR_NAME.fullmatch(chosen):
        fail(f"--actor / LETHE_ACTOR must be 1-64 of A-Z a-z 0-9 _ . @ -, got {chosen!r}", 2)
    if engine is not None:
        _check_user(engine, chosen, role)
    return f"cli:{chosen}@{_os_account()}"


def _check_user(engine: Lethe, name: str, role: str | None) -> None:
    users = Users(engine.catalog)
    try:
        user = users.get(name)
    except NotFoundError:
        return  # a local administrator identity
    if not user.active:
        fail(f"actor {name} is a disabled user: act as another identity", 4)
    if role is not None and not user.has_any([role, "admin"]):
        fail(f"actor {name} does not hold the {role} role", 4)


def exit_code(exc: LetheError) -> int:
    if isinstance(exc, NotFoundError):
        return 3
    if isinstance(exc, LawfulBasisError | PrivacyError):
        return 4
    if isinstance(exc, ModelError):
        return 5
    if isinstance(exc, InputError | ConfigError):
        return 2
    return 1


def fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"error: {message.splitlines()[0] if message else 'failed'}\n")
    raise typer.Exit(code)


@contextmanager
def engine_from_settings(**overrides: Any) -> Iterator[Lethe]:
    try:
        settings = Settings.load(**{k: v for k, v in overrides.items() if v is not None})
        engine = Lethe(settings)
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    token = _ENGINE.set(engine)
    try:
        yield engine
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    finally:
        _ENGINE.reset(token)
        engine.close()


def emit(as_json: bool, payload: dict[str, Any], human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        human()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON to ``path`` (atomically), or fail with exit code 2."""
    try:
        atomic_write(path, json.dumps(payload, indent=2, default=str).encode(), durable=False)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", 2)
