"""Service users' passwords: no scrypt runs when ``lethe.users`` is imported, and a login costs one
scrypt with the same parameters whether or not the name it gives belongs to a user (so its time does
not tell which names exist). Real catalog; ``hashlib.scrypt`` is only counted, never replaced."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from typing import Any

import pytest

from lethe.engine import Lethe
from lethe.users import Users

from conftest import child_env

PASSWORD = "correct horse battery staple"

COUNT_SCRYPT_ON_IMPORT = """
import hashlib
calls = []
real = hashlib.scrypt
def counting(*args, **kwargs):
    calls.append(kwargs)
    return real(*args, **kwargs)
hashlib.scrypt = counting
import lethe.users
assert "lethe.users" in __import__("sys").modules
print(len(calls))
"""


def test_importing_the_module_runs_no_scrypt() -> None:
    run = [sys.executable, "-c", COUNT_SCRYPT_ON_IMPORT]
    out = subprocess.run(run, env=child_env(), capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The parameters of every ``hashlib.scrypt`` call from here on (the real one still runs)."""
    calls: list[dict[str, Any]] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kwargs: Any) -> bytes:
        calls.append(kwargs | {"salt": len(kwargs["salt"])})
        return real(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def test_a_login_costs_one_scrypt_whether_or_not_the_user_exists(
    engine: Lethe, scrypt_calls: list[dict[str, Any]]
) -> None:
    users = Users(engine.catalog)
    users.create("alice", ["operator"], actor="test", password=PASSWORD)
    scrypt_calls.clear()
    tries = [
        ("nobody", PASSWORD, False),  # the first login naming nobody: no extra scrypt to prepare it
        ("nobody", PASSWORD, False),
        ("someone-else", "another password", False),
        ("alice", "wrong password here", False),
        ("alice", PASSWORD, True),
    ]
    for name, password, accepted in tries:
        before = len(scrypt_calls)
        user = users.authenticate(name, password)
        assert (user is not None) == accepted
        assert len(scrypt_calls) == before + 1, name
    # The same work each time: the parameters of alice's stored hash.
    assert all(call == scrypt_calls[-1] for call in scrypt_calls)
