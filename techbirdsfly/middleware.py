from __future__ import annotations

import logging
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .cache.calls import request_cache_seconds
from .exceptions import DATABASE_ERRORS, DATABASE_UNAVAILABLE, ERROR_DETAILS, json_error

logger = logging.getLogger("techbirdsfly")


class BodySizeLimitMiddleware:
    """A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` answers 413 naming the limit, logged in one line.

    Django itself refuses it only when a view reads the body, with RequestDataTooBig: a 400 "Bad
    request." and a logged traceback, for what is the client's mistake. The nginx in front refuses
    the same bodies with the same 413 (one limit for both), so a client sees one answer with or
    without it. Judged by Content-Length, before any other middleware (and any Redis read) spends
    work on the request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads no body for a malformed length
        if limit is not None and length > limit:
            logger.warning(
                "refused %s %s: a body of %d bytes, over the limit of %d", request.method, request.path, length, limit
            )
            response = json_error(413, f"Request body too large (limit {limit} bytes).")
            response._has_been_logged = True  # the line above says more than django.request's would
            return response
        return self.get_response(request)


class CacheTimingMiddleware:
    """``Server-Timing: cache;dur=<ms>``: how long the request waited on Redis.

    The figure the request budget counts (techbirdsfly/cache/calls.py): Redis's answers timed by the
    kernel, not the time a thread waited for a CPU, so a client (or a fault test) can tell a slow
    cache from a busy machine.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        seconds = request_cache_seconds()
        if seconds is not None:
            response["Server-Timing"] = f"cache;dur={seconds * 1000:.1f}"
        return response


class DatabaseUnavailableMiddleware:
    """A lost database answers a JSON 503 from any view, not Django's HTML 500 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        if isinstance(exception, DATABASE_ERRORS):
            logger.error("database unavailable: %s", exception)
            response = JsonResponse(DATABASE_UNAVAILABLE, status=503)
            response["Retry-After"] = "5"
            return response
        return None


class ApiJsonErrorsMiddleware:
    """Every error under /api/ answers JSON, in debug mode too.

    handler404/handler500 (techbirdsfly/urls.py) answer JSON only when DEBUG is off: with DEBUG on,
    Django answers an unmatched URL (``/api/billing/summary/abc``) with technical_404_response and an
    exception with technical_500_response, both HTML, without calling the handlers. REST clients of
    the API must not see those pages when they talk to ``make run``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            detail = ERROR_DETAILS.get(status) or f"{HTTPStatus(status).phrase}."
            json_response = json_error(status, detail)
            for header in ("Retry-After", "Allow", "WWW-Authenticate"):
                if header in response:
                    json_response[header] = response[header]
            return json_response
        return response
