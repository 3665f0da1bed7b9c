"""The JSON API's routers and how they attach to an app (:func:`install`), with the description of
its OpenAPI schema.

The app itself (engine, state, middleware, the pages beside the API) is composed by
:func:`lethe.service.create_app`, one layer above this package.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from lethe.api import errors
from lethe.api.routes import (
    admin,
    assessments,
    consents,
    disclosures,
    documents,
    guest,
    incidents,
    ingest,
    login,
    monitoring,
    notices,
    oversight,
    portal,
    requests,
    search,
    service,
    sources,
    users,
    uses,
    verification,
)

DESCRIPTION = """\
The API of Lethe, face search that obeys data-protection law by construction.

Authenticate with `Authorization: Bearer <token>` (`lethe token create USER`) or the session cookie of
`POST /login` (then send the CSRF token in `X-CSRF-Token` with every POST). Roles: `admin`,
`operator`, `dpo`, `monitor`. Every error has the body
`{"error": {"code": ..., "message": ..., "status": ...}}`. See docs/api.md.
"""

#: Every route of the API, in the order the schema lists them.
router = APIRouter()
for _module in (
    service,
    login,
    sources,
    consents,
    ingest,
    search,
    requests,
    portal,
    guest,
    notices,
    admin,
    oversight,
    monitoring,
    incidents,
    uses,
    verification,
    users,
    disclosures,
    assessments,
    documents,
):
    router.include_router(_module.router)


def install(app: FastAPI) -> None:
    """Add the API's routes and the handlers that turn every error into the one JSON error shape."""
    errors.install(app)
    app.include_router(router)
