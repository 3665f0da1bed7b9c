"""The front ends' import direction: ``lethe.cli``, ``lethe.api`` and ``lethe.web`` are siblings.

Each package imports on its own in a fresh interpreter; the API and the pages never import each
other (what both use is ``lethe.http``, below them, and the read models of ``lethe.views``);
``lethe.service`` is the one module that composes the API and the pages into the app, and the
command line reaches them only through it (``lethe serve``). ``make lint`` checks the same
direction over the whole package with import-linter; these tests keep the promises that matter to
the front ends readable on their own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lethe

from conftest import child_env

PACKAGE = Path(lethe.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (``from x import y`` gives
    ``x`` and ``x.y``: ``y`` may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def _reaching(paths: list[Path], packages: tuple[str, ...]) -> set[str]:
    """``file: module`` for every import in ``paths`` of one of ``packages`` (or a module in them)."""
    return {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in paths
        for name in _imports(path)
        if name in packages or name.startswith(tuple(f"{p}." for p in packages))
    }


def _run_fresh(code: str) -> None:
    """Run ``code`` in a fresh interpreter (nothing of Lethe imported yet); it must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "module",
    [
        "lethe.web",
        "lethe.api",
        "lethe.cli",
        "lethe.http",
        "lethe.views",
        "lethe.service",
        "lethe.http.auth",
        "lethe.web.dpo",
        "lethe.api.routes.requests",
    ],
)
def test_each_front_end_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    _run_fresh(f"import {module}")


def test_the_api_and_the_pages_load_without_each_other() -> None:
    """Loading the whole API loads no page, loading every page loads no part of the API, and
    neither loads the app factory that composes them."""
    _run_fresh(
        "import sys, lethe.api\n"
        "assert not [m for m in sys.modules if m.startswith('lethe.web')], 'the API loaded the pages'\n"
        "assert 'lethe.service' not in sys.modules\n"
    )
    _run_fresh(
        "import sys, lethe.web\n"
        "assert not [m for m in sys.modules if m.startswith('lethe.api')], 'the pages loaded the API'\n"
        "assert 'lethe.service' not in sys.modules\n"
    )


def test_the_pages_never_import_the_api() -> None:
    web = _modules(PACKAGE / "web")
    assert len(web) >= 5, "the scan sees the web modules"
    assert _reaching(web, ("lethe.api", "lethe.service")) == set()


def test_the_api_never_imports_the_pages() -> None:
    api = _modules(PACKAGE / "api")
    assert len(api) >= 10, "the scan sees the API modules and its routes"
    assert _reaching(api, ("lethe.web", "lethe.service")) == set()


def test_the_shared_http_plumbing_imports_no_front_end() -> None:
    http = _modules(PACKAGE / "http")
    assert {p.stem for p in http} >= {"auth", "sessions", "state", "params", "uploads", "errors"}
    assert _reaching(http, ("lethe.api", "lethe.web", "lethe.cli", "lethe.service")) == set()


def test_only_the_service_composes_the_api_and_the_pages() -> None:
    """The pages are installed by ``lethe.service`` alone, the API's routes too; the command line
    imports the service (``lethe serve``), never the API, the pages or their plumbing."""
    outside_web = [p for p in _modules(PACKAGE) if not p.is_relative_to(PACKAGE / "web")]
    assert {r.split(":")[0] for r in _reaching(outside_web, ("lethe.web",))} == {"service.py"}
    outside_api = [p for p in _modules(PACKAGE) if not p.is_relative_to(PACKAGE / "api")]
    assert {r.split(":")[0] for r in _reaching(outside_api, ("lethe.api",))} == {"service.py"}
    cli = _modules(PACKAGE / "cli")
    assert _reaching(cli, ("lethe.api", "lethe.web", "lethe.http")) == set()
    assert any(n == "lethe.service" for p in cli for n in _imports(p)), "lethe serve starts the service"


def test_the_read_models_sit_below_the_front_ends() -> None:
    """``lethe.views`` is what the front ends read through: it imports none of them."""
    names = _imports(PACKAGE / "views.py")
    assert not {n for n in names if n.startswith(("lethe.api", "lethe.web", "lethe.cli", "lethe.http"))}
    routes = _modules(PACKAGE / "api" / "routes")
    readers = {p.name for p in routes if any(n.startswith("lethe.views") for n in _imports(p))}
    assert {"service.py", "sources.py", "requests.py", "oversight.py", "admin.py"} <= readers
