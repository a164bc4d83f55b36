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
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, int]:
    """CPU ticks used so far by each PostgreSQL process on this machine."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if head.split("(", 1)[-1].startswith("postgres"):
            values = tail.split()
            found[int(stat.parent.name)] = int(values[11]) + int(values[12])
    return found


def postgres_cpu_since(before: dict[int, int]) -> float:
    """CPU seconds PostgreSQL used since ``before`` (a backend that ended meanwhile is not counted)."""
    after = postgres_cpu()
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items()) / TICKS


def process_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            values = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(values[11]) + int(values[12])
    return total / TICKS


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


def _connect_params() -> dict:
    """psycopg's connection arguments for the benchmark's database, as Django builds them."""
    from django.db import connection

    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    return params


def bench_push(followers: list[int], rates: list[int], seconds: float, processes: int = 4) -> list[str]:
    """Commit -> seen with ``followers`` listening sessions spread over ``processes`` processes."""
    lines = []
    for count in followers:
        with Listeners(_connect_params(), count, min(processes, count)) as listeners:
            for rate in rates:
                lines.append(_push_round(listeners, rate, seconds))
                print(lines[-1], flush=True)
    return lines


class Listeners:
    """``count`` listening sessions in ``processes`` processes of their own, each waiting on its
    sessions' sockets with one ``select`` and reading what is ready with ``notifies(timeout=0)``, as
    the follower does (techbirdsfly/cache/follower.py). Separate processes, so that the listeners do not
    share one interpreter lock, as the followers of separate workers do not."""

    def __init__(self, params: dict, count: int, processes: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited sockets
        shares = [count // processes + (i < count % processes) for i in range(processes)]
        self.count, self.pipes, self.processes = count, [], []
        for share in shares:
            ours, theirs = context.Pipe()
            process = context.Process(target=_listen_process, args=(params, share, theirs), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def __enter__(self) -> Listeners:
        for pipe in self.pipes:
            if not pipe.poll(60) or pipe.recv() != "listening":
                raise RuntimeError("a listener process did not start")
        return self

    def take(self) -> list[float]:
        """Every commit -> seen latency (seconds) received since the last call."""
        for pipe in self.pipes:
            pipe.send("take")
        return [latency for pipe in self.pipes for latency in pipe.recv()]

    def __exit__(self, *exc: object) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send("quit")
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


def _listen_process(params: dict, count: int, pipe: Any) -> None:
    """One listener process: the latency of each notification, from the writer's stamp in its scope."""
    import select

    import psycopg

    from techbirdsfly.cache import journal_sql

    sessions = [psycopg.connect(**params, autocommit=True) for _ in range(count)]
    for session in sessions:
        session.execute(f"LISTEN {journal_sql.CHANNEL}")
    by_socket = {session.pgconn.socket: session for session in sessions}
    latencies: list[float] = []
    pipe.send("listening")
    while True:
        readable, _, _ = select.select([pipe.fileno(), *by_socket], [], [], 1.0)
        for fd in readable:
            if fd == pipe.fileno():
                continue
            for notice in by_socket[fd].notifies(timeout=0):
                seen = time.monotonic_ns()
                stamp = notice.payload.rsplit("-", 1)[-1]
                if stamp.isdigit():
                    latencies.append((seen - int(stamp)) / 1e9)
        if pipe.fileno() in readable:
            message = pipe.recv()
            if message == "quit":
                break
            pipe.send(latencies)
            latencies = []
    for session in sessions:
        session.close()


