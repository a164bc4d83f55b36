"""The benchmark: ``python -m bench.run`` (``make bench``) writes bench/RESULTS.md.

It seeds (or reuses) a PostgreSQL database with seed_demo, starts two redis-servers and two gunicorn
servers of its own on loopback -- one with the cache, one with the cache bypassed -- drives each
endpoint with wrk, counts SQL queries and Redis round trips per hit, measures in this process the
CPU of a warm hit beside a plain django-redis view that answers the same bytes (bench/hitcpu.py),
makes a hot key expire under 64 concurrent clients (counting the entry's writes by MONITOR), puts
0.5 ms between a server and its Redis (faults/proxy.py), compares serializer and client options,
runs ``python -m bench.journal``, and writes the figures, with bench/LOGINS.md copied in as it is.

``--smoke`` runs the same steps on tiny data for a second or two each, so CI keeps it working
(bench/tests/test_bench_smoke.py); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .load import Endpoint, LoadResult, merge, run_wrk, wrk_binary
from .servers import ROOT, BenchServer, free_port

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tbf_bench"
SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789"  # noqa: S105 (loopback benchmark)
APP_OF = {"auth": "auth", "billing": "billing", "admin": "admin", "images": "image", "users": "user"}


@dataclass(frozen=True)
class Plan:
    smoke: bool
    connections: int  # concurrent clients of the load runs
    seconds: int  # per load run
    rounds: int  # floor, cached and bypassed load runs alternate this many times per endpoint
    single_seconds: int  # per single-client run
    single_rounds: int  # 0: no single-client runs
    workers: int
    threads: int
    burst: int  # simultaneous requests on an expired hot key
    bursts: int
    stampede_connections: int
    stampede_seconds: int
    option_seconds: int
    option_rounds: int
    codec_seconds: float
    parser_calls: int
    variants: tuple[str, ...]
    cpu_requests: int  # in-process CPU probe: requests per variant per (short) round
    cpu_rounds: int
    network_delay_ms: float  # added to every Redis round trip of the network scenario
    journal_args: tuple[str, ...]  # for python -m bench.journal

    @classmethod
    def full(cls) -> Plan:
        return cls(
            smoke=False, connections=16, seconds=4, rounds=3, single_seconds=3, single_rounds=2,
            workers=_cpus() * 2 + 1, threads=4, burst=64, bursts=3, stampede_connections=64,
            stampede_seconds=20, option_seconds=3, option_rounds=3, codec_seconds=0.4, parser_calls=3000,
            variants=tuple(VARIANTS), cpu_requests=50, cpu_rounds=200, network_delay_ms=0.5, journal_args=(),
        )  # fmt: skip

    @classmethod
    def smoke_plan(cls) -> Plan:
        return cls(
            smoke=True, connections=4, seconds=1, rounds=1, single_seconds=1, single_rounds=0,
            workers=2, threads=2, burst=64, bursts=1, stampede_connections=16,
            stampede_seconds=3, option_seconds=1, option_rounds=1, codec_seconds=0.01, parser_calls=50,
            variants=("baseline", "msgpack", "sync"), cpu_requests=50, cpu_rounds=2, network_delay_ms=0.5,
            journal_args=("--writes", "100", "--hits", "1000", "--rows", "1000"),
        )  # fmt: skip


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _configure_environment(database_url: str, redis_url: str) -> None:
    """This process runs Django too (seeding, in-process probes), against the benchmark's own Redis."""
    for name in list(os.environ):
        if name.startswith(("BENCH_", "REDIS_", "GUNICORN_")) or name == "PROMETHEUS_MULTIPROC_DIR":
            del os.environ[name]
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,  # never the machine's Redis: a redis-server started by this run
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DJANGO_LOG_LEVEL="WARNING",
    )


