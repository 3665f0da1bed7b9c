"""What every page shares: the templates, who is looking (the login session), the navigation, and
the login redirect, 403 and 404 pages.

A page needs a login session (the ``lethe_session`` cookie of ``POST /login``), never an API token:
without one it redirects to ``/login?next=<the page>``; with a session but without the page's role it
answers a 403 page. The pages read through the same read models as the JSON API (:mod:`lethe.views`,
so a page shows what the API would answer the same user), and every change goes through the JSON API
from the browser with the session's CSRF token (``<meta name="csrf-token">``, sent back as
``X-CSRF-Token``).

The pages and the JSON API are independent siblings: what they share (who is calling, the session
cookie, the app's state, shared parameters and upload limits) is :mod:`lethe.http`, below both;
:mod:`lethe.service` composes both into one app, above both. The pages never import the API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from lethe.http.auth import Principal
from lethe.http.sessions import SESSION_COOKIE, safe_next
from lethe.http.state import AppState, app_state
from lethe.privacy.pages import counted

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

READERS = ("admin", "operator", "dpo")

#: The navigation: (path, label, roles that may open it). A user sees only the pages its roles allow.
NAV: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("/", "Dashboard", READERS),
    ("/search", "Search", ("operator",)),
    ("/ingest", "Ingest", ("operator",)),
    ("/sources", "Sources", READERS),
    ("/consents", "Consents", ("admin", "dpo")),
    ("/requests", "Requests", ("dpo",)),
    ("/audit", "Audit", ("dpo",)),
    ("/incidents", "Incidents", ("admin", "dpo")),
    ("/orders", "Orders", ("admin", "dpo")),
    ("/assessments", "Assessments", ("admin", "dpo")),
    ("/users", "Users", ("admin",)),
)

#: Pages load scripts and styles from /static only; crops and photos come from this site (or a
#: ``blob:`` preview of a file the user picked). No inline script, no framing, forms post here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _parse(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def fmt_day(value: object) -> str:
    """``2026-05-14`` (UTC)."""
    when = _parse(value)
    return when.astimezone(UTC).strftime("%Y-%m-%d") if when else "—"


def fmt_time(value: object) -> str:
    """``2026-05-14 13:02 UTC``."""
    when = _parse(value)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else "—"


def fmt_due(value: object) -> str:
    """How far away a due date is, in words: ``in 12 days``, ``today``, ``3 days ago``."""
    when = _parse(value)
    if when is None:
        return ""
    days = (when.astimezone(UTC).date() - datetime.now(UTC).date()).days
    if days == 0:
        return "today"
    if days > 0:
        return f"in {days} day{'s' if days != 1 else ''}"
    return f"{-days} day{'s' if days != -1 else ''} ago"


def humanize(value: object) -> str:
    """``in_review`` → ``in review``."""
    return str(value).replace("_", " ")


def basename(value: object) -> str:
    """The last part of a path or URI (``upload:a.jpg`` → ``a.jpg``)."""
    text = str(value)
    return text.rsplit("/", 1)[-1].split(":", 1)[-1] or text


def plain(value: object) -> str:
    """A value of an audit entry or an outcome in words: lists joined, nothing shown as a dash."""
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{humanize(k)} {plain(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


_HASH = re.compile(r"[0-9a-f]{32,}")


def is_hash(value: object) -> bool:
    """A hex digest (a sha256, a chain hash): the audit page shows it shortened, the full value in
    its title and copy button."""
    return isinstance(value, str) and _HASH.fullmatch(value) is not None


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.tests["hash"] = is_hash
templates.env.filters.update(
    day=fmt_day, time=fmt_time, due=fmt_due, words=humanize, basename=basename, plain=plain, counted=counted
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user looking at a page, and its session's CSRF token."""

    principal: Principal
    csrf: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def roles(self) -> tuple[str, ...]:
        return self.principal.user.roles

    def can(self, *roles: str) -> bool:
        return self.principal.user.has_any(roles)

    @property
    def nav(self) -> list[tuple[str, str]]:
        return [(path, label) for path, label, roles in NAV if self.can(*roles)]


class LoginRequired(Exception):
    """No valid session: go to the login page, then come back."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class PageForbidden(Exception):
    def __init__(self, viewer: Viewer, roles: tuple[str, ...]) -> None:
        super().__init__(", ".join(roles))
        self.viewer = viewer
        self.roles = roles


class PageNotFound(Exception):
    def __init__(self, viewer: Viewer | None, message: str) -> None:
        super().__init__(message)
        self.viewer = viewer
        self.message = message


async def current_viewer(request: Request) -> Viewer | None:
    """The user of the request's login session, or None (no, expired, forged or ended session;
    disabled user)."""
    state: AppState = app_state(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    session = state.sessions.loads(cookie) if cookie else None
    if session is None:
        return None
    user = await run_in_threadpool(state.users.get_by_id, session.user_id)
    if user is None or not user.active or user.session_generation != session.generation:
        return None
    return Viewer(Principal(user, "session"), session.csrf)


def page_for(*roles: str) -> Any:
    """A dependency: the viewer, who must hold one of ``roles`` (login redirect or 403 page otherwise)."""
    wanted = tuple(roles)

    async def dependency(request: Request) -> Viewer:
        viewer = await current_viewer(request)
        if viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        if not viewer.can(*wanted):
            raise PageForbidden(viewer, wanted)
        return viewer

    return Depends(dependency)


State = Annotated[AppState, Depends(app_state)]
AnyReader = Annotated[Viewer, page_for(*READERS)]
OperatorPage = Annotated[Viewer, page_for("operator")]
DpoPage = Annotated[Viewer, page_for("dpo")]
OrdersPage = Annotated[Viewer, page_for("admin", "dpo")]
LedgerPage = Annotated[Viewer, page_for("admin", "dpo")]
IncidentPage = Annotated[Viewer, page_for("admin", "dpo")]
AdminPage = Annotated[Viewer, page_for("admin")]


def render(
    request: Request, template: str, viewer: Viewer | None, *, status: int = 200, **context: object
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "path": request.url.path, **context},
        status_code=status,
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


def login_url(target: str) -> str:
    safe = safe_next(target)
    return "/login" if safe in (None, "/") else f"/login?next={quote(safe or '/', safe='/')}"


async def _login_required(_request: Request, exc: Exception) -> Response:
    return RedirectResponse(login_url(cast(LoginRequired, exc).target), status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    forbidden = cast(PageForbidden, exc)
    return render(
        request,
        "error.html",
        forbidden.viewer,
        status=403,
        heading="Not for your role",
        message=f"This page needs the role {' or '.join(forbidden.roles)}; you are logged in as "
        f"{forbidden.viewer.name} ({', '.join(forbidden.viewer.roles) or 'no role'}).",
    )


async def _not_found(request: Request, exc: Exception) -> Response:
    missing = cast(PageNotFound, exc)
    return render(
        request, "error.html", missing.viewer, status=404, heading="Not found", message=missing.message
    )


def install_handlers(app: FastAPI) -> None:
    handlers: dict[type[Exception], Callable[[Request, Exception], Any]] = {
        LoginRequired: _login_required,
        PageForbidden: _forbidden,
        PageNotFound: _not_found,
    }
    for cls, handler in handlers.items():
        app.add_exception_handler(cls, handler)
