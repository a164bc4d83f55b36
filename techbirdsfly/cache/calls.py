"""Every Redis call of the cache layer goes through ``redis_call``: a breaker per Redis, a time budget per request.

Socket timeouts bound one call and the breaker skips Redis after a failure (breaker.py), but a Redis
that is slow without failing would be waited on call after call: a miss makes several, and each
answered just under the timeout would take a request past a second (faults/tests/test_slow_redis.py).
Within an HTTP request Redis gets CACHE_REQUEST_BUDGET seconds in all; then the request goes on without it. The
budget counts the time Redis took to answer (until its answer arrived, by the kernel's clock: see
metering.Meter), not the time the thread then waited for a CPU: on a loaded machine that wait would
make requests skip a Redis that answered at once. What is left of the budget is each read's timeout.
Invalidations are exempt (``force``): they are tried once whatever the budget, since skipping one
could let another process serve a revoked entry from a Redis that is slow but answering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import stats
from .breaker import CircuitBreaker
from .metering import Meter
from .policy import APPS, KINDS, Kind
from .scope import current, is_unbudgeted
from .serializers import CorruptValue, ValueTooLarge

logger = logging.getLogger("techbirdsfly.cache")

_UNAVAILABLE = (RedisError, ConnectionInterrupted, OSError)


class CacheUnavailable(Exception):
    """Redis could not be used for this call (down, slow, full, or the breaker is open)."""


def kind_of(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown cache kind {kind!r}; add it to techbirdsfly.cache.policy.KINDS") from None


_local = threading.local()


def cache_for(app: str) -> Any:
    """``caches[app]``, remembered per thread: Django's handler looks it up through asgiref's Local,
    several microseconds a time, and a hit asks for it about five times."""
    mine = getattr(_local, "caches", None)
    if mine is None or mine[0] is not _caches_epoch:
        mine = _local.caches = (_caches_epoch, {})
    cache = mine[1].get(app)
    if cache is None:
        if app not in APPS:
            raise ValueError(f"unknown cache app {app!r}")
        cache = mine[1][app] = caches[app]
    return cache


_caches_epoch = object()


def _caches_changed(*, setting: str, **kwargs: Any) -> None:
    # override_settings(CACHES=...) in tests: Django drops its cache objects, so do we.
    global _caches_epoch
    if setting == "CACHES":
        _caches_epoch = object()
        _breakers_by_app.clear()


setting_changed.connect(_caches_changed, dispatch_uid="techbirdsfly.cache.calls.caches_changed")


def client_for(app: str, *, write: bool = True) -> Any:
    """The redis-py client (or RedisCluster) under ``app``'s alias."""
    return cache_for(app).client.get_client(write=write)


# --- breakers ---------------------------------------------------------------------------------

_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


_breakers_by_app: dict[str, CircuitBreaker] = {}


def breaker_for(app: str) -> CircuitBreaker:
    """One breaker per Redis location, shared by the aliases that use it."""
    breaker = _breakers_by_app.get(app)
    if breaker is None:
        breaker = _breakers_by_app[app] = _breaker_at(str(settings.CACHES[app]["LOCATION"]))
    return breaker


def _breaker_at(location: str) -> CircuitBreaker:
    breaker = _breakers.get(location)
    if breaker is None:
        with _breakers_lock:
            breaker = _breakers.setdefault(
                location,
                CircuitBreaker(_redact(location), lambda: settings.CACHE_BREAKER_COOLDOWN, _breaker_clock),
            )
    return breaker


def reset_breakers() -> None:
    for breaker in list(_breakers.values()):
        breaker.reset()


_breaker_clock: Callable[[], float] = time.monotonic


def set_breaker_clock(clock: Callable[[], float]) -> Callable[[], float]:
    """Make every breaker, present and future, read ``clock``; return the clock they read before.

    For tests, which advance a clock of their own past a cooldown rather than sleep through it.
    """
    global _breaker_clock
    with _breakers_lock:
        previous, _breaker_clock = _breaker_clock, clock
        for breaker in _breakers.values():
            breaker.clock = clock
    return previous


