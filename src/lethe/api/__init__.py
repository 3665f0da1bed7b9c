"""The HTTP service: a FastAPI app over the engine (``create_app``), run by ``lethe serve``.

Run it elsewhere with ``uvicorn --factory lethe.api:create_app`` (settings from ``LETHE_*``).

Layers inside, top first: ``app`` (the one place that assembles the service: routers, the web pages
of :mod:`lethe.web`, middleware, the lifespan) → ``routes`` (one router per area) → the building
blocks the routes and the web pages share (``auth``, ``sessions``, ``state``, ``params``,
``uploads``, ``errors``, ...). ``create_app`` is imported on first use, so importing a building
block (as :mod:`lethe.web` does) never builds the app and its pages first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lethe.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from lethe.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
