"""Helpers of the API tests: the real app over a real data folder, through Starlette's TestClient."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from lethe.service import create_app

from conftest import make_settings

PURPOSE = "test: api search"


@contextmanager
def serve(data_dir: Path, **settings: object) -> Iterator[TestClient]:
    """The real app (lifespan included: engine opened, then closed) over ``data_dir``. The tests make
    their own users, so the app does not create the first admin (test_api_auth.py tests that)."""
    with TestClient(create_app(make_settings(data_dir, **settings), first_admin=False)) as client:
        yield client


def add_user(client: TestClient, name: str, *roles: str) -> str:
    """Create a user with ``roles`` and return a fresh API token of theirs."""
    users = client.app.state.lethe.users  # type: ignore[attr-defined]
    users.create(name, roles, actor="test", password=f"{name}-password-123")
    _, secret = users.create_token(name, label="test", actor="test")
    return str(secret)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, name: str) -> str:
    """Log ``name`` (made by :func:`add_user`) in with a session cookie; its CSRF token."""
    client.cookies.clear()
    response = client.post("/login", data={"name": name, "password": f"{name}-password-123"})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    """The one error shape: exactly ``{"error": {"code", "message", "status"}}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert sorted(error) == ["code", "message", "status"]
    assert error["status"] == status
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def jpeg(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/jpeg")


def wait_for_job(
    client: TestClient, headers: dict[str, str], job_id: str, timeout_s: float = 120
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/api/ingest/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, object] = response.json()
        if job["state"] != "running":
            return job
        assert time.monotonic() < deadline, f"ingest job still running: {job}"
        time.sleep(0.1)
