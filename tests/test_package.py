"""The package itself: what importing it costs, and errors that must stay inside the one tree."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lethe.errors import ConfigError, LetheError
from lethe.http.ratelimit import RateLimiter

#: Loaded by the engine, the catalog, the index and the models; none is needed to name an error.
HEAVY = ("faiss", "dlib", "sqlalchemy", "alembic", "onnxruntime", "cv2", "lethe.engine")


@pytest.mark.parametrize(
    "statement",
    [
        "import lethe.errors",
        "import lethe",
        "from lethe import LetheError",
        "from lethe.__main__ import main",
    ],
)
def test_importing_the_package_or_its_errors_loads_no_engine(statement: str) -> None:
    """``lethe/__init__.py`` loads its public names on first use, so naming an error does not
    import the engine and its libraries; nor does the console script's module, which every ingest
    worker spawned by the ``lethe`` command imports again as its ``__main__``."""
    probe = (
        f"{statement}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_the_public_names_still_load_on_first_use() -> None:
    probe = (
        "import sys, lethe\n"
        "assert 'lethe.engine' not in sys.modules\n"
        "from lethe import Lethe, Settings\n"
        "import lethe.config, lethe.engine\n"
        "assert Lethe is lethe.engine.Lethe and Settings is lethe.config.Settings\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


@pytest.mark.parametrize("rate", [0, -5])
def test_a_rate_limit_below_one_is_a_config_error(rate: int) -> None:
    with pytest.raises(ConfigError, match="at least 1") as caught:
        RateLimiter(rate, what="things")
    assert isinstance(caught.value, LetheError)
