"""The HTTP service: a FastAPI app over the engine (``create_app``), run by ``lethe serve``.

Run it elsewhere with ``uvicorn --factory lethe.api:create_app`` (settings from ``LETHE_*``).
"""

from lethe.api.app import create_app

__all__ = ["create_app"]
