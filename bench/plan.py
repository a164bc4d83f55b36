"""What one benchmark run does and for how long (full or ``--smoke``), and its progress lines."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass


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
            workers=usable_cpus() * 2 + 1, threads=4, burst=64, bursts=3, stampede_connections=64,
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


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


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