def _redact(location: str) -> str:
    # Never log a password that is part of the URL.
    if "@" in location:
        scheme, _, rest = location.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return location


# --- calls ------------------------------------------------------------------------------------


def redis_call[T](app: str, fn: Callable[..., T], *args: Any, force: bool = False, **kwargs: Any) -> T:
    """Run one Redis operation for ``app`` behind the breaker; raise CacheUnavailable on failure.

    With ``force``, try even while the breaker is open or the request's budget is spent (one attempt,
    bounded by the socket timeout).
    """
    breaker = breaker_for(app)
    if not force and not breaker.allow():
        stats.error(app).inc()
        raise CacheUnavailable("circuit open")
    scope = current()
    if scope is None:  # outside a request: no budget, nothing charged, socket timeouts only
        return _attempt(app, breaker, None, fn, *args, **kwargs)
    left = None
    if not force and not is_unbudgeted():
        left = settings.CACHE_REQUEST_BUDGET - scope.spent
        if left <= 0:
            stats.error(app).inc()
            raise CacheUnavailable("this request has spent its time on Redis")
    # What is left of the budget caps each read of this call (metering.Meter), so a slow Redis
    # cannot hold the request a socket timeout past its budget.
    meter = Meter(left)
    outer, scope.meter = scope.meter, meter
    try:
        result = _attempt(app, breaker, meter, fn, *args, **kwargs)
    except BaseException:
        # A call that failed (a timeout, a refused connection) was waiting on Redis all along, up to
        # the timeout that ended it: a thread that then waited for a CPU is not charged that wait.
        timeout = meter.timeout if meter.timeout is not None else settings.REDIS_SOCKET_CONNECT_TIMEOUT
        scope.spent += min(time.monotonic() - meter.began, meter.waited() + (timeout or 0.0))
        raise
    finally:
        scope.meter = outer
    scope.spent += meter.waited()
    return result


def _attempt[T](
    app: str, breaker: CircuitBreaker, meter: Meter | None, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    try:
        result = fn(*args, **kwargs)
    except (ValueTooLarge, CorruptValue):
        breaker.success()
        raise
    except ResponseError as exc:
        stats.error(app).inc()
        if isinstance(exc, ReadOnlyError):
            # Talking to a demoted master (django-redis #616): back off and reconnect later.
            breaker.failure(exc)
        else:
            # e.g. OOM at maxmemory: the server answers, so the connection is fine.
            breaker.success()
            logger.warning("Redis refused an operation for %s: %s", app, exc)
        raise CacheUnavailable(str(exc)) from exc
    except _UNAVAILABLE as exc:
        stats.error(app).inc()
        if meter is not None and meter.capped and _timed_out(exc):
            # This request's budget ran out while Redis was answering: it goes on without Redis, but
            # nothing says Redis is down for the other requests, so a closed breaker stays closed; a
            # probe that ran out proved nothing either way, and another is tried after the cooldown.
            # (The call is charged its whole cap: nothing is left of the budget.)
            breaker.inconclusive()
            raise CacheUnavailable("this request's time on Redis ran out") from exc
        breaker.failure(exc)
        raise CacheUnavailable(str(exc)) from exc
    except BaseException:
        breaker.inconclusive()  # not Redis's doing (a bug, an interrupt): the probe, if this was it, ends
        raise
    breaker.success()
    return result


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, RedisTimeoutError) or isinstance(exc.__cause__, RedisTimeoutError)


def refused_write(exc: CacheUnavailable) -> bool:
    """Did Redis answer but refuse (OOM at maxmemory), rather than fail to answer?"""
    cause = exc.__cause__
    return isinstance(cause, ResponseError) and not isinstance(cause, ReadOnlyError)


# --- the request's budget ---------------------------------------------------------------------
# Kept on the request's scope (scope.py).


def request_cache_seconds() -> float | None:
    """The time the current HTTP request has waited on Redis so far; None outside a request."""
    scope = current()
    return scope.spent if scope is not None else None