def endpoints(fx: Any) -> list[Endpoint]:
    return [
        Endpoint("validate", "token validation", "/api/auth/validate-token", "POST", fx.token),
        Endpoint("me", "me", "/api/auth/me", token=fx.token),
        Endpoint(
            "summary_typical",
            f"billing summary, typical account ({fx.typical_records:,} records)",
            f"/api/billing/summary/{fx.typical_account}",
            token=fx.typical_token,
        ),
        Endpoint(
            "summary_largest",
            f"billing summary, largest account ({fx.largest_records:,} records)",
            f"/api/billing/summary/{fx.largest_account}",
            token=fx.token,
        ),
        Endpoint(
            "usage", "current usage (largest account)", f"/api/billing/usage/{fx.largest_account}", token=fx.token
        ),
        Endpoint(
            "invoices", "invoices (largest account)", f"/api/billing/invoices/{fx.largest_account}", token=fx.token
        ),
        Endpoint("dashboard", "admin dashboard", "/api/admin/analytics/dashboard", token=fx.staff_token),
        Endpoint("image", "image metadata", f"/api/images/{fx.image_id}", token=fx.token),
        Endpoint("preferences", "preferences", f"/api/users/{fx.user_id}/preferences", token=fx.token),
    ]


FLOOR = Endpoint("floor", "floor (DRF view, no Redis, no SQL)", "/bench/floor")


def _request(server: BenchServer, endpoint: Endpoint) -> tuple[int, Any]:
    from techbirdsfly.testing import http_json

    body = json.loads(endpoint.body) if endpoint.body else ({} if endpoint.method == "POST" else None)
    return http_json(server.url, endpoint.method, endpoint.path, token=endpoint.token or None, body=body, timeout=120)


def _from_cache(answer: Any) -> bool | None:
    return answer.get("fromCache") if isinstance(answer, dict) else None


def check_endpoint(cached: BenchServer, bypass: BenchServer, endpoint: Endpoint) -> None:
    """Each endpoint answers 200 on both servers; a hit on the cached one, a miss on the other."""
    for server, want, tries in ((bypass, False, 1), (cached, True, 50)):
        # A worker distrusts reads over a Redis connection it has just made (pending invalidations
        # are replayed first), so the first requests to a fresh server can be misses.
        for _ in range(tries):
            status, answer = _request(server, endpoint)
            if status != 200:
                raise RuntimeError(f"{endpoint.path} answered {status} on the {server.name} server: {answer!r:.500}")
            if _from_cache(answer) is want:
                break
        else:
            raise RuntimeError(f"{endpoint.path} on the {server.name} server: fromCache is not {want}: {answer!r:.300}")


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


def measure_stampede(plan: Plan, cached: BenchServer, eps: dict[str, Endpoint], redis: Any, redis_port: int) -> dict:
    from techbirdsfly.cache.calls import cache_for

    from . import stampede
    from .probes import count_writes

    dashboard = eps["dashboard"]
    admin = cache_for("admin")
    dashboard_key = admin.make_key("admin:dashboard")
    summary = eps["summary_largest"]
    summary_key = cache_for("billing").make_key(f"billing:summary:{summary.path.rsplit('/', 1)[1]}")
    out: dict[str, Any] = {"bursts": [], "load": {}}

    for endpoint, app, key in ((dashboard, "admin", dashboard_key), (summary, "billing", summary_key)):
        for _ in range(plan.bursts):
            _request(cached, endpoint)  # warm, so the burst starts from a hit that is then deleted
            with count_writes(redis_port, key) as writes:
                burst = stampede.cold_burst(
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
        _request(cached, dashboard)
        result = stampede.under_load(
            cached, dashboard, app="admin", connections=plan.stampede_connections, seconds=seconds, action=action, at=at
        )
        out["load"][mode] = {"description": description, **asdict(result)}
        log(f"stampede {mode}: {result.extra}")
    return out


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


def plain_endpoints(fx: Any) -> dict[str, Endpoint]:
    """The plain django-redis twins (bench/views.py) of the endpoints the network scenario measures."""
    from .hitcpu import plain_twins

    def endpoint(name: str, twin: str) -> Endpoint:
        path, query = plain_twins(fx)[twin]
        return Endpoint(name, f"plain django-redis, as {twin}", path + (f"?{query}" if query else ""), token=fx.token)

    return {"me": endpoint("plain_me", "me"), "summary_largest": endpoint("plain_summary", "summary")}


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
            if _request(server, plain[ep.name]) != _request(server, ep):
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


def run_journal(plan: Plan, database_url: str) -> dict:
    """``python -m bench.journal`` in a process of its own (its own Redis and database); its printed figures."""
    import subprocess

    base, name = database_url.rsplit("/", 1)
    journal_url = f"{base}/{name}_journal" if plan.smoke else f"{base}/tbf_journal_bench"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["BENCH_DATABASE_URL"] = journal_url
    command = [sys.executable, "-m", "bench.journal", *plan.journal_args]
    began = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.journal failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.startswith("  ")]
    return {
        "command": " ".join(["python", "-m", "bench.journal", *plan.journal_args]),
        "database": journal_url.rsplit("/", 1)[1],
        "lines": lines,
        "seconds": round(time.monotonic() - began, 1),
    }


