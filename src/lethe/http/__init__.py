"""What the JSON API (:mod:`lethe.api`) and the web pages (:mod:`lethe.web`) share, one layer below
both: the HTTP plumbing of the one service they form.

- ``auth``: who is calling (:class:`~lethe.http.auth.Principal`: API token or login session), CSRF,
  and the role dependencies;
- ``sessions``: the signed session cookie and its CSRF token, the session key file;
- ``state``: what a running app holds (:class:`~lethe.http.state.AppState`: engine, users, signers,
  limits, metrics, ingest jobs) and the signed crop links;
- ``jobs``, ``metrics``, ``ratelimit``: the background ingest jobs, the Prometheus counters and the
  token buckets the state holds;
- ``params``, ``uploads``: request parameters (row ids) and how uploaded photos are read and limited;
- ``errors``: the one JSON error shape and :class:`~lethe.http.errors.ApiError`.

HTTP status codes live in the HTTP packages only (here and in :mod:`lethe.api`, whose ``errors``
maps Lethe's error tree to them). Nothing here imports the API's routes, the pages, or the app
factory (:mod:`lethe.service`), so both front ends build on it without knowing each other.
"""
