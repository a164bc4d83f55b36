"""Each endpoint under wrk: requests/s and latency, cached and bypassed, with CPU per request."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .endpoints import FLOOR, check_endpoint
from .load import Endpoint, LoadResult, merge, run_wrk
from .plan import Plan, log
from .servers import BenchServer


def refresh_cache() -> None:
    """Drop every app's entries, so each endpoint is measured on an entry just filled (no early refresh)."""
    from techbirdsfly.cache import APPS, clear_app

    for app in APPS:
        clear_app(app)


Meters = dict[str, Any]  # name -> snapshot function (bench/cpu.py)


def measured(server: BenchServer, ep: Endpoint, *, connections: int, seconds: int, meters: Meters) -> LoadResult:
    """One wrk run, with the CPU seconds each metered process spent during it in ``extra["cpu"]``."""
    from . import cpu

    before = {name: snapshot() for name, snapshot in meters.items()}
    result = run_wrk(server.url, ep, connections=connections, seconds=seconds)
    result.extra["cpu"] = {name: cpu.delta(before[name], snapshot()) for name, snapshot in meters.items()}
    return result


def measure_endpoints(
    plan: Plan, cached: BenchServer, bypass: BenchServer, eps: list[Endpoint], redis: Any, database: str
) -> dict:
    from . import cpu
    from .probes import command_counts, command_delta, hit_cost

    postgres = cpu.postgres_backends(database)
    floor_meters = {"app": cpu.children(cached.pid)}
    cached_meters = {"app": cpu.children(cached.pid), "redis": cpu.redis_cpu(redis), "postgres": postgres}
    bypass_meters = {"app": cpu.children(bypass.pid), "postgres": postgres}
    results: dict[str, Any] = {"endpoints": {}}
    for ep in eps:
        log(f"endpoint {ep.name}")
        refresh_cache()
        check_endpoint(cached, bypass, ep)
        row: dict[str, Any] = {"label": ep.label, "path": ep.path, "method": ep.method}
        row["hit_cost"] = asdict(hit_cost(ep, requests=5 if plan.smoke else 30))
        for server in (cached, bypass):  # every worker thread connected to Redis and the database
            run_wrk(server.url, ep, connections=plan.connections, seconds=1)
        # Rounds alternate floor, cached and bypassed, so that a change in the machine's other load
        # falls on all three alike.
        runs: dict[str, list[LoadResult]] = {"floor": [], "cached": [], "bypass": [], "floor_1": []}
        runs |= {"cached_1": [], "bypass_1": []}
        commands: dict[str, int] = {}
        for _ in range(plan.rounds):
            kw = {"connections": plan.connections, "seconds": plan.seconds}
            runs["floor"].append(measured(cached, FLOOR, meters=floor_meters, **kw))
            before = command_counts(redis)
            runs["cached"].append(measured(cached, ep, meters=cached_meters, **kw))
            for name, calls in command_delta(before, command_counts(redis)).items():
                commands[name] = commands.get(name, 0) + calls
            runs["bypass"].append(measured(bypass, ep, meters=bypass_meters, **kw))
        row["redis_commands"] = dict(sorted(commands.items()))
        for _ in range(plan.single_rounds):
            kw = {"connections": 1, "seconds": plan.single_seconds}
            runs["floor_1"].append(measured(cached, FLOOR, meters=floor_meters, **kw))
            runs["cached_1"].append(measured(cached, ep, meters=cached_meters, **kw))
            runs["bypass_1"].append(measured(bypass, ep, meters=bypass_meters, **kw))
        row |= {name: asdict(merge(rounds)) for name, rounds in runs.items() if rounds}
        results["endpoints"][ep.name] = row
    return results
