"""The cache switched off: ``get_or_compute`` computes every time and talks to no Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install() -> None:
    import techbirdsfly.cache
    from techbirdsfly.cache import reads
    from techbirdsfly.cache.calls import kind_of

    def get_or_compute(kind: str, key: str, compute: Callable[[], Any], **_: Any) -> reads.Cached[Any]:
        kind_of(kind)  # the same validation as the real one
        return reads.Cached(compute(), False)

    reads.get_or_compute = get_or_compute
    techbirdsfly.cache.get_or_compute = get_or_compute
