"""Logins under a flood: the CPU one password check costs, and what a flood of logins gets.

``python -m bench.login_flood`` measures, against gunicorn alone (infra/gunicorn.conf.py, 2 workers,
production settings, a private redis-server, PostgreSQL database tbf_login_flood or
$LOGIN_FLOOD_DATABASE_URL):

- the CPU time of one password check (Argon2id as configured) and of a login with an unknown email
  (the dummy hash), with time.process_time;
- 48 logins with unknown emails from one client, 8 at a time, while /api/health is probed every
  100 ms: how many answer 429 (and why: the per-address limit or the concurrency cap) and how long
  health took at worst;
- the same flood with each login from another address (through one trusted proxy), so that only the
  per-process cap on password checks (LOGIN_CONCURRENCY) can refuse.

It prints the figures; bench/LOGINS.md records a run by hand (copied into bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from techbirdsfly.probes import flood

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tbf_login_flood"


def login_cpu(rounds: int = 20) -> tuple[float, float]:
    """CPU seconds of one password check, and of the dummy check an unknown email costs."""
    from django.contrib.auth import check_password_with_timing_attack_mitigation
    from django.contrib.auth.hashers import get_hasher, make_password

    encoded = make_password("a password of someone")
    hasher = get_hasher()
    start = time.process_time()
    for _ in range(rounds):
        hasher.verify("a wrong guess", encoded)
    check = (time.process_time() - start) / rounds
    start = time.process_time()
    for _ in range(rounds):
        check_password_with_timing_attack_mitigation(None, "a wrong guess")
    unknown = (time.process_time() - start) / rounds
    return check, unknown


def _prepare_database(url: str) -> None:
    """Create the database when it is missing, and migrate it."""
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1"}
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"]
    subprocess.run(migrate, cwd=ROOT, check=True, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("LOGIN_FLOOD_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "techbirdsfly.settings")
    os.environ["DJANGO_DEBUG"] = "1"  # this process only: the servers run with debug off
    os.environ["DATABASE_URL"] = args.database_url
    import django

    django.setup()
    from techbirdsfly.testing import GunicornServer, RedisServer

    check, unknown = login_cpu()
    print(f"password check (Argon2id): {check * 1000:.1f} ms CPU; unknown email: {unknown * 1000:.1f} ms CPU")

    _prepare_database(args.database_url)
    redis = RedisServer().start()
    env = {
        "DATABASE_URL": args.database_url,
        "REDIS_URL": redis.url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-for-the-login-flood-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_LOG_LEVEL": "ERROR",
    }
    try:
        for title, extra, forwarded in (
            ("one client", {}, False),
            ("a new address per login (cap alone)", {"DJANGO_TRUSTED_PROXY_COUNT": "1"}, True),
        ):
            redis.client().flushall()  # our own server: each scenario starts without counters
            server = GunicornServer(env={**env, **extra}, workers=args.workers).start()
            try:
                result = flood(server.url, forwarded=forwarded)
            finally:
                server.stop()
            print(f"flood, {title}: {result.summary()}")
    finally:
        redis.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
