from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse

from .exceptions import DATABASE_ERRORS, DATABASE_UNAVAILABLE

logger = logging.getLogger("techbirdsfly")


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
