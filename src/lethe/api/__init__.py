"""The JSON API under ``/api``: one router per area (``routes``), the table that turns Lethe's
errors into HTTP answers (``errors``), the access log and body limit (``middleware``), the service's
periodic maintenance and zip downloads.

:func:`install` adds the routes and the error handlers to an app. The app itself, with the web pages
beside the API, is composed one layer above, by :func:`lethe.service.create_app` (run it with
``lethe serve`` or ``uvicorn --factory lethe.service:create_app``). What the API shares with the
pages (who is calling, sessions, the app's state, parameters, upload limits) is :mod:`lethe.http`,
one layer below; the API never imports the pages, nor the pages the API.
"""

from lethe.api.router import DESCRIPTION, install, router

__all__ = ["DESCRIPTION", "install", "router"]
