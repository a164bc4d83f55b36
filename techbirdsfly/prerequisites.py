"""``python -m techbirdsfly.prerequisites [--full]``: what ``make test`` needs, checked before it starts.

The whole suite runs everything it has, in CI and on a laptop alike: nothing is skipped for a
missing tool. So a missing one is named here, with the test that needs it and the package that
provides it, before a run that would fail minutes later. ``--full``: the whole suite (``make test``
without TESTS); without it only what every test needs (Redis and the database).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass

import dj_database_url


@dataclass(frozen=True)
class Tool:
    command: str
    package: str  # Debian's
    needed_by: str
    full_only: bool = True


TOOLS = (
    Tool("redis-server", "redis-server", "every test (each run starts a private redis-server)", full_only=False),
    Tool("nginx", "nginx", "the front proxy's tests (techbirdsfly/tests/test_infra_nginx.py)"),
    Tool("wrk", "wrk", "the benchmark's smoke test (bench/tests/test_bench_smoke.py)"),
    Tool("chromium", "chromium", "the dashboard's browser test (admin_app/tests/test_dashboard_page.py)"),
    Tool("chromedriver", "chromium-driver", "the dashboard's browser test (admin_app/tests/test_dashboard_page.py)"),
)


def installed(command: str) -> bool:
    # Debian puts nginx in /usr/sbin, which is not on a normal user's PATH.
    return shutil.which(command) is not None or os.access(f"/usr/sbin/{command}", os.X_OK)


def missing_tools(*, full: bool) -> list[Tool]:
    return [tool for tool in TOOLS if (full or not tool.full_only) and not installed(tool.command)]


def database_problem(url: str) -> str | None:
    """Why the tests cannot use the database at ``url``; None when they can."""
    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        return "DATABASE_URL is not a postgres:// URL: the tests run on PostgreSQL, as CI and production do"
    import psycopg

    where = f"{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}"  # not the URL: it may hold a password
    try:
        # The test runner creates test_<name> from the server's maintenance database, as here.
        psycopg.connect(
            dbname="postgres",
            user=config["USER"] or None,
            password=config["PASSWORD"] or None,
            host=config["HOST"] or "127.0.0.1",
            port=config["PORT"] or 5432,
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot reach PostgreSQL at {where} (DATABASE_URL): {first_line}"
    return None


def problems(*, full: bool, database_url: str) -> list[str]:
    found = [f"{tool.command} is not installed; {tool.needed_by} needs it" for tool in missing_tools(full=full)]
    problem = database_problem(database_url)
    if problem:
        found.append(problem)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="check for the whole suite, not only a part")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    found = problems(full=args.full, database_url=url)
    if not found:
        return 0
    print("make test: the tests cannot run here yet:", file=sys.stderr)
    for problem in found:
        print(f"  - {problem}", file=sys.stderr)
    packages = sorted({tool.package for tool in missing_tools(full=args.full)})
    if packages:
        print(f"  Debian/Ubuntu: sudo apt-get install -y {' '.join(packages)}", file=sys.stderr)
    print("  See README.md, 'Running the tests'.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
