"""Request latency for GET /metrics, labelled so that the number of series stays bounded.

Labels are the method, the URL *pattern* (``api/billing/summary/<id:account_id>``, never the raw
path: one series per account would grow without end) and the status code. Under gunicorn the
histogram lives in PROMETHEUS_MULTIPROC_DIR like the cache counters, so any worker reports all.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import Histogram

from techbirdsfly.cache import APPS
from techbirdsfly.cache.stats import COMPUTES, ERRORS, HITS, INVALIDATION_ERRORS, MISSES

REQUEST_LATENCY = Histogram(
    "techbirdsfly_http_request_duration_seconds",
    "Time from the first middleware to the response, per route",
    ["method", "route", "status"],
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
STATIC = "<static>"


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.route or match.view_name or UNMATCHED
    # WhiteNoise answers static files before URL resolution.
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return STATIC
    return UNMATCHED


class RequestLatencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Every app's cache counters exist from the start at 0, so /metrics always lists them and a
        # scraper's rate() sees the first increment. Here rather than in AppConfig.ready, because only
        # a server builds middleware: a management command run with the server's
        # PROMETHEUS_MULTIPROC_DIR (to read its totals) then leaves no files of its own there.
        for counter in (HITS, MISSES, ERRORS, COMPUTES, INVALIDATION_ERRORS):
            for app in APPS:
                counter.labels(app)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        REQUEST_LATENCY.labels(method, route_of(request), str(response.status_code)).observe(
            time.perf_counter() - start
        )
        return response
