"""The push part of ``python -m bench.scale``: commit -> seen latency of the journal's NOTIFY.

Listening sessions in processes of their own (as the followers of separate workers are), one writer
committing journal rows whose scopes carry their send time, and PostgreSQL's CPU meanwhile.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from . import cpu
from .data import connect_params


def bench_push(followers: list[int], rates: list[int], seconds: float, processes: int = 4) -> list[str]:
    """Commit -> seen with ``followers`` listening sessions spread over ``processes`` processes."""
    lines = []
    for count in followers:
        with Listeners(connect_params(), count, min(processes, count)) as listeners:
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
    writer = psycopg.connect(**connect_params())
    postgres = cpu.postgres_processes()
    cpu_before = postgres()
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
    postgres_cpu = cpu.delta(cpu_before, postgres()) / elapsed
    writer.close()
    latencies = sorted(listeners.take())
    expected = n * listeners.count
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    worst = latencies[-1] * 1000 if latencies else float("nan")
    return (
        f"  push, {listeners.count} followers in {len(listeners.processes)} processes, {rate} writes/s"
        f" (ran {n / elapsed:.0f}/s): commit -> seen p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms"
        f" ({len(latencies):,} of {expected:,} deliveries); PostgreSQL {postgres_cpu * 100:.1f}% of a CPU"
    )
