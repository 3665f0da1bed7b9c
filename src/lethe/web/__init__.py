"""The web pages: server-rendered Jinja2 templates, a little vanilla JavaScript, no build step.

- ``public``: the login form and the data-subject portal (no login);
- ``operator``: dashboard, search, sources, ingest;
- ``dpo``: request queue and detail, review queue, audit log, orders;
- ``common``: templates, who is looking (login session), navigation by role, error pages.

The pages read through the same read models as the JSON API (:mod:`lethe.views`) and change data
only through the JSON API (from the browser, with the session's CSRF token), so the rules and the
audit are the API's. Pages need a login session: without one they redirect to ``/login``; with the
wrong role they answer a 403 page. :mod:`lethe.service` installs them (:func:`install`) beside the
API; they never import the API (what both use is :mod:`lethe.http`), so ``import lethe.web`` works
on its own.
"""

from lethe.web.common import STATIC_DIR, TEMPLATES_DIR
from lethe.web.routes import install, router

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "install", "router"]
