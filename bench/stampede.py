"""A hot key expiring under concurrent load: how many times is it recomputed, and what does p99 do?"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from .load import Endpoint, LoadResult, run_wrk
from .servers import BenchServer


@dataclass
class Burst:
    concurrency: int
    computes: int
    misses: int
    from_cache: int
    statuses: list[int]
    p50_ms: float
    max_ms: float


def _computes(server: BenchServer, app: str) -> tuple[int, int]:
    counts = server.metrics()
    return int(counts.get("computes", {}).get(app, 0)), int(counts.get("misses", {}).get(app, 0))


def _errors(server: BenchServer) -> int:
    """Cache operations skipped or failed, all apps: the breaker, the request's Redis budget, Redis errors."""
    return int(sum(server.metrics().get("errors", {}).values()))


def cold_burst(server: BenchServer, endpoint: Endpoint, *, app: str, delete: Any, concurrency: int) -> Burst:
    """Delete the key, then send ``concurrency`` requests at the same instant (one connection each)."""
    barrier = threading.Barrier(concurrency + 1)
    results: list[tuple[int, bool, float]] = []
    lock = threading.Lock()
    host, port = "127.0.0.1", server.port

    def one() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.connect()
        headers = {"Authorization": f"Bearer {endpoint.token}"} if endpoint.token else {}
        barrier.wait()
        began = time.perf_counter()
        conn.request(endpoint.method, endpoint.path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - began) * 1000
        conn.close()
        with lock:
            results.append((response.status, b'"fromCache":true' in body, elapsed))

    computes_before, misses_before = _computes(server, app)
    threads = [threading.Thread(target=one) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    delete()
    barrier.wait()
    for thread in threads:
        thread.join(timeout=120)
    computes_after, misses_after = _computes(server, app)
    latencies = sorted(r[2] for r in results)
    return Burst(
        concurrency=concurrency,
        computes=computes_after - computes_before,
        misses=misses_after - misses_before,
        from_cache=sum(r[1] for r in results),
        statuses=sorted({r[0] for r in results}),
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        max_ms=latencies[-1] if latencies else 0.0,
    )


def under_load(
    server: BenchServer,
    endpoint: Endpoint,
    *,
    app: str,
    connections: int,
    seconds: int,
    action: Any = None,
    at: float = 0.0,
) -> LoadResult:
    """wrk for ``seconds``; ``action()`` runs ``at`` seconds in. Adds computes/misses to ``extra``."""
    computes_before, misses_before = _computes(server, app)
    errors_before = _errors(server)
    timer = threading.Timer(at, action) if action else None
    if timer:
        timer.start()
    try:
        result = run_wrk(server.url, endpoint, connections=connections, seconds=seconds)
    finally:
        if timer:
            timer.join()
    computes_after, misses_after = _computes(server, app)
    result.extra.update(
        computes=computes_after - computes_before,
        misses=misses_after - misses_before,
        cache_errors=_errors(server) - errors_before,
    )
    return result
