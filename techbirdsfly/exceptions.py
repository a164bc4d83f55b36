"""JSON errors everywhere: DRF's shapes for API errors, 503 for a lost database, never an HTML page."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("techbirdsfly")

DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE = {"detail": "The database is unavailable; try again shortly."}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DATABASE_ERRORS):
        logger.error("database unavailable: %s", exc)
        return Response(DATABASE_UNAVAILABLE, status=503, headers={"Retry-After": "5"})
    return drf_exception_handler(exc, context)


# The detail of each error Django itself answers (the handlers below, and ApiJsonErrorsMiddleware in debug mode).
ERROR_DETAILS = {
    400: "Bad request.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    500: "Internal server error.",
}


def json_error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def bad_request(request, exception=None) -> JsonResponse:
    return json_error(400, ERROR_DETAILS[400])


def permission_denied(request, exception=None) -> JsonResponse:
    return json_error(403, ERROR_DETAILS[403])


def not_found(request, exception=None) -> JsonResponse:
    return json_error(404, ERROR_DETAILS[404])


def server_error(request) -> JsonResponse:
    return json_error(500, ERROR_DETAILS[500])
