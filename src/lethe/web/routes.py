"""The web pages' router and how they attach to the app (``install``)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from lethe.web import admin, dpo, errors, guest, incidents, notice, operator, public
from lethe.web.common import STATIC_DIR, install_handlers

router = APIRouter(include_in_schema=False)
for _module in (public, notice, guest, operator, dpo, incidents, admin):
    router.include_router(_module.router)


def install(app: FastAPI) -> None:
    """Add the pages, their static files (``/static``), their login-redirect / 403 / 404 pages and
    the error pages browsers get (:mod:`lethe.web.errors`)."""
    install_handlers(app)
    errors.install(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
