"""Redis across a network: a proxy that adds a round trip's delay between a server and its Redis."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

from .endpoints import FLOOR, check_endpoint, request_once
from .latency import measured
from .load import Endpoint, LoadResult, merge, run_wrk
from .plan import Plan, log
from .servers import BenchServer


def round_trip_ms(port: int, *, pings: int) -> float:
    """p50 of one PING over a raw socket to ``port``: the network's and Redis's share of a round trip."""
    import socket
    import statistics

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for _ in range(pings):
            began = time.perf_counter()
            sock.sendall(b"PING\r\n")
            if sock.recv(64) != b"+PONG\r\n":
                raise RuntimeError("unexpected answer to PING")
            samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def measure_network(
    plan: Plan,
    base_env: dict[str, str],
    bypass: BenchServer,
    eps: dict[str, Endpoint],
    plain: dict[str, Endpoint],
    redis_port: int,
) -> dict:
    """Redis on another host: the cached server reaches its Redis through a relay that adds a delay.

    faults/proxy.py (a thread per connection, in this process) sleeps ``network_delay_ms`` before
    relaying each chunk towards Redis, so every round trip pays it once. The uncached figures are the
    bypassed server's, which sends Redis nothing on these endpoints (see *Servers*). Beside the layer,
    the same server answers the same bytes through plain django-redis (``plain``, one round trip too):
    what any hit costs there, whoever reads Redis.
    """
    from faults.proxy import TcpProxy

    from . import cpu

    proxy = TcpProxy(redis_port).start()
    proxy.delay = plan.network_delay_ms / 1000
    server = BenchServer(
        env={**base_env, "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"},
        workers=plan.workers,
        threads=plan.threads,
        name="network",
    )
    out: dict[str, Any] = {"delay_ms": plan.network_delay_ms, "endpoints": {}}
    try:
        server.start()
        pings = 50 if plan.smoke else 2000
        out["round_trip_ms"] = round_trip_ms(proxy.port, pings=pings)
        out["loopback_round_trip_ms"] = round_trip_ms(redis_port, pings=pings)
        log(f"network: PING {out['round_trip_ms']:.3f} ms relayed, {out['loopback_round_trip_ms']:.3f} ms direct")
        # The relay's threads run in this process, which does nothing else meanwhile: its CPU is theirs.
        meters = {"app": cpu.children(server.pid), "relay": lambda: {0: sum(os.times()[:2])}}
        targets = [eps["me"], eps["summary_largest"]]
        for ep in targets:
            check_endpoint(server, bypass, ep)
            run_wrk(server.url, ep, connections=plan.connections, seconds=1)
            if request_once(server, plain[ep.name]) != request_once(server, ep):
                raise RuntimeError(f"{plain[ep.name].path} does not answer what {ep.path} answers")
        for ep in targets:
            runs: dict[str, list[LoadResult]] = {k: [] for k in ("floor", "cached", "plain", "bypass")}
            runs |= {k: [] for k in ("floor_1", "cached_1", "plain_1", "bypass_1")}
            for _ in range(plan.rounds):
                kw = {"connections": plan.connections, "seconds": plan.seconds}
                runs["floor"].append(measured(server, FLOOR, meters=meters, **kw))
                runs["cached"].append(measured(server, ep, meters=meters, **kw))
                runs["plain"].append(measured(server, plain[ep.name], meters=meters, **kw))
                runs["bypass"].append(run_wrk(bypass.url, ep, **kw))
            for _ in range(max(plan.single_rounds, 1)):
                kw = {"connections": 1, "seconds": plan.single_seconds}
                runs["floor_1"].append(measured(server, FLOOR, meters=meters, **kw))
                runs["cached_1"].append(measured(server, ep, meters=meters, **kw))
                runs["plain_1"].append(measured(server, plain[ep.name], meters=meters, **kw))
                runs["bypass_1"].append(run_wrk(bypass.url, ep, **kw))
            row = {"label": ep.label} | {name: asdict(merge(rounds)) for name, rounds in runs.items()}
            out["endpoints"][ep.name] = row
            log(f"network {ep.name}: cached p50 {row['cached_1']['latency_ms']['p50']:.2f} ms (1 client)")
    finally:
        server.stop()
        proxy.stop()
    return out
