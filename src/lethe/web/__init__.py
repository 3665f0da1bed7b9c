"""The web pages (server-rendered Jinja2 templates and static files) on top of :mod:`lethe.api`.

For now only a placeholder home page: the operator, DPO and portal pages are still to be built (issue
5); they call the same API and log in with ``POST /login``.
"""

from lethe.web.routes import STATIC_DIR, TEMPLATES_DIR, router

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "router"]
