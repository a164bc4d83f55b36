"""Every Redis call of the cache layer goes through ``call``: a breaker per Redis, a time budget per request.

Socket timeouts bound one call and the breaker skips Redis after a failure (breaker.py), but a Redis
that is slow without failing was waited on call after call: a miss makes several, and each answered
just under the timeout took a request past a second (faults/tests/test_slow_redis.py). Within an HTTP
request Redis gets CACHE_REQUEST_BUDGET seconds in all; then the request goes on without it.
Invalidations are exempt (``force``): they are tried once whatever the budget, since skipping one
could let another process serve a revoked entry from a Redis that is slow but answering.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.signals import request_finished, request_started
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ReadOnlyError, RedisError, ResponseError

from .breaker import CircuitBreaker
from .policy import APPS, KINDS, Kind
from .serializers import CorruptValue, ValueTooLarge
from .stats import ERRORS

logger = logging.getLogger("techbirdsfly.cache")

_UNAVAILABLE = (RedisError, ConnectionInterrupted, OSError)


class CacheUnavailable(Exception):
    """Redis could not be used for this call (down, slow, full, or the breaker is open)."""


def kind_of(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown cache kind {kind!r}; add it to techbirdsfly.cache.policy.KINDS") from None


def cache_for(app: str) -> Any:
    if app not in APPS:
        raise ValueError(f"unknown cache app {app!r}")
    return caches[app]


def client_for(app: str, *, write: bool = True) -> Any:
    """The redis-py client (or RedisCluster) under ``app``'s alias."""
    return cache_for(app).client.get_client(write=write)


# --- breakers ---------------------------------------------------------------------------------

_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(app: str) -> CircuitBreaker:
    """One breaker per Redis location, shared by the aliases that use it."""
    location = str(settings.CACHES[app]["LOCATION"])
    breaker = _breakers.get(location)
    if breaker is None:
        with _breakers_lock:
            breaker = _breakers.setdefault(
                location, CircuitBreaker(_redact(location), lambda: settings.CACHE_BREAKER_COOLDOWN)
            )
    return breaker


def reset_breakers() -> None:
    for breaker in list(_breakers.values()):
        breaker.reset()


def _redact(location: str) -> str:
    # Never log a password that is part of the URL.
    if "@" in location:
        scheme, _, rest = location.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return location


# --- calls ------------------------------------------------------------------------------------


def call[T](app: str, fn: Callable[..., T], *args: Any, force: bool = False, **kwargs: Any) -> T:
    """Run one Redis operation for ``app`` behind the breaker; raise CacheUnavailable on failure.

    With ``force``, try even while the breaker is open or the request's budget is spent (one attempt,
    bounded by the socket timeout).
    """
    breaker = breaker_for(app)
    if not force and not breaker.allow():
        ERRORS.labels(app).inc()
        raise CacheUnavailable("circuit open")
    if not force and _budget_spent():
        ERRORS.labels(app).inc()
        raise CacheUnavailable("this request has spent its time on Redis")
    began = time.monotonic()
    try:
        return _attempt(app, breaker, fn, *args, **kwargs)
    finally:
        _charge(time.monotonic() - began)


def _attempt[T](app: str, breaker: CircuitBreaker, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        result = fn(*args, **kwargs)
    except (ValueTooLarge, CorruptValue):
        breaker.success()
        raise
    except ResponseError as exc:
        ERRORS.labels(app).inc()
        if isinstance(exc, ReadOnlyError):
            # Talking to a demoted master (django-redis #616): back off and reconnect later.
            breaker.failure(exc)
        else:
            # e.g. OOM at maxmemory: the server answers, so the connection is fine.
            breaker.success()
            logger.warning("Redis refused an operation for %s: %s", app, exc)
        raise CacheUnavailable(str(exc)) from exc
    except _UNAVAILABLE as exc:
        ERRORS.labels(app).inc()
        breaker.failure(exc)
        raise CacheUnavailable(str(exc)) from exc
    breaker.success()
    return result


def refused_write(exc: CacheUnavailable) -> bool:
    """Did Redis answer but refuse (OOM at maxmemory), rather than fail to answer?"""
    cause = exc.__cause__
    return isinstance(cause, ResponseError) and not isinstance(cause, ReadOnlyError)


# --- the request's budget ---------------------------------------------------------------------
_request = threading.local()


def _start_budget(**kwargs: Any) -> None:
    _request.spent = 0.0


def _end_budget(**kwargs: Any) -> None:
    _request.spent = None


request_started.connect(_start_budget, dispatch_uid="techbirdsfly.cache.calls.start_budget")
request_finished.connect(_end_budget, dispatch_uid="techbirdsfly.cache.calls.end_budget")


def _budget_spent() -> bool:
    if getattr(_request, "unbudgeted", False):
        return False
    spent = getattr(_request, "spent", None)
    return spent is not None and spent >= settings.CACHE_REQUEST_BUDGET


@contextlib.contextmanager
def unbudgeted() -> Iterator[None]:
    """Calls the budget must not skip (still behind the breaker): the login throttle's counters, whose
    Redis share a skipped call would leave uncounted (a CPU-bound burst of logins then tried 12
    passwords instead of 10: faults/tests/test_login_throttle.py)."""
    previous = getattr(_request, "unbudgeted", False)
    _request.unbudgeted = True
    try:
        yield
    finally:
        _request.unbudgeted = previous


def _charge(seconds: float) -> None:
    # Outside a request (commands, workers, tests calling the layer directly) there is no budget.
    if getattr(_request, "spent", None) is not None:
        _request.spent += seconds
