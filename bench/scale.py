"""The journal past one server: ``python -m bench.scale`` (figures for bench/RESULTS.md, "Scale").

Measured here, each part against its own PostgreSQL database (BENCH_DATABASE_URL, default
tbf_scale_bench, migrated here) and a private redis-server:

- index: a new process's first read of the journal with 100,000 and 1,000,000 scopes in the window
  (and 1,000,000 rows over 100,000 scopes): seconds, resident memory added, bytes per scope;
- push: commit -> seen latency (p50, p99) of pushed rows with 10/50/90 listening followers at
  10/100/1000 writes/s, the listening sessions spread over ``--listener-processes`` processes (4), and
  PostgreSQL's CPU meanwhile (all its processes, from /proc);
- poll: PostgreSQL's CPU for the followers' backstop poll, idle;
- idle: the CPU of a gunicorn with 5 workers (followers running, no requests) over 60 s (CPU time is
  counted in ticks of 10 ms: over 10 s, one tick is 0.1% of a CPU).

``--followers`` sets the counts of the push and poll parts (10, 50 and 90); 200 needs a server
whose ``max_connections`` is over 200.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from . import cpu
from .data import connect_params
from .push import bench_push

ROOT = Path(__file__).resolve().parent.parent


def fill(rows: int, scopes: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM techbirdsfly_cachejournal WHERE app <> '*history'")
        cursor.execute(
            "INSERT INTO techbirdsfly_cachejournal (app, scope) "
            "SELECT 'billing', 'billing:account:' || (g %% %s) FROM generate_series(1, %s) AS g",
            [scopes, rows],
        )
        cursor.execute("VACUUM ANALYZE techbirdsfly_cachejournal")


def load_probe() -> None:
    """In a fresh process: what the first read of the journal costs it."""
    _setup(migrate=False)
    import gc

    from techbirdsfly.cache import journal

    gc.collect()
    before = _rss()
    began = time.perf_counter()
    assert journal.catch_up()
    seconds = time.perf_counter() - began
    gc.collect()
    index = journal._index.latest
    print(f"{seconds:.3f} {_rss() - before} {len(index)} {index.nbytes()}")


def bench_index(sizes: list[tuple[int, int]]) -> list[str]:
    lines = []
    for rows, scopes in sizes:
        fill(rows, scopes)
        out = subprocess.run(
            [sys.executable, "-m", "bench.scale", "--load-probe"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        seconds, rss, count, exact = float(out[0]), int(out[1]), int(out[2]), int(out[3])
        lines.append(
            f"  first read, {rows:,} rows over {scopes:,} scopes: {seconds:.2f} s, +{rss / 1e6:.0f} MB resident,"
            f" {count:,} index entries, {exact / count:.0f} B per scope"
        )
        print(lines[-1], flush=True)
    fill(0, 1)
    return lines


def bench_poll(followers: list[int], interval: float, seconds: float) -> list[str]:
    """``count`` followers polling every ``interval`` s (the prepared backstop read), nothing written."""
    import psycopg
    from django.db import connection

    from techbirdsfly.cache import journal, journal_sql

    params = connect_params()
    postgres = cpu.postgres_processes()
    lines = []
    for count in followers:
        conns = [psycopg.connect(**params, autocommit=True) for _ in range(count)]
        snapshot = conns[0].execute("SELECT pg_current_snapshot()::text").fetchone()[0]
        cpu_before = postgres()
        began = time.monotonic()
        polls = 0
        while time.monotonic() - began < seconds:
            for conn in conns:
                journal_sql.read(connection, snapshot, journal.WINDOW, session=conn)  # what a follower polls
                polls += 1
            time.sleep(interval)
        elapsed = time.monotonic() - began
        used = cpu.delta(cpu_before, postgres())
        lines.append(
            f"  poll, {count} followers every {interval:g} s, idle: {used / polls * 1e6:.0f} µs of PostgreSQL CPU"
            f" per poll, {used / elapsed * 100:.2f}% of a CPU"
        )
        print(lines[-1], flush=True)
        for conn in conns:
            conn.close()
    return lines


def bench_idle(seconds: float, workers: int = 5) -> list[str]:
    """Two gunicorns of ``workers`` workers idle over the same ``seconds``: one whose followers listen
    and poll (the default CACHE_JOURNAL_POLL), and the same server with no follower, for what gunicorn
    and Django cost idle by themselves."""
    from auth_app.models import User
    from auth_app.services import token_pair_issue
    from techbirdsfly.servers import GunicornServer
    from techbirdsfly.testing import http_json

    user, _ = User.objects.get_or_create(email="scale-bench@example.com")
    token = token_pair_issue(user=user).access_token
    env = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ["DJANGO_SECRET_KEY"],
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CACHE_JOURNAL_POLL": "1.0",  # the default (this process runs without a follower)
    }
    followed = GunicornServer(env=env, workers=workers).start()
    bare = None
    try:
        bare = GunicornServer(env={**env, "CACHE_JOURNAL_POLL": "0"}, workers=workers).start()
        listening = 0
        for _ in range(200):  # until every worker has read the cache once: its follower listens
            status, _ = http_json(followed.url, "GET", "/api/auth/me", token=token)
            assert status == 200, status
            listening = _listening_followers()
            if listening >= workers:
                break
        for _ in range(50):  # the other's workers warmed alike
            http_json(bare.url, "GET", "/api/auth/me", token=token)
        time.sleep(2)
        servers = {"followers": followed, "none": bare}
        meters = {name: cpu.server(server.process.pid) for name, server in servers.items()}
        before = {name: meter() for name, meter in meters.items()}
        time.sleep(seconds)
        after = {name: meter() for name, meter in meters.items()}
        used = {name: cpu.delta(before[name], after[name]) for name in meters}
    finally:
        followed.stop()
        if bare is not None:
            bare.stop()
    line = (
        f"  idle gunicorn, {len(after['followers']) - 1} workers ({listening} followers listening), no requests:"
        f" {used['followers'] / seconds * 100:.2f}% of a CPU over {seconds:g} s;"
        f" the same server without followers, over the same time: {used['none'] / seconds * 100:.2f}%"
    )
    print(line, flush=True)
    return [line]


def _listening_followers() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'techbirdsfly-journal'"
            " AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _setup(*, migrate: bool) -> None:
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check that it runs")
    parser.add_argument("--parts", default="index,push,poll,idle", help="which parts to run (default: %(default)s)")
    parser.add_argument(
        "--followers",
        default="10,50,90",
        help="listening followers of the push and poll parts (200 needs a server whose max_connections is over 200)",
    )
    parser.add_argument(
        "--listener-processes",
        type=int,
        default=4,
        help="processes the push part's listening sessions are spread over (default: %(default)s)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=60.0, help="how long the idle part measures (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.load_probe:
        load_probe()
        return 0

    from .data import ensure_database
    from .servers import own_environment

    database, port = own_environment(
        "tbf_scale_bench",
        DJANGO_DEBUG="1",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop"),
        DJANGO_LOG_LEVEL="ERROR",
    )
    from techbirdsfly.testing import RedisServer  # once the settings module is named

    redis_server = RedisServer(port).start()
    try:
        ensure_database(database)
        _setup(migrate=True)
        from techbirdsfly.cache import journal

        assert journal.catch_up()  # the database's history exists before anyone reads
        print("scale", flush=True)
        if args.smoke:
            bench_index([(1_000, 1_000)])
            bench_push([2], [10], 0.5)
            bench_poll([2], 0.1, 0.3)
            bench_idle(0.5, workers=1)
            return 0
        parts = set(args.parts.split(","))
        if "index" in parts:
            bench_index([(100_000, 100_000), (1_000_000, 1_000_000), (1_000_000, 100_000)])
        followers = [int(count) for count in args.followers.split(",")]
        if "push" in parts:
            bench_push(followers, [10, 100, 1000], 3.0, args.listener_processes)
        if "poll" in parts:
            bench_poll(followers, 1.0, 5.0)
        if "idle" in parts:
            bench_idle(args.idle_seconds)
    finally:
        redis_server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
