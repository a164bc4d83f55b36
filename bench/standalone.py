"""The benchmarks that run in a process of their own (bench.journal, bench.tokencpu), run and read back."""

from __future__ import annotations

import os
import sys
import time

from .plan import Plan
from .servers import ROOT


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
