"""The same endpoints on servers started with other settings (cache layer options), side by side."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .endpoints import request_once
from .latency import measured
from .load import Endpoint, LoadResult, merge, run_wrk
from .plan import VARIANTS, Plan, log, usable_cpus
from .servers import BenchServer


def measure_variants(plan: Plan, base_env: dict[str, str], eps: dict[str, Endpoint]) -> dict:
    """Every variant's server at once, measured in alternating rounds."""
    import shutil
    import tempfile

    from techbirdsfly.testing import RedisServer

    from . import cpu

    targets = [eps["me"], eps["dashboard"]] if not plan.smoke else [eps["me"]]
    stack = contextlib.ExitStack()
    servers: dict[str, tuple[BenchServer, Any]] = {}
    runs: dict[str, dict[str, list[LoadResult]]] = {}
    try:
        for name in plan.variants:
            _, env = VARIANTS[name]
            workers, worker_class, threads = plan.workers, "gthread", plan.threads
            if name == "sync":
                worker_class, threads = "sync", 1  # gunicorn runs gthread when a sync worker is given threads
            if name == "gthread-fewer":
                workers = usable_cpus()
            if name == "unix-socket":
                sock = Path(tempfile.mkdtemp(prefix="tbf-bench-sock-")) / "redis.sock"
                stack.callback(shutil.rmtree, sock.parent, True)
                redis_server = RedisServer(args=["--unixsocket", str(sock), "--unixsocketperm", "700"]).start()
                url = f"unix://{sock}?db=0"
            else:
                redis_server = RedisServer().start()
                url = redis_server.url
            stack.callback(redis_server.cleanup)
            server = BenchServer(
                # Nine servers at once: with a pool per worker (up to threads + 1 connections) beside its
                # follower's session they would need far over PostgreSQL's default 100 connections, and
                # some variants could not start. Here a request's connection closes when it ends (warm
                # hits use none): the follower's session stays, 9 x workers in all.
                env={**base_env, "REDIS_URL": url, "DATABASE_POOL_MAX": "0", "DATABASE_CONN_MAX_AGE": "0", **env},
                workers=workers,
                threads=threads,
                worker_class=worker_class,
                name=name,
            )
            stack.callback(server.stop)
            server.start()
            servers[name] = (server, redis_server.client())
            runs[name] = {endpoint.name: [] for endpoint in targets}
            for endpoint in targets:
                request_once(server, endpoint)
                run_wrk(server.url, endpoint, connections=plan.connections, seconds=1)  # warm every worker
        log(f"{len(servers)} variant servers up")
        for round_no in range(plan.option_rounds):
            for name, (server, client) in servers.items():
                meters = {"app": cpu.children(server.pid), "redis": cpu.redis_cpu(client)}
                for endpoint in targets:
                    runs[name][endpoint.name].append(
                        measured(
                            server, endpoint, connections=plan.connections, seconds=plan.option_seconds, meters=meters
                        )
                    )
            log(f"variants: round {round_no + 1} of {plan.option_rounds}")
        return {
            name: {
                "description": VARIANTS[name][0],
                "server": servers[name][0].describe(),
                "runs": {target: asdict(merge(rounds)) for target, rounds in by_target.items()},
            }
            for name, by_target in runs.items()
        }
    finally:
        stack.close()
