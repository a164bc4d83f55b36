"""Writes of the admin app: operations on the cache."""

from __future__ import annotations

import logging

from techbirdsfly.cache import clear_app

logger = logging.getLogger("techbirdsfly.admin")


def cache_app_clear(*, app: str, actor: str) -> int:
    """Remove every key of ``app`` (SCAN + UNLINK; other apps' keys stay). Raises CacheUnavailable.

    Nothing is lost: the cache is never the only copy, so the next reads recompute from the database.
    """
    deleted = clear_app(app)
    # Clearing a namespace makes every following read a miss; the log says who and when.
    logger.warning("cache of %s cleared by %s: %d key(s) removed", app, actor, deleted)
    return deleted
