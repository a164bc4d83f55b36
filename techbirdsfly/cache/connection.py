"""Connection factories for django-redis: bounded waits, no hidden retries, one pool per config.

- django-redis caches pools by URL alone, so aliases sharing a URL silently share the first
  alias's pool options (django-redis #685). Pools here are keyed by URL *and* options.
- redis-py retries failed calls by default; against a dead server that multiplies the socket
  timeout. Retries are off: the circuit breaker (breaker.py) decides when to try again.
- Every new connection counts its server's identity (identity.py), and TCP connections meter their
  reads (metering.py).
- Through Sentinel, a connection notices when a failover demoted its master.
"""

from __future__ import annotations

from typing import Any

from django_redis.pool import ConnectionFactory as _ConnectionFactory
from django_redis.pool import SentinelConnectionFactory as _SentinelConnectionFactory
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry
from redis.sentinel import SentinelManagedConnection

from .identity import on_connect
from .metering import METERED, metered_read


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
            "redis_connect_func": on_connect,
            # redis-py's default handshake is five round trips before a connection's first command
            # (HELLO 3, CLIENT MAINT_NOTIFICATIONS, two CLIENT SETINFO, our INFO), each a full round
            # trip over a slow network. RESP2 and no client metadata leave one, the INFO.
            "protocol": 2,
            "lib_name": None,
            "lib_version": None,
            "maint_notifications_config": MaintNotificationsConfig(enabled=False),
            **self.pool_cls_kwargs,
        }

    def get_connection_pool(self, params: dict[str, Any]) -> Any:
        metered = METERED.get(str(params.get("url", "")).partition("://")[0])
        if metered is not None and "connection_class" not in self.pool_cls_kwargs:
            params = {**params, "connection_class": metered}
        return super().get_connection_pool(params)  # type: ignore[misc]

    def get_or_create_connection_pool(self, params: dict[str, Any]) -> Any:
        key = _pool_key(params, self.pool_cls_kwargs)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = self.get_connection_pool(params)  # type: ignore[attr-defined]
        return pool


class ConnectionFactory(_PoolOptionsMixin, _ConnectionFactory):
    pass


class MasterDemoted(RedisConnectionError):
    """The server this connection took for the master was demoted by a failover."""


class DemotionAwareConnection(SentinelManagedConnection):
    """A connection to the master that notices when a failover has demoted it (django-redis #616).

    After a failover in which the old master survives (SENTINEL FAILOVER, a partition that heals),
    pooled connections still reach it: reads succeed, writes answer READONLY. Then this connection
    is dropped, Sentinel is asked for the master, and MasterDemoted is raised: the one error the
    pool retries (once), on the new master. Without it, an invalidation failing this way would wait
    in the database until some later reconnect, while other connections kept reading the demoted
    server. (Sentinel itself kills the clients of a master it demotes; this covers the connections
    that escape that, e.g. after a partition heals.)
    """

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return metered_read(self, Connection.read_response, *args, **kwargs)
        except ReadOnlyError:
            if not self.connection_pool.is_master:
                raise
            self.disconnect()
            # A reconnect inside a retry goes to host:port as they stand (only the pool's connect
            # asks Sentinel), so ask now. This also drops the pool's idle connections to the old master.
            self.host, self.port = self.connection_pool.get_master_address()
            raise MasterDemoted("the master was demoted by a failover; retrying on the new master") from None


class SentinelConnectionFactory(_PoolOptionsMixin, _SentinelConnectionFactory):
    """Master discovery through Sentinel, with the same bounded waits.

    No retries either, with one exception: a command refused because its server was demoted is
    retried once on the new master (DemotionAwareConnection). redis-py's Sentinel clients would
    otherwise retry three times with backoff on every dead sentinel, inside the connect of each
    request that needs a new connection.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        sentinel_kwargs = {
            "socket_timeout": options.get("SOCKET_TIMEOUT"),
            "socket_connect_timeout": options.get("SOCKET_CONNECT_TIMEOUT"),
            "retry": Retry(NoBackoff(), 0),
            **(options.get("SENTINEL_KWARGS") or {}),
        }
        super().__init__({**options, "SENTINEL_KWARGS": sentinel_kwargs})
        self.pool_cls_kwargs = {
            **self.pool_cls_kwargs,
            "connection_class": DemotionAwareConnection,
            "retry": Retry(NoBackoff(), 1, supported_errors=(MasterDemoted,)),
        }
