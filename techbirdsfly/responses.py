from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from .cache import Cached


def cached_response(result: Cached[Any], status: int = 200) -> Response:
    """API.md: every cached read answers ``{"fromCache": bool, "data": ...}``."""
    return Response({"fromCache": result.from_cache, "data": result.value}, status=status)