def run_tokencpu(plan: Plan, database_url: str) -> dict:
    """``python -m bench.tokencpu`` in a process of its own (its own Redis and database); its printed table."""
    import subprocess

    base, name = database_url.rsplit("/", 1)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["BENCH_DATABASE_URL"] = f"{base}/{name}_tokencpu" if plan.smoke else f"{base}/tbf_tokencpu_bench"
    args = ("--rounds", "2", "--requests", "5") if plan.smoke else ()
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.tokencpu", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.tokencpu failed ({done.returncode}): {done.stderr[-2000:]}")
    return {
        "command": " ".join(["python", "-m", "bench.tokencpu", *args]),
        "lines": done.stdout.splitlines()[1:],
        "seconds": round(time.monotonic() - began, 1),
    }


VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "baseline": ("production defaults: orjson + HMAC, hiredis, pool 64, gthread, TCP", {}),
    "json": ("stdlib json + HMAC", {"BENCH_SERIALIZER": "json"}),
    "msgpack": ("msgpack + HMAC", {"BENCH_SERIALIZER": "msgpack"}),
    "python-parser": ("pure-Python RESP parser (no hiredis)", {"BENCH_REDIS_PARSER": "python"}),
    "pool-4": ("Redis pool of 4 connections per process (= threads)", {"REDIS_MAX_CONNECTIONS": "4"}),
    "pool-2": ("Redis pool of 2 connections per process (< threads)", {"REDIS_MAX_CONNECTIONS": "2"}),
    "sync": ("gunicorn sync workers (same process count)", {}),
    "gthread-fewer": ("gthread with one worker per CPU", {}),
    "unix-socket": ("Redis over a Unix socket instead of TCP loopback", {}),
}


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
            workers, worker_class = plan.workers, "gthread"
            if name == "sync":
                worker_class = "sync"
            if name == "gthread-fewer":
                workers = _cpus()
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
                # Nine servers at once would hold up to 9 x workers x threads database connections
                # (PostgreSQL allows 100 by default, shared with everything else): close each after use.
                env={**base_env, "REDIS_URL": url, "DATABASE_CONN_MAX_AGE": "0", **env},
                workers=workers,
                threads=plan.threads,
                worker_class=worker_class,
                name=name,
            )
            stack.callback(server.stop)
            server.start()
            servers[name] = (server, redis_server.client())
            runs[name] = {endpoint.name: [] for endpoint in targets}
            for endpoint in targets:
                _request(server, endpoint)
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