def _push_round(listeners: Listeners, rate: int, seconds: float) -> str:
    """One writer committing journal rows at ``rate`` a second; each scope carries its send time."""
    import psycopg

    from techbirdsfly.cache import journal_sql

    listeners.take()  # nothing left over from an earlier round
    writer = psycopg.connect(**_connect_params())
    cpu_before = postgres_cpu()
    began = time.monotonic()
    n = 0
    while time.monotonic() - began < seconds:
        # Stamped before the statement is sent: the latency includes the INSERT and the commit.
        scope = f"billing:account:push-{rate}-{n}-{time.monotonic_ns()}"
        params_row = {"app": "billing", "scopes": [scope], "channel": journal_sql.CHANNEL, "max": 7900}
        writer.execute(journal_sql._RECORD, params_row)
        writer.commit()
        n += 1
        pause = began + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - began
    time.sleep(0.5)  # the last notifications on their way
    cpu = postgres_cpu_since(cpu_before) / elapsed
    writer.close()
    latencies = sorted(listeners.take())
    expected = n * listeners.count
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    worst = latencies[-1] * 1000 if latencies else float("nan")
    return (
        f"  push, {listeners.count} followers in {len(listeners.processes)} processes, {rate} writes/s"
        f" (ran {n / elapsed:.0f}/s): commit -> seen p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms"
        f" ({len(latencies):,} of {expected:,} deliveries); PostgreSQL {cpu * 100:.1f}% of a CPU"
    )


def bench_poll(followers: list[int], interval: float, seconds: float) -> list[str]:
    """``count`` followers polling every ``interval`` s (the prepared backstop read), nothing written."""
    import psycopg
    from django.db import connection

    from techbirdsfly.cache import journal, journal_sql

    params = _connect_params()
    lines = []
    for count in followers:
        conns = [psycopg.connect(**params, autocommit=True) for _ in range(count)]
        snapshot = conns[0].execute("SELECT pg_current_snapshot()::text").fetchone()[0]
        cpu_before = postgres_cpu()
        began = time.monotonic()
        polls = 0
        while time.monotonic() - began < seconds:
            for conn in conns:
                journal_sql.read(connection, snapshot, journal.WINDOW, session=conn)  # what a follower polls
                polls += 1
            time.sleep(interval)
        elapsed = time.monotonic() - began
        cpu = postgres_cpu_since(cpu_before)
        lines.append(
            f"  poll, {count} followers every {interval:g} s, idle: {cpu / polls * 1e6:.0f} µs of PostgreSQL CPU"
            f" per poll, {cpu / elapsed * 100:.2f}% of a CPU"
        )
        print(lines[-1], flush=True)
        for conn in conns:
            conn.close()
    return lines


def bench_idle(seconds: float) -> list[str]:
    """Two gunicorns of 5 workers idle over the same ``seconds``: one whose followers listen and poll
    (the default CACHE_JOURNAL_POLL), and the same server with no follower, for what gunicorn and
    Django cost idle by themselves."""
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
    followed = GunicornServer(env=env, workers=5).start()
    bare = None
    try:
        bare = GunicornServer(env={**env, "CACHE_JOURNAL_POLL": "0"}, workers=5).start()
        listening = 0
        for _ in range(200):  # until every worker has read the cache once: its follower listens
            status, _ = http_json(followed.url, "GET", "/api/auth/me", token=token)
            assert status == 200, status
            listening = _listening_followers()
            if listening >= 5:
                break
        for _ in range(50):  # the other's workers warmed alike
            http_json(bare.url, "GET", "/api/auth/me", token=token)
        time.sleep(2)
        servers = {"followers": followed, "none": bare}
        pids = {name: [server.process.pid, *_children(server.process.pid)] for name, server in servers.items()}
        before = {name: process_cpu_seconds(group) for name, group in pids.items()}
        time.sleep(seconds)
        cpu = {name: process_cpu_seconds(group) - before[name] for name, group in pids.items()}
    finally:
        followed.stop()
        if bare is not None:
            bare.stop()
    line = (
        f"  idle gunicorn, {len(pids['followers']) - 1} workers ({listening} followers listening), no requests:"
        f" {cpu['followers'] / seconds * 100:.2f}% of a CPU over {seconds:g} s;"
        f" the same server without followers, over the same time: {cpu['none'] / seconds * 100:.2f}%"
    )
    print(line, flush=True)
    return [line]


def _listening_followers() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'techbirdsfly-journal'")
        return cursor.fetchone()[0]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            values = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(values[1]) == pid:
            found.append(int(stat.parent.name))
    return found


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
