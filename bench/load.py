"""Load from wrk: one endpoint, N connections, D seconds, figures parsed from bench/wrk.lua's line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk.lua")


@dataclass(frozen=True)
class Endpoint:
    name: str  # short id: "summary_largest"
    label: str  # for the report: "billing summary (largest account)"
    path: str
    method: str = "GET"
    token: str = ""
    body: str = ""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    not_ok: int
    from_cache: int
    errors: dict[str, int]
    latency_ms: dict[str, float]
    connections: int
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50(self) -> float:
        return self.latency_ms["p50"]

    @property
    def p99(self) -> float:
        return self.latency_ms["p99"]

    @property
    def failed(self) -> int:
        return self.not_ok + sum(self.errors.get(k, 0) for k in ("connect", "read", "write", "timeout"))


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not on PATH; the benchmark needs it (Debian: apt-get install -y wrk)")
    return binary


def wrk_version() -> str:
    done = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0].strip()


def run_wrk(base_url: str, endpoint: Endpoint, *, connections: int, seconds: int, threads: int = 1) -> LoadResult:
    """Closed-loop load: each connection sends its next request when the previous answer arrives."""
    env = {
        **os.environ,
        "BENCH_METHOD": endpoint.method,
        "BENCH_TOKEN": endpoint.token,
        "BENCH_BODY": endpoint.body,
    }
    command = [
        wrk_binary(),
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        # Uncached aggregates can take seconds under load; wrk's default 2 s would drop them.
        "--timeout=60s",
        f"--script={SCRIPT}",
        base_url + endpoint.path,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        not_ok=raw["not_ok"],
        from_cache=raw["from_cache"],
        errors=raw["errors"] | {"4xx": raw["status_4xx"], "5xx": raw["status_5xx"]},
        latency_ms={k: v / 1000 for k, v in raw["latency_us"].items()},
        connections=connections,
    )


def merge(rounds: list[LoadResult]) -> LoadResult:
    """Several rounds of one measurement as one: counts and CPU summed, percentiles the median round's."""
    if len(rounds) == 1:
        return rounds[0]

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    latency = {key: median([r.latency_ms[key] for r in rounds]) for key in rounds[0].latency_ms}
    latency["max"] = max(r.latency_ms["max"] for r in rounds)
    cpu: dict[str, float] = {}
    for r in rounds:
        for name, seconds in r.extra.get("cpu", {}).items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    errors = {key: sum(r.errors.get(key, 0) for r in rounds) for key in rounds[0].errors}
    return LoadResult(
        requests=sum(r.requests for r in rounds),
        seconds=sum(r.seconds for r in rounds),
        not_ok=sum(r.not_ok for r in rounds),
        from_cache=sum(r.from_cache for r in rounds),
        errors=errors,
        latency_ms=latency,
        connections=rounds[0].connections,
        extra={"cpu": cpu, "rounds": [{"rps": r.rps, "p50": r.p50, "p99": r.p99} for r in rounds]},
    )
