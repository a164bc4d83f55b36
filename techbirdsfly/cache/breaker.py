"""A per-process circuit breaker in front of Redis.

Socket timeouts bound one call; the breaker bounds a request: after one failure, calls are
skipped for ``cooldown`` seconds instead of each paying the timeout again. After the cooldown a
single caller probes Redis (half-open); its success closes the breaker and caching resumes.
The outage is logged once when it starts and once when it ends, not once per request.

A probe always ends half-open: in ``success``, in ``failure``, or in ``inconclusive`` when it ended
without telling either (its request ran out of time on a Redis that answered the connect and then
stalled, or an error that is not Redis's). A probe that ended in none of them would leave
``_probing`` set for good: no caller would probe again, and the process would not cache again until
restarted.

The breaker reads time through ``clock`` (``time.monotonic`` unless given one), so that a test can
move time past a cooldown instead of sleeping through it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("techbirdsfly.cache")


class CircuitBreaker:
    def __init__(self, name: str, cooldown: Callable[[], float], clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._cooldown = cooldown  # read on use, so that a settings change applies at once
        self.clock = clock
        self._lock = threading.Lock()
        self._open = False
        self._opened_at = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open

    def allow(self) -> bool:
        """May the caller talk to Redis now?"""
        if not self._open:
            return True
        with self._lock:
            if not self._open:
                return True
            if self._probing or self.clock() - self._opened_at < self._cooldown():
                return False
            self._probing = True  # this caller is the half-open probe
            return True

    def success(self) -> None:
        if not self._open:
            return
        with self._lock:
            if self._open:
                self._open = False
                self._probing = False
                logger.warning("Redis at %s is reachable again; caching resumed", self.name)

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            was_open = self._open
            self._open = True
            self._probing = False
            self._opened_at = self.clock()
        if not was_open:
            logger.warning(
                "Redis at %s is unavailable (%s: %s); serving from the database, retrying every %.1fs",
                self.name,
                type(exc).__name__,
                exc,
                self._cooldown(),
            )

    def inconclusive(self) -> None:
        """A call ended without showing whether Redis works: if it was the probe, wait out another
        cooldown and let the next caller probe again; a closed breaker stays closed."""
        if not self._open:
            return
        with self._lock:
            if self._open and self._probing:
                self._probing = False
                self._opened_at = self.clock()

    def reset(self) -> None:
        with self._lock:
            self._open = False
            self._probing = False
