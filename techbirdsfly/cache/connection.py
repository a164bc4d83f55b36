"""Connection factories for django-redis: bounded waits, no hidden retries, one pool per config.

- django-redis caches pools by URL alone, so aliases sharing a URL silently share the first
  alias's pool options (django-redis #685). Pools here are keyed by URL *and* options.
- redis-py retries failed calls by default; against a dead server that multiplies the socket
  timeout. Retries are off: the circuit breaker (breaker.py) decides when to try again.
- Every new connection asks the server who it is (``ConnectEpoch``). A Redis that restarted from an
  old dump, or a freshly promoted replica, may hold entries that later writes made stale; the cache
  layer catches up with the invalidation journal before it trusts what such a server answers
  (journal.py).
"""

from __future__ import annotations

import threading
from typing import Any

from django_redis.pool import ConnectionFactory as _ConnectionFactory
from django_redis.pool import SentinelConnectionFactory as _SentinelConnectionFactory
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.retry import Retry
from redis.sentinel import SentinelManagedConnection


class ConnectEpoch:
    """Counts the Redis servers (or datasets) this process has connected to, by identity.

    A server's identity is its ``run_id`` (new at every start) and its replication id (new when a
    replica is promoted, or a server starts replicating another): a Redis restarted from an old dump,
    a promoted replica, a restore, each is a new identity, whose entries the cache layer checks only
    after it has caught up with the invalidation journal (journal.py). Another connection to a server
    already seen (the pool growing, a reconnect after a network blip) is not counted.
    """

    lock = threading.Lock()
    connects = 0
    identities: set[bytes] = set()

    @classmethod
    def seen(cls, identity: bytes | None) -> None:
        with cls.lock:
            if identity is None or identity not in cls.identities:
                cls.connects += 1
                if identity is not None:
                    cls.identities.add(identity)


def server_identity(connection: Any) -> bytes | None:
    """``run_id/master_replid`` of the server at the other end; None when it will not say."""
    try:
        connection.send_command("INFO", "server", "replication")
        info = connection.read_response()
    except RedisError:
        return None
    fields = dict(
        line.split(b":", 1) for line in (info if isinstance(info, bytes) else b"").splitlines() if b":" in line
    )
    run_id, replid = fields.get(b"run_id"), fields.get(b"master_replid")
    return run_id + b"/" + replid if run_id and replid else None


def _on_connect(connection: Any) -> None:
    connection.on_connect_check_health(check_health=True)
    ConnectEpoch.seen(server_identity(connection))


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
            return Connection.read_response(self, *args, **kwargs)
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
