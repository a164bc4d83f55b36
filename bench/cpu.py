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


def _snapshot(keep: Callable[[Path, int], bool]) -> dict[int, float]:
    """CPU seconds of every process that ``keep(its /proc entry, its parent's pid)`` accepts."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and keep(entry, stat[0]):
            out[int(entry.name)] = stat[1]
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def children(parent: int) -> Callable[[], dict[int, float]]:
    """CPU seconds of every process whose parent is ``parent`` (gunicorn's workers)."""
    return lambda: _snapshot(lambda _, ppid: ppid == parent)


def server(master: int) -> Callable[[], dict[int, float]]:
    """CPU seconds of a server's master process and its children (gunicorn and its workers)."""
    return lambda: _snapshot(lambda entry, ppid: ppid == master or entry.name == str(master))


def postgres_backends(database: str) -> Callable[[], dict[int, float]]:
    """CPU seconds of the PostgreSQL backends connected to ``database``."""
    marker = f" {database} ".encode()

    def connected(entry: Path, _: int) -> bool:
        cmdline = _read(entry / "cmdline")
        return cmdline.startswith(b"postgres: ") and marker in cmdline

    return lambda: _snapshot(connected)


def postgres_processes() -> Callable[[], dict[int, float]]:
    """CPU seconds of every PostgreSQL process on this machine: its server, backends and workers."""
    return lambda: _snapshot(lambda entry, _: _read(entry / "comm").startswith(b"postgres"))


def redis_cpu(client) -> Callable[[], dict[int, float]]:
    def snapshot() -> dict[int, float]:
        info = client.info("cpu")
        return {0: float(info["used_cpu_sys"]) + float(info["used_cpu_user"])}

    return snapshot


def delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots (processes started in between count in full)."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())
