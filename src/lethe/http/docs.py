"""Swagger UI at ``/docs``, only when ``LETHE_API_DOCS`` is on, and then from local files only.

The page used to load ``swagger-ui-dist@5`` from a CDN (a floating version, no integrity check)
into the app's origin, where a compromised package or CDN would run with the user's session (security
review, finding 12). Now ``/docs`` is off by default (``/openapi.json`` stays, for any viewer the
reader trusts); turned on, it serves the JavaScript and CSS that the ``swagger-ui-bundle`` package
installed next to Lethe (pinned by the installation, never fetched at run time), and its own start
script, under a CSP that allows scripts and styles from this site only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from lethe.errors import ConfigError
from lethe.http.errors import ApiError

#: The only files served from the package.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_START = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n'
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Lethe API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/start.js"></script>
</body>
</html>
"""


def swagger_ui_folder() -> Path:
    """The Swagger UI files of the installed ``swagger-ui-bundle`` package; ConfigError without it."""
    try:
        import swagger_ui_bundle  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise ConfigError(
            "LETHE_API_DOCS=true needs the package swagger-ui-bundle (pip install swagger-ui-bundle); "
            "Swagger UI is never loaded from a CDN"
        ) from exc
    folder = Path(str(swagger_ui_bundle.swagger_ui_path))
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"swagger-ui-bundle at {folder} lacks {', '.join(missing)}")
    return folder


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"}


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its files (checked now: a missing package stops the start)."""
    folder = swagger_ui_folder()

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE, headers=_headers())

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name == "start.js":
            return Response(_START, media_type="text/javascript", headers=_headers())
        media_type = ASSETS.get(name)
        if media_type is None:
            raise ApiError(404, "not_found", "no such file")
        return Response((folder / name).read_bytes(), media_type=media_type, headers=_headers())
