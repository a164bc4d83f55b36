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

import math
import socket
import struct
import threading
import time
from typing import Any, NamedTuple

from django_redis.pool import ConnectionFactory as _ConnectionFactory
from django_redis.pool import SentinelConnectionFactory as _SentinelConnectionFactory
from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig
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
    connection.send_command("INFO", "server", "replication")
    try:
        info = connection.read_response()
    except ResponseError:
        return None  # refused (an ACL without INFO): counted as a server not seen
    # Timeouts and lost connections propagate: the connect fails, as it would on any handshake
    # command. Swallowed, they left a closed connection that each command reconnected, again and again.
    fields = dict(
        line.split(b":", 1) for line in (info if isinstance(info, bytes) else b"").splitlines() if b":" in line
    )
    run_id, replid = fields.get(b"run_id"), fields.get(b"master_replid")
    return run_id + b"/" + replid if run_id and replid else None


def _on_connect(connection: Any) -> None:
    connection.on_connect_check_health(check_health=True)
    ConnectEpoch.seen(server_identity(connection))


# --- waiting on Redis, not on a CPU ------------------------------------------------------------
# The request's Redis budget (calls.py) must count the time Redis took to answer, not the time this
# thread waited for a CPU or the GIL before it sent a command or after the answer came: on a loaded
# machine those waits made requests skip a Redis that had answered in a millisecond. The kernel
# knows when the last bytes went out and when the last bytes came in (TCP_INFO's tcpi_last_data_sent
# and tcpi_last_data_recv, in milliseconds before now), so each read records that round trip's wait.
# A read also takes what is left of the request's budget as its timeout (``Meter.cap``).


class Meter:
    """One cache-layer call: its Redis round trips' waits, and the timeout cap of its reads."""

    __slots__ = ("began", "cap", "capped", "charged", "measured", "timeout", "total", "trips")

    def __init__(self, cap: float | None, *, charged: bool) -> None:
        self.began = time.monotonic()
        self.cap = cap
        self.charged = charged  # inside a request: what it waits is charged to the request's budget
        self.capped = False
        self.measured = True  # False once a read could not be timed by the kernel
        self.timeout: float | None = None  # the last read's timeout
        self.total = 0.0
        self.trips: dict[int, tuple[int, float]] = {}  # connection -> (sent at, ms; wait, s)

    def record(self, connection: int, sent_at: int, wait: float) -> None:
        # The replies of one pipeline are read one by one; they are one round trip (one send).
        previous = self.trips.get(connection)
        if previous is not None and abs(previous[0] - sent_at) <= 1:
            if wait > previous[1]:
                self.total += wait - previous[1]
                self.trips[connection] = (previous[0], wait)
            return
        self.total += wait
        self.trips[connection] = (sent_at, wait)

    def waited(self) -> float:
        """Seconds spent waiting on Redis (the call's wall time where the kernel could not say)."""
        return self.total if self.measured else time.monotonic() - self.began


metering = threading.local()
_TCP_INFO_TIMES = struct.Struct("III")  # tcpi_last_data_sent, _last_ack_sent, _last_data_recv: offset 44


def _round_trip(connection: Any, meter: Meter) -> None:
    sock = connection._sock
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 56)
        sent_ago, _, received_ago = _TCP_INFO_TIMES.unpack_from(info, 44)
    except (OSError, AttributeError, struct.error):
        meter.measured = False  # a Unix socket, or another platform
        return
    now = int(time.monotonic() * 1000)
    meter.record(id(connection), now - sent_ago, max(0, sent_ago - received_ago) / 1000)


# A read that took less than this is charged its own wall time, without asking the kernel: that is
# at most what Redis made it wait, and too little to matter to the budget (it saves a getsockopt and
# its bookkeeping on every warm hit).
FAST_READ = 0.001


def metered_read(connection: Any, read: Any, *args: Any, **kwargs: Any) -> Any:
    meter: Meter | None = getattr(metering, "meter", None)
    if meter is None:
        return read(connection, *args, **kwargs)
    meter.timeout = kwargs.get("timeout", connection.socket_timeout)
    if meter.cap is not None and "timeout" not in kwargs:
        # What is left once this call's earlier round trips (a new connection's handshake) are paid.
        left = meter.cap - meter.waited()
        if left < (connection.socket_timeout or math.inf):
            kwargs["timeout"] = meter.timeout = max(left, 0.001)
            meter.capped = True
    began = time.monotonic()
    response = read(connection, *args, **kwargs)
    if meter.charged:
        took = time.monotonic() - began
        if took < FAST_READ:
            meter.total += took
        elif connection._sock is not None:
            _round_trip(connection, meter)
    return response


def read(client: Any, *args: Any) -> Any:
    """One read-only command (MGET, a read-only script) on a connection of ``client``'s pool.

    What ``client.execute_command(*args)`` does for such a command, less redis-py's per-command
    machinery around it (its observability hooks, a retry closure, a check for HIMPORT): about 20 µs
    of a warm hit's 600 here (issue 15; bench/hitcpu.py). Nothing it did applies: retries are off
    (ConnectionFactory), no reply callback parses these commands, and a read is never refused as
    READONLY, the one error the Sentinel pool retries (DemotionAwareConnection). As there, a
    connection that failed is dropped, and one whose server answered with an error is kept.
    """
    sent = send(client, *args)
    if sent is None:  # a single-connection client: its own lock and connection
        return client.execute_command(*args)
    return receive(sent)


class Sent(NamedTuple):
    """A command sent on a connection taken from ``pool``, whose answer is still to be read."""

    pool: Any
    connection: Any


def send(client: Any, *args: Any) -> Sent | None:
    """``read``'s first half: send the command and return at once; ``receive`` must follow.

    Between the two the connection is out of the pool and Redis answers while the caller works.
    None for a single-connection client, whose connection is not this thread's to hold.
    """
    if client.connection is not None:
        return None
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command(*args)
    except BaseException:
        connection.disconnect()
        pool.release(connection)
        raise
    return Sent(pool, connection)


def receive(sent: Sent) -> Any:
    """The answer to ``sent``'s command; its connection goes back to the pool (dropped if it failed)."""
    connection = sent.connection
    try:
        return connection.read_response()
    except ResponseError:
        raise
    except BaseException:
        connection.disconnect()
        raise
    finally:
        sent.pool.release(connection)


class MeteredConnection(Connection):
    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return metered_read(self, Connection.read_response, *args, **kwargs)


class MeteredSSLConnection(SSLConnection):
    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return metered_read(self, SSLConnection.read_response, *args, **kwargs)


# By URL scheme: the class redis-py would pick, metered. (unix:// sockets keep theirs: no TCP_INFO.)
_METERED = {"redis": MeteredConnection, "rediss": MeteredSSLConnection}


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
            # A new connection's handshake was five round trips before its first command (HELLO 3,
            # CLIENT MAINT_NOTIFICATIONS, two CLIENT SETINFO, our INFO): over a slow network (80 ms a
            # command) a reconnect alone cost 0.4 s. RESP2 and no client metadata leave one, the INFO.
            "protocol": 2,
            "lib_name": None,
            "lib_version": None,
            "maint_notifications_config": MaintNotificationsConfig(enabled=False),
            **self.pool_cls_kwargs,
        }

    def get_connection_pool(self, params: dict[str, Any]) -> Any:
        metered = _METERED.get(str(params.get("url", "")).partition("://")[0])
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