def measure_codecs(plan: Plan, cached: BenchServer, eps: dict[str, Endpoint], fx: Any) -> dict:
    from auth_app import cache as auth_cache
    from auth_app.tokens import token_hash
    from techbirdsfly.cache.calls import cache_for
    from techbirdsfly.cache.serializers import SafeJSONSerializer

    from . import options

    for name in ("validate", "summary_largest", "invoices", "dashboard"):
        _request(cached, eps[name])
    entries = {
        "token record": cache_for("auth").get(auth_cache.token_key(token_hash(fx.token))),
        "billing summary": cache_for("billing").get(f"billing:summary:{fx.largest_account}"),
        "invoice list": cache_for("billing").get(f"billing:invoices:{fx.largest_account}"),
        "dashboard": cache_for("admin").get("admin:dashboard"),
    }
    missing = [name for name, value in entries.items() if value is None]
    if missing:
        raise RuntimeError(f"entries not in Redis after a request: {missing}")
    invoices = entries["invoice list"]["v"]["data"] or [{"id": 1, "number": "INV-1", "amount": "1.00"}]
    # Distinct objects (pickle would otherwise store one shared dict 1,000 times by reference).
    many = [{**invoices[i % len(invoices)], "id": i, "number": f"INV-{i:06d}"} for i in range(1000)]
    large = {**entries["invoice list"], "v": {"ownerId": 1, "data": many}}
    payloads = {**entries, "1,000 invoices (synthetic)": large}
    codecs = options.compare_codecs(payloads, min_seconds=plan.codec_seconds)
    serializer = SafeJSONSerializer({})
    blobs = {
        "token": serializer.dumps(entries["token record"]),
        "summary": serializer.dumps(entries["billing summary"]),
    }
    blobs["large"] = serializer.dumps(large)
    parsers = options.compare_parsers(os.environ["REDIS_URL"], blobs, calls=plan.parser_calls)
    return {
        "codecs": [asdict(c) | {"total_us": c.total_us} for c in codecs],
        "hmac_us": {
            name: options.hmac_cost_us(value, min_seconds=plan.codec_seconds) for name, value in payloads.items()
        },
        "parsers": [asdict(p) for p in parsers],
    }


def machine(database_url: str, redis: Any) -> dict[str, Any]:
    import platform
    from importlib.metadata import version

    from django.db import connection

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    mem_kb = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    from .load import wrk_version

    packages = ["Django", "djangorestframework", "django-redis", "redis", "hiredis", "psycopg", "gunicorn", "orjson"]
    packages.append("msgpack")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "usable_cpus": _cpus(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in packages},
        "postgresql": pg,
        "redis_server": redis.info("server")["redis_version"],
        "wrk": wrk_version(),
        "database": database_url.rsplit("/", 1)[1],
    }


