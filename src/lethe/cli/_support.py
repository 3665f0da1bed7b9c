"""What every command shares: the engine context, JSON output, exit codes, the acting user.

Exit codes (the one place they live): 0 success; 1 an unexpected Lethe error or a conflict; 2 bad
input, settings or usage; 3 something named does not exist; 4 refused by a privacy rule (no lawful
basis, restricted source, shredded key, wrong request state); 5 a model could not be loaded; 6 the
audit chain is broken.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

err = Console(stderr=True)
out = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def actor() -> str:
    """Who is acting, for the audit log: the operating-system account running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


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
    try:
        yield engine
    except LetheError as exc:
        fail(str(exc), exit_code(exc))
    finally:
        engine.close()


def emit(as_json: bool, payload: dict[str, Any], human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        human()
