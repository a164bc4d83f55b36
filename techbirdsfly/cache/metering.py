"""How long a cache-layer call waited on Redis, as the kernel saw it, and the cap on its reads.

The request's Redis budget (calls.py) must count the time Redis took to answer, not the time this
thread waited for a CPU or the GIL before it sent a command or after the answer came: on a loaded
machine those waits would make requests skip a Redis that answered promptly. The kernel knows when
the last bytes went out and when the last bytes came in (TCP_INFO's tcpi_last_data_sent and
tcpi_last_data_recv, in milliseconds before now), so each read records that round trip's wait.
A read also takes what is left of the request's budget as its timeout (``Meter.cap``).
"""

from __future__ import annotations

import math
import socket
import struct
import time
from typing import Any

from redis.connection import Connection, SSLConnection

from .scope import current


class Meter:
    """One cache-layer call within a request: its Redis round trips' waits, charged to the request's
    budget, and the timeout cap of its reads (None: uncapped)."""

    __slots__ = ("began", "cap", "capped", "measured", "timeout", "total", "trips")

    def __init__(self, cap: float | None) -> None:
        self.began = time.monotonic()
        self.cap = cap
        self.capped = False
        self.measured = True  # False once a read could not be timed by the kernel
        self.timeout: float | None = None  # the last read's timeout
        self.total = 0.0
        self.trips: dict[int, tuple[int, float]] | None = None  # connection -> (sent at, ms; wait, s)

    def record(self, connection: int, sent_at: int, wait: float) -> None:
        # The replies of one pipeline are read one by one; they are one round trip (one send).
        if self.trips is None:
            self.trips = {}
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
    """``read(connection, ...)`` capped by, and charged to, the ``Meter`` of the call being made in this
    request (calls.redis_call keeps it on the request's scope), if any."""
    scope = current()
    meter = scope.meter if scope is not None else None
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
    took = time.monotonic() - began
    if took < FAST_READ:
        meter.total += took
    elif connection._sock is not None:
        _round_trip(connection, meter)
    return response


class MeteredConnection(Connection):
    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return metered_read(self, Connection.read_response, *args, **kwargs)


class MeteredSSLConnection(SSLConnection):
    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return metered_read(self, SSLConnection.read_response, *args, **kwargs)


# By URL scheme: the class redis-py would pick, metered. (unix:// sockets keep theirs: no TCP_INFO.)
METERED = {"redis": MeteredConnection, "rediss": MeteredSSLConnection}