def git_state() -> str:
    """The commit the servers run, and whether the work tree differed from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    # Porcelain lines are "XY path": the status takes the first three characters.
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return git("rev-parse", "--short", "HEAD").strip() + (
        f" + uncommitted changes to {', '.join(changed)}" if changed else ""
    )


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, about a second per run (CI)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database of the data set; created and seeded when needed, reused when big enough "
        "(default: $BENCH_DATABASE_URL or %(default)s)",
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the report (default: bench/RESULTS.md; --smoke: none)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON here")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only rewrite the report from figures saved with --json"
    )
    parser.add_argument("--drop-database", action="store_true", help="drop the database at the end (the smoke test)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        from . import report

        (args.output or ROOT / "bench" / "RESULTS.md").write_text(report.render(json.loads(args.render.read_text())))
        return 0
    plan = Plan.smoke_plan() if args.smoke else Plan.full()
    output = args.output or (None if args.smoke else ROOT / "bench" / "RESULTS.md")
    wrk_binary()
    load_before = loadavg()
    commit = git_state()
    redis_port, bypass_redis_port = free_port(), free_port()
    _configure_environment(args.database_url, f"redis://127.0.0.1:{redis_port}/0")

    from .data import FULL, SMOKE, drop_database, ensure_database

    size = SMOKE if plan.smoke else FULL
    created = ensure_database(args.database_url)

    import django

    django.setup()
    from techbirdsfly.testing import RedisServer

    from . import data, hitcpu, report

    stack = contextlib.ExitStack()
    try:
        redis_server = RedisServer(port=redis_port).start()
        stack.callback(redis_server.cleanup)
        bypass_redis = RedisServer(port=bypass_redis_port).start()
        stack.callback(bypass_redis.cleanup)
        redis = redis_server.client()
        bypass_client = bypass_redis.client()

        started = time.monotonic()
        seeding = data.ensure_data(size, log) + (" (new database)" if created else "")
        seconds_seeding = time.monotonic() - started
        fx = data.prepare_fixtures(size)
        log(f"data: {seeding} in {seconds_seeding:.0f}s; largest account {fx.largest_account} ({fx.largest_records:,})")

        base_env = {k: os.environ[k] for k in ("DATABASE_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY")}
        base_env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
        cached = BenchServer(
            env={**base_env, "REDIS_URL": redis_server.url}, workers=plan.workers, threads=plan.threads, name="cached"
        )
        stack.callback(cached.stop)
        bypass = BenchServer(
            env={**base_env, "REDIS_URL": bypass_redis.url, "BENCH_CACHE_BYPASS": "1"},
            workers=plan.workers,
            threads=plan.threads,
            name="bypass",
        )
        stack.callback(bypass.stop)
        cached.start()
        bypass.start()
        log(f"servers up: {cached.describe()} (cached, {cached.url}) and the same with the cache bypassed")

        eps = endpoints(fx)
        by_name = {ep.name: ep for ep in eps}
        for server in (cached, bypass):  # every worker connected and warm before anything is measured
            run_wrk(server.url, FLOOR, connections=plan.connections, seconds=1 if plan.smoke else 3)
        from .probes import command_counts, command_delta

        bypass_before = command_counts(bypass_client)
        results: dict[str, Any] = {"plan": asdict(plan), "seeding": seeding, "fixtures": asdict(fx)}
        (
            results["fixtures"].pop("token"),
            results["fixtures"].pop("typical_token"),
            results["fixtures"].pop("staff_token"),
        )
        results.update(measure_endpoints(plan, cached, bypass, eps, redis, args.database_url.rsplit("/", 1)[1]))
        log("CPU per hit in this process: the layer and plain django-redis")
        refresh_cache()
        results["hit_cpu"] = hitcpu.run(fx, requests=plan.cpu_requests, rounds=plan.cpu_rounds)
        log(f"CPU per hit: {hitcpu.summary(results['hit_cpu'])}")
        log("stampede")
        results["stampede"] = measure_stampede(plan, cached, by_name, redis, redis_port)
        log("serializers and parsers")
        results["codecs"] = measure_codecs(plan, cached, by_name, fx)
        cached.stop()
        log(f"Redis across a network (+{plan.network_delay_ms} ms a round trip)")
        results["network"] = measure_network(plan, base_env, bypass, by_name, plain_endpoints(fx), redis_port)
        results["bypass_redis_commands"] = command_delta(bypass_before, command_counts(bypass_client))
        bypass.stop()
        log("server variants")
        results["variants"] = measure_variants(plan, base_env, by_name)
        log("invalidation journal (python -m bench.journal)")
        results["journal"] = run_journal(plan, args.database_url)
        log("made-up bearer tokens (python -m bench.tokencpu)")
        results["tokencpu"] = run_tokencpu(plan, args.database_url)
        results["servers"] = {"main": cached.describe(), "connections": plan.connections}
        results["machine"] = machine(args.database_url, redis)
        results["machine"]["commit"] = commit
        results["machine"]["loadavg_before"] = load_before
        results["machine"]["loadavg_after"] = loadavg()
        results["command"] = "python -m bench.run" + (" --smoke" if plan.smoke else "")
    finally:
        stack.close()
        if args.drop_database:
            from django.db import connections

            connections.close_all()
            drop_database(args.database_url)
            if plan.smoke:
                drop_database(args.database_url + "_journal")
                drop_database(args.database_url + "_tokencpu")

    text = report.render(results)
    if output:
        output.write_text(text)
        log(f"wrote {output}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    summary = report.verdicts(results)
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
