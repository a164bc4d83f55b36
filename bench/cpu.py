"""CPU time spent per request by each process involved, read from /proc.

On a machine shared with other work, requests/s and latency move with everyone else's load; the
CPU time our own processes spend per request moves much less, so it is reported beside them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def children(parent: int) -> Callable[[], dict[int, float]]:
    """CPU seconds of every process whose parent is ``parent`` (gunicorn's workers)."""

    def snapshot() -> dict[int, float]:
        out = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat and stat[0] == parent:
                    out[int(entry.name)] = stat[1]
        return out

    return snapshot


def postgres_backends(database: str) -> Callable[[], dict[int, float]]:
    """CPU seconds of the PostgreSQL backends connected to ``database``."""
    marker = f" {database} ".encode()

    def snapshot() -> dict[int, float]:
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"postgres: ") and marker in cmdline:
                stat = _stat(int(entry.name))
                if stat:
                    out[int(entry.name)] = stat[1]
        return out

    return snapshot


def redis_cpu(client) -> Callable[[], dict[int, float]]:
    def snapshot() -> dict[int, float]:
        info = client.info("cpu")
        return {0: float(info["used_cpu_sys"]) + float(info["used_cpu_user"])}

    return snapshot


def delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots (processes started in between count in full)."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())
