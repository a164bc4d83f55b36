"""Connection factories for django-redis: bounded waits, no hidden retries, one pool per config.

- django-redis caches pools by URL alone, so aliases sharing a URL silently share the first
  alias's pool options (django-redis #685). Pools here are keyed by URL *and* options.
- redis-py retries failed calls by default; against a dead server that multiplies the socket
  timeout. Retries are off: the circuit breaker (breaker.py) decides when to try again.
- Every new connection is counted. A new connection may be to a Redis that restarted from an
  old dump, or to a freshly promoted replica, holding entries that were invalidated while it was
  unreachable; the cache layer replays pending invalidations before it trusts such a connection
  (see ``layer.sync_needed``).
"""

from __future__ import annotations

import threading
from typing import Any

from django_redis.pool import ConnectionFactory as _ConnectionFactory
from django_redis.pool import SentinelConnectionFactory as _SentinelConnectionFactory
from redis.backoff import NoBackoff
from redis.retry import Retry


class ConnectEpoch:
    """Counts connections made to Redis by this process, and the count last synchronised."""

    lock = threading.Lock()
    connects = 0
    synced = 0


def _on_connect(connection: Any) -> None:
    connection.on_connect_check_health(check_health=True)
    with ConnectEpoch.lock:
        ConnectEpoch.connects += 1


def _pool_key(params: dict[str, Any], pool_kwargs: dict[str, Any]) -> str:
    simple = (str, int, float, bool, type(None))
    options = {k: v for k, v in {**params, **pool_kwargs}.items() if isinstance(v, simple)}
    return repr(sorted(options.items()))


class _PoolOptionsMixin:
    pool_cls_kwargs: dict[str, Any]
    _pools: dict[str, Any]

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)  # type: ignore[call-arg]
        self.pool_cls_kwargs = {
            "retry": Retry(NoBackoff(), 0),
            "redis_connect_func": _on_connect,
            **self.pool_cls_kwargs,
        }

    def get_or_create_connection_pool(self, params: dict[str, Any]) -> Any:
        key = _pool_key(params, self.pool_cls_kwargs)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self.get_connection_pool(params)  # type: ignore[attr-defined]
        return pool


class ConnectionFactory(_PoolOptionsMixin, _ConnectionFactory):
    pass


class SentinelConnectionFactory(_PoolOptionsMixin, _SentinelConnectionFactory):
    """Master discovery through Sentinel, with the same bounded waits and no retries.

    redis-py's Sentinel clients would otherwise retry three times with backoff on every dead
    sentinel, inside the connect of each request that needs a new connection.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        sentinel_kwargs = {
            "socket_timeout": options.get("SOCKET_TIMEOUT"),
            "socket_connect_timeout": options.get("SOCKET_CONNECT_TIMEOUT"),
            "retry": Retry(NoBackoff(), 0),
            **(options.get("SENTINEL_KWARGS") or {}),
        }
        super().__init__({**options, "SENTINEL_KWARGS": sentinel_kwargs})
