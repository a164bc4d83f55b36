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
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .codecs import measure_codecs
from .endpoints import FLOOR, endpoints, plain_endpoints
from .latency import measure_endpoints, refresh_cache
from .load import run_wrk, wrk_binary
from .machine import git_state, loadavg, machine
from .network import measure_network
from .plan import Plan, log
from .servers import ROOT, BenchServer, free_port
from .stampede import measure_stampede
from .standalone import run_journal, run_tokencpu
from .variants import measure_variants

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tbf_bench"
SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789"  # noqa: S105 (loopback benchmark)


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

    from . import checks, data, hitcpu, report

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
    summary = checks.verdicts(results)
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
