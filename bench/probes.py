"""What one cache hit costs: SQL queries and Redis round trips, counted in-process and on the server."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from techbirdsfly.probes import count_round_trips

from .load import Endpoint


@dataclass
class HitCost:
    requests: int
    sql_per_request: float
    round_trips_per_request: float
    hits: int
    statuses: list[int]


def hit_cost(endpoint: Endpoint, *, requests: int = 20) -> HitCost:
    """Run ``endpoint`` in this process through Django's test client, after one warming request.

    Uses the same settings, database and Redis as the cached server, so the entries it reads are
    the server's.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    headers = {"HTTP_AUTHORIZATION": f"Bearer {endpoint.token}"} if endpoint.token else {}
    client = Client(**headers)

    def send() -> Any:
        return client.generic(endpoint.method, endpoint.path, data=endpoint.body or "", content_type="application/json")

    send()  # fill the cache if it is cold
    statuses, hits = [], 0
    with CaptureQueriesContext(connection) as queries, count_round_trips() as trips:
        for _ in range(requests):
            response = send()
            statuses.append(response.status_code)
            hits += b'"fromCache":true' in response.content
    return HitCost(
        requests=requests,
        sql_per_request=len(queries.captured_queries) / requests,
        round_trips_per_request=trips[0] / requests,
        hits=hits,
        statuses=sorted(set(statuses)),
    )


def command_counts(client: Any) -> dict[str, int]:
    """Redis INFO commandstats: calls per command, for deltas over a load run."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def command_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    ignore = {"info"}  # our own INFO calls
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    return {name: n for name, n in sorted(delta.items()) if n and name not in ignore}


_WRITES = {b"set", b"setex", b"psetex", b"setnx", b"getset"}


@contextlib.contextmanager
def count_writes(port: int, key: str) -> Iterator[list[int]]:
    """Count the commands that store ``key`` (SET and its kin, from clients or scripts), by MONITOR.

    A raw socket reads the monitor stream into memory while the block runs; the lines are parsed
    once it ends, so the count is filled in on exit.
    """
    import socket
    import time

    counter = [0]
    stop = threading.Event()
    buffer = bytearray()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"MONITOR\r\n")
    sock.settimeout(0.05)

    def read() -> None:
        while not stop.is_set():
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                return
            buffer.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(0.05)  # MONITOR is on before the block's first command
        yield counter
        time.sleep(0.1)  # the last commands' lines are in
    finally:
        stop.set()
        reader.join()
        sock.close()
    quoted = b'"' + key.encode() + b'"'
    for line in bytes(buffer).split(b"\r\n"):
        # +1764500000.123456 [0 127.0.0.1:53422] "SET" "<key>" "<value>" "EX" "300"
        _, _, command = line.partition(b"] ")
        name, _, rest = command.partition(b" ")
        if name.strip(b'"').lower() in _WRITES and rest.split(b" ", 1)[0] == quoted:
            counter[0] += 1
