"""Lethe: a self-hosted face search engine that obeys data-protection law by construction.

The public names are loaded on first use (PEP 562 ``__getattr__``), so ``import lethe`` and
``import lethe.errors`` do not load the engine, FAISS, dlib, SQLAlchemy and Alembic (seconds):
code that needs only a part of Lethe pays only for that part. ``tests/test_docs_and_api.py`` pins
``__all__`` and fails when another public name appears here.
"""

import importlib as _importlib
import typing as _typing

from lethe.errors import LetheError

if _typing.TYPE_CHECKING:
    from lethe.config import Settings
    from lethe.engine import Lethe
    from lethe.privacy import SourceSpec
    from lethe.search import Match, SearchResult

__all__ = ["Lethe", "LetheError", "Match", "SearchResult", "Settings", "SourceSpec", "__version__"]
__version__ = "0.1.0"

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY: dict[str, str] = {
    "Lethe": "lethe.engine",
    "Match": "lethe.search",
    "SearchResult": "lethe.search",
    "Settings": "lethe.config",
    "SourceSpec": "lethe.privacy",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later uses are plain attribute lookups
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
