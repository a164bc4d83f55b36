"""System checks of the project's own settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

SCOPE_MIDDLEWARE = "techbirdsfly.cache.middleware.RequestCacheMiddleware"


@register()
def request_cache_middleware(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Without it no request has a Redis budget (a slow Redis would hold it a socket timeout a call)
    and no read-ahead (two round trips a cached GET)."""
    if SCOPE_MIDDLEWARE in settings.MIDDLEWARE:
        return []
    return [
        Error(
            f"{SCOPE_MIDDLEWARE} is not in MIDDLEWARE",
            hint="Put it near the top: it opens each request's cache scope (its Redis budget and its one read).",
            id="techbirdsfly.E001",
        )
    ]
