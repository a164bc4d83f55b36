"""A hot key expiring under concurrent load: how many times is it recomputed, and what does p99 do?"""

from __future__ import annotations

import http.client
import math
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .endpoints import request_once
from .latency import refresh_cache
from .load import Endpoint, LoadResult, run_wrk
from .plan import Plan, log
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


def measure_stampede(plan: Plan, cached: BenchServer, eps: dict[str, Endpoint], redis: Any, redis_port: int) -> dict:
    from techbirdsfly.cache.calls import cache_for

    from .probes import count_writes

    dashboard = eps["dashboard"]
    admin = cache_for("admin")
    dashboard_key = admin.make_key("admin:dashboard")
    summary = eps["summary_largest"]
    summary_key = cache_for("billing").make_key(f"billing:summary:{summary.path.rsplit('/', 1)[1]}")
    out: dict[str, Any] = {"bursts": [], "load": {}}

    for endpoint, app, key in ((dashboard, "admin", dashboard_key), (summary, "billing", summary_key)):
        for _ in range(plan.bursts):
            request_once(cached, endpoint)  # warm, so the burst starts from a hit that is then deleted
            with count_writes(redis_port, key) as writes:
                burst = cold_burst(
                    cached, endpoint, app=app, delete=lambda key=key: redis.delete(key), concurrency=plan.burst
                )
            out["bursts"].append({"endpoint": endpoint.label, "app": app, **asdict(burst), "writes": writes[0]})
            log(f"burst {endpoint.name}: {burst.computes} compute(s), {writes[0]} SET(s) of the entry")

    seconds = plan.stampede_seconds
    at = seconds * 0.2
    left = max(1, math.ceil(seconds * 0.4))

    def expire_soon() -> None:
        # Exactly the state of an entry `left` seconds before its natural expiry: same value,
        # same measured compute time ("d"), expiry "x" and Redis TTL `left` seconds away.
        entry = admin.get("admin:dashboard")
        if isinstance(entry, dict):
            entry["x"] = time.time() + left
            admin.set("admin:dashboard", entry, timeout=left)

    modes = {
        "steady": (None, "no expiry (reference)"),
        "expiry": (expire_soon, f"the entry expires {left} s after t={at:.0f} s (natural expiry, XFetch active)"),
        "deleted": (lambda: redis.delete(dashboard_key), f"the key is deleted at t={at:.0f} s (hard miss)"),
    }
    for mode, (action, description) in modes.items():
        if plan.smoke and mode == "steady":
            continue
        refresh_cache()
        request_once(cached, dashboard)
        result = under_load(
            cached, dashboard, app="admin", connections=plan.stampede_connections, seconds=seconds, action=action, at=at
        )
        out["load"][mode] = {"description": description, **asdict(result)}
        log(f"stampede {mode}: {result.extra}")
    return out
