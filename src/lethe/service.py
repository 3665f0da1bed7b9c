"""The service: the app factory that composes the JSON API (:mod:`lethe.api`) and the web pages
(:mod:`lethe.web`) into one app, with one engine per app, opened at startup and closed at shutdown.

It is the one module above both front ends: the API and the pages never import each other, nor this
module; what they share (auth, sessions, the app's state) is :mod:`lethe.http`. ``lethe serve``
starts it, or ``uvicorn --factory lethe.service:create_app`` (settings from ``LETHE_*``).

The factory is also where a new service gets its first user: on a data folder with no user at all it
creates ``admin`` (:func:`lethe.users.first_admin_password`), whether it was started by ``lethe serve``
or by ``uvicorn --factory lethe.service:create_app``, and shows the password once: on stderr when
stderr is a terminal; otherwise (systemd, Docker: stderr goes to a journal or container log kept for
good) in the file ``first-admin-password`` of the data folder (mode 0600), whose path alone goes to
stderr. The file is deleted at the first successful login of ``admin`` or when its password is reset.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from lethe import __version__
from lethe.api import DESCRIPTION
from lethe.api import install as install_api
from lethe.api.maintenance import Maintenance
from lethe.api.middleware import BodyLimitMiddleware, ObserveMiddleware
from lethe.config import Settings
from lethe.engine import Lethe
from lethe.http.clients import trusted_networks
from lethe.http.docs import install_docs
from lethe.http.jobs import IngestJobs
from lethe.http.login_backoff import LoginBackoff
from lethe.http.metrics import Metrics
from lethe.http.ratelimit import RateLimiter
from lethe.http.sessions import SessionSigner, load_session_key, session_key_path
from lethe.http.state import AppState, CropLinks
from lethe.http.uploads import PortalUploads, keep_uploads_in_memory
from lethe.keyring import MASTER_FILE
from lethe.users import Users, first_admin_password, write_first_password
from lethe.web import install as install_web

#: What the service writes to stderr, once, when it created the first user.
FIRST_ADMIN_NOTICE = (
    "\n  ==========================================================================\n"
    "  First start: created the user 'admin' (roles admin, operator, dpo).\n"
    "  Password (shown once, not stored anywhere in clear): {password}\n"
    "  Log in at /login, then create named users: lethe user add NAME --role ...\n"
    "  ==========================================================================\n\n"
)
#: What it writes instead when stderr is no terminal (a journal or a container log keeps it for good).
FIRST_ADMIN_FILE_NOTICE = (
    "\n  ==========================================================================\n"
    "  First start: created the user 'admin' (roles admin, operator, dpo).\n"
    "  Its password is in {path} (mode 0600; not written to this log).\n"
    "  The file is deleted once admin logs in (or its password is reset). Log in at /login,\n"
    "  then create named users: lethe user add NAME --role ...\n"
    "  ==========================================================================\n\n"
)


def show_first_password(settings: Settings, password: str) -> None:
    """Show the first admin's password once: on stderr when it is a terminal, else in the data
    folder's ``first-admin-password`` file (0600), with only the file's path on stderr."""
    if sys.stderr.isatty():
        sys.stderr.write(FIRST_ADMIN_NOTICE.format(password=password))
    else:
        sys.stderr.write(FIRST_ADMIN_FILE_NOTICE.format(path=write_first_password(settings, password)))
    sys.stderr.flush()


def create_app(
    settings: Settings | None = None,
    *,
    first_admin: bool = True,
    announce: Callable[[str], None] | None = None,
) -> FastAPI:
    """The service: the API under `/api`, the web pages at `/`, the schema at `/openapi.json`.

    With ``first_admin`` (the default) a data folder without any user gets the user ``admin`` now,
    its password shown once (:func:`show_first_password`: a terminal, or a 0600 file in the data
    folder until used; never a log, never stored in clear otherwise), or handed to ``announce``
    (``lethe serve`` shows it once the server listens, last); ``False`` leaves the users to the
    caller (the tests make their own)."""
    settings = settings or Settings.load()
    trusted = trusted_networks(settings.trusted_proxies)
    keep_uploads_in_memory(settings.max_upload_bytes)
    if first_admin:
        password = first_admin_password(settings)
        if password:
            (announce or partial(show_first_password, settings))(password)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_data_dir()
        key = load_session_key(session_key_path(settings))
        engine = Lethe(settings)
        try:
            state = AppState(
                settings=settings,
                engine=engine,
                users=Users(engine.catalog, settings),
                sessions=SessionSigner(key, max_age_s=settings.session_max_age_s),
                crop_links=CropLinks(key),
                metrics=metrics,
                jobs=IngestJobs(engine, on_progress=metrics.count_ingested),
                search_limit=RateLimiter(settings.search_rate_per_minute, what="searches"),
                portal_limit=RateLimiter(
                    settings.portal_rate_per_minute,
                    what="submissions",
                    global_rate_per_minute=settings.portal_global_rate_per_minute,
                ),
                login_limit=RateLimiter(settings.login_rate_per_minute, what="login attempts"),
                login_backoff=LoginBackoff(
                    settings.login_failures,
                    window_s=settings.login_failure_window_s,
                    max_s=settings.login_backoff_max_s,
                ),
                portal_uploads=PortalUploads(settings, engine.catalog),
                trusted_proxies=trusted,
                client_hash_key=key,
            )
            app.state.lethe = state
            maintenance = Maintenance(engine, settings.maintenance_interval_s)
            app.state.maintenance = maintenance
            maintenance.start()
            yield
        finally:
            running = getattr(app.state, "maintenance", None)
            if running is not None:
                running.stop()
            jobs = getattr(getattr(app.state, "lethe", None), "jobs", None)
            if jobs is not None:
                jobs.shutdown()
            engine.close()

    app = FastAPI(
        title="Lethe",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # Swagger UI only when LETHE_API_DOCS asks for it, from local files (below)
        redoc_url=None,
        openapi_url="/openapi.json",
    )

    def engine() -> Lethe:
        running: Lethe = app.state.lethe.engine
        return running

    metrics.gauge("lethe_index_vectors", "Vectors in the search index.", lambda: len(engine().index))
    metrics.gauge("lethe_faces", "Faces in the catalog.", lambda: engine().catalog.count_faces())
    metrics.gauge("lethe_images", "Photos in the catalog.", lambda: engine().catalog.count_images())
    metrics.gauge("lethe_sources", "Registered sources.", lambda: len(engine().catalog.sources()))
    app.add_middleware(
        BodyLimitMiddleware, limit=settings.max_upload_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    install_api(app)
    install_web(app)
    if settings.api_docs:
        install_docs(app)
    return app


def keys_warning(settings: Settings) -> str | None:
    """What to say at start-up when a key lives inside the data folder (the default): a copy or
    backup of the folder alone then opens every template and crop (security review, finding 15)."""
    data = settings.data_dir.resolve()
    keys = {
        "master key": settings.master_key_file or settings.data_dir / "keys" / MASTER_FILE,
        "session key": session_key_path(settings),
    }
    inside = {name: path for name, path in keys.items() if path.resolve().is_relative_to(data)}
    if not inside:
        return None
    listed = "; ".join(f"{name} {path}" for name, path in inside.items())
    return (
        f"\n  NOTE: keys inside the data folder ({listed}). A copy or backup of {data}\n"
        "  then holds the keys that open its templates and crops: keep the keys elsewhere\n"
        '  (LETHE_MASTER_KEY_FILE, LETHE_SESSION_SECRET_FILE; docs/operations.md, "Keys outside\n'
        '  the data folder") or back them up apart from the folder.\n\n'
    )
