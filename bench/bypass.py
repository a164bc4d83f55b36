"""The cache switched off: ``get_or_compute`` computes every time and nothing reads Redis ahead or sends ahead.

Installed before any app module imports either name (bench/wsgi.py), so every importer binds these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install() -> None:
    import techbirdsfly.cache
    from techbirdsfly.cache import readahead, reads
    from techbirdsfly.cache.calls import kind_of

    def get_or_compute(kind: str, key: str, compute: Callable[[], Any], **_: Any) -> reads.Cached[Any]:
        kind_of(kind)  # the same validation as the real one
        return reads.Cached(compute(), False)

    def read_ahead(*_: Any, **__: Any) -> None:
        # The authentication reads the token's record and the view's entries in one MGET before
        # validating; with the cache off that read would be wasted.
        return None

    def send_ahead(*_: Any, **__: Any) -> None:
        return None

    reads.get_or_compute = get_or_compute
    techbirdsfly.cache.get_or_compute = get_or_compute
    readahead.read_ahead = read_ahead
    readahead.send_ahead = send_ahead  # what RequestCacheMiddleware calls
    techbirdsfly.cache.read_ahead = read_ahead
