"""The front ends' import direction: ``lethe.web`` and ``lethe.api`` each import on their own in a
fresh interpreter, the pages never reach the API's routes or its app (they read through
``lethe.views``), and ``lethe.api.app`` is the one module that installs the pages."""

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
    "module", ["lethe.web", "lethe.api", "lethe.views", "lethe.api.auth", "lethe.web.dpo"]
)
def test_each_front_end_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    _run_fresh(f"import {module}")


def test_importing_the_api_package_does_not_build_the_app() -> None:
    """``lethe.api``'s building blocks load without the app (and its pages): ``create_app`` is
    imported on first use, and ``from lethe.api import create_app`` still works."""
    _run_fresh(
        "import sys, lethe.api, lethe.api.auth\n"
        "assert 'lethe.api.app' not in sys.modules and 'lethe.web' not in sys.modules\n"
        "from lethe.api import create_app\n"
        "assert callable(create_app) and 'lethe.web' in sys.modules\n"
    )


def test_the_pages_never_import_the_api_routes_or_app() -> None:
    web = _modules(PACKAGE / "web")
    assert len(web) >= 5, "the scan sees the web modules"
    reaching = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in web
        for name in _imports(path)
        if name == "lethe.api"
        or name.startswith(("lethe.api.routes", "lethe.api.app"))
        or name == "lethe.api.create_app"
    }
    assert reaching == set()


def test_only_the_app_installs_the_pages() -> None:
    users = {
        str(path.relative_to(PACKAGE))
        for path in _modules(PACKAGE)
        if not path.is_relative_to(PACKAGE / "web")
        for name in _imports(path)
        if name == "lethe.web" or name.startswith("lethe.web.")
    }
    assert users == {"api/app.py"}


def test_the_read_models_sit_below_the_front_ends() -> None:
    """``lethe.views`` is what both front ends read through: it imports neither of them."""
    names = _imports(PACKAGE / "views.py")
    assert not {n for n in names if n.startswith(("lethe.api", "lethe.web", "lethe.cli"))}
    routes = _modules(PACKAGE / "api" / "routes")
    readers = {p.name for p in routes if any(n.startswith("lethe.views") for n in _imports(p))}
    assert {"service.py", "sources.py", "requests.py", "oversight.py", "admin.py"} <= readers
