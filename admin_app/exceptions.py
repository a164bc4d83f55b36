from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException


class CacheOffline(APIException):
    """Redis cannot be reached, so an operation on the cache itself cannot run."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Redis is unavailable, so the cache cannot be listed or cleared now; try again shortly."
    default_code = "cache_unavailable"
    # DRF's exception handler turns ``wait`` into a Retry-After header.
    wait = 5
