"""The API against hostile callers: schemathesis over the OpenAPI schema (no 5xx, ever), paths and ids
that broke the layers below, and a burst against the rate limits. (The portal's sameness for a person
in the gallery and a stranger is in test_api_requests.py; the role matrix in test_api_auth.py.)

The schemathesis run here is short (``LETHE_TEST_API_EXAMPLES`` examples per operation and mode,
default 4, the same examples every run); ``make soak`` runs it long, with random examples, and
``LETHE_TEST_API_REPORT=FILE`` writes what was tried (see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from lethe.engine import Lethe
from lethe.http.params import ROW_ID_MAX
from lethe.http.ratelimit import RateLimiter
from lethe.service import create_app
from lethe.users import ROLES, Users

from api_support import add_user, assert_error, bearer, serve
from conftest import make_settings

DEFAULT_EXAMPLES = 4


def _fuzz_data_folder(tmp_path: Path) -> tuple[Path, dict[str, object], str, int]:
    """A data folder with one user holding every role (so every operation gets past auth) and its
    token; the settings keep the fuzzer inside an empty ingest root and off the rate limits."""
    root = tmp_path / "ingest-root"
    root.mkdir()
    settings: dict[str, object] = {
        "ingest_root": root,
        "search_rate_per_minute": 1_000_000,
        "portal_rate_per_minute": 1_000_000,
        "login_rate_per_minute": 1_000_000,
    }
    data = tmp_path / "data"
    with Lethe(make_settings(data, **settings)) as engine:
        users = Users(engine.catalog)
        users.create("fuzzer", list(ROLES), actor="test", password="fuzzer-password-123")
        token, secret = users.create_token("fuzzer", label="schemathesis", actor="test")
    return data, settings, secret, token.id


def _fuzz(operation: Any, mode: Any, examples: int, secret: str, token_id: int) -> list[tuple[int, str]]:
    """Call one operation with schemathesis' generated requests: (status, curl command) of each."""
    import hypothesis

    calls: list[tuple[int, str]] = []

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=examples <= DEFAULT_EXAMPLES,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        params = {k: str(v) for k, v in (case.path_parameters or {}).items()}
        if params.get("token_id") == str(token_id) or params.get("name") == "fuzzer":
            return  # revoking the fuzzer's own token (or disabling it) would test only 401 from then on
        try:
            status = case.call(headers={"Authorization": f"Bearer {secret}"}).status_code
        except Exception as exc:  # the test client re-raises what the app did not handle: a 500
            calls.append((500, f"{exc!r}\n{case.as_curl_command()}"))
            return
        calls.append((status, case.as_curl_command() if status >= 500 else ""))

    with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # nothing invalid to make without input
        call()
    return calls


def test_no_operation_of_the_schema_answers_5xx(tmp_path: Path) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    examples = int(os.environ.get("LETHE_TEST_API_EXAMPLES", DEFAULT_EXAMPLES))
    data, settings, secret, token_id = _fuzz_data_folder(tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(make_settings(data, **settings)))
    statuses: Counter[int] = Counter()
    operations = 0
    server_errors: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            for status, curl in _fuzz(operation, mode, examples, secret, token_id):
                statuses[status] += 1
                if status >= 500:
                    server_errors.append(f"{operation.label}: {status}\n{curl}")

    report = os.environ.get("LETHE_TEST_API_REPORT")
    if report:
        summary = {
            "operations": operations,
            "examples_per_operation_and_mode": examples,
            "requests": statuses.total(),
            "server_errors": len(server_errors),
            "statuses": dict(sorted(statuses.items())),
            "failures": server_errors[:50],
        }
        Path(report).write_text(json.dumps(summary, indent=2))
    assert operations >= 40, "every operation of the schema is tried"
    assert statuses.total() >= operations * 2
    assert server_errors == []


# -- inputs that broke the layers below ------------------------------------------------------------


def test_ids_beyond_64_bits_are_refused_with_422_not_a_crash(tmp_path: Path) -> None:
    with serve(tmp_path / "data") as client:
        dpo = bearer(add_user(client, "dpo", "dpo"))
        admin = bearer(add_user(client, "admin", "admin"))
        for number in (ROW_ID_MAX + 1, 10**30):
            for method, path, headers in [
                ("GET", f"/api/requests/{number}", dpo),
                ("GET", f"/api/requests/1/photos/{number}", dpo),
                ("GET", f"/api/requests/{number}/photos/0/face", dpo),
                ("POST", f"/api/requests/1/candidates/{number}", dpo),
                ("POST", f"/api/objections/{number}/withdraw", dpo),
                ("POST", f"/api/tokens/{number}/revoke", admin),
                ("GET", f"/api/audit?before={number}", dpo),
            ]:
                response = client.request(method, path, headers=headers, json={"confirm": True})
                assert_error(response, 422, "validation_error")
        # the largest id is a plain "not found"
        assert_error(client.get(f"/api/requests/{ROW_ID_MAX}", headers=dpo), 404, "not_found")


def test_ingest_paths_that_cannot_be_resolved_or_leave_the_root_are_422(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "door").symlink_to(tmp_path / "outside")
    (root / "loop").symlink_to(root / "loop")
    with serve(tmp_path / "data", ingest_root=root) as client:
        operator = bearer(add_user(client, "op", "operator"))
        cases = {
            str(root / "photos\x00.csv"): "cannot be resolved",
            "~no-such-user-here/photos": "cannot be resolved",
            str(root / "loop"): "cannot be resolved|outside",
            str(root / ".." / "outside"): "outside",
            str(root / "photos" / ".." / ".." / "outside"): "outside",
            str(root / "door"): "outside",
            "/etc": "outside",
            "photos": "outside",  # relative paths are the service's working folder, not the root
        }
        for path, reason in cases.items():
            response = client.post("/api/ingest", headers=operator, json={"source": "x", "path": path})
            error = assert_error(response, 422, "invalid_input")
            assert any(word in str(error["message"]) for word in reason.split("|")), (path, error)


# -- rate limits under a burst ---------------------------------------------------------------------


def test_a_token_bucket_grants_exactly_its_capacity_to_a_concurrent_burst() -> None:
    limiter = RateLimiter(50, what="things", clock=lambda: 1000.0)  # no refill during the burst
    start = threading.Barrier(16)

    def hammer(_: int) -> int:
        start.wait()
        return sum(limiter.try_take("one-key") == 0.0 for _ in range(100))

    with ThreadPoolExecutor(16) as pool:
        granted = sum(pool.map(hammer, range(16)))
    assert granted == 50


def test_the_portal_limit_holds_under_a_concurrent_burst(tmp_path: Path) -> None:
    with serve(tmp_path / "data", portal_rate_per_minute=3) as client:
        form = {"kind": "erasure", "contact": "me@example.org"}
        start = threading.Barrier(12)

        def submit(_: int) -> int:
            start.wait()
            files = {"photos": ("p.jpg", b"not a photo", "image/jpeg")}
            return client.post("/api/portal/requests", data=form, files=files).status_code

        with ThreadPoolExecutor(12) as pool:
            codes = Counter(pool.map(submit, range(12)))
    assert codes == {415: 3, 429: 9}
