"""What the figures were measured on: CPUs, versions, the commit, the load."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .plan import usable_cpus
from .servers import ROOT


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
        "usable_cpus": usable_cpus(),
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
