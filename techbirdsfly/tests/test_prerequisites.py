"""``make test`` names what the machine lacks before it starts, and runs what CI runs."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase

from techbirdsfly.testing import server_env


def check(*args: str, path: str | None = None, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path or "/usr/local/bin:/usr/bin:/bin", "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "techbirdsfly.prerequisites", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


class PrerequisitesTests(SimpleTestCase):
    def test_each_missing_tool_is_named_with_its_test_and_package(self):
        result = check("--full", path="/nonexistent", database_url=server_env()["DATABASE_URL"])
        self.assertEqual(result.returncode, 1)
        for needed in ("redis-server", "wrk", "chromium", "chromedriver", "test_dashboard_page", "test_bench_smoke"):
            self.assertIn(needed, result.stderr)
        self.assertIn("apt-get install -y chromium chromium-driver redis-server wrk", result.stderr)

    def test_a_part_of_the_suite_needs_only_redis_and_the_database(self):
        result = check(path="/nonexistent", database_url=server_env()["DATABASE_URL"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("redis-server", result.stderr)
        self.assertNotIn("chromium", result.stderr)

    def test_the_database_must_be_a_reachable_postgresql(self):
        sqlite = check(database_url="sqlite:///db.sqlite3")
        self.assertEqual(sqlite.returncode, 1)
        self.assertIn("not a postgres:// URL", sqlite.stderr)
        closed = check(database_url="postgres://postgres:secret-pw@127.0.0.1:1/x")
        self.assertEqual(closed.returncode, 1)
        self.assertIn("cannot reach PostgreSQL at 127.0.0.1:1", closed.stderr)
        self.assertNotIn("secret-pw", closed.stderr)

    def test_this_machine_passes(self):
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            self.fail("the tests run on PostgreSQL: set DATABASE_URL=postgres://...")
        result = check("--full", path=os.environ["PATH"] + ":/usr/sbin", database_url=server_env()["DATABASE_URL"])
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_make_test_checks_first_and_defaults_to_cis_database(self):
        def dry_run(*args: str) -> str:
            return subprocess.run(
                ["make", "-n", "-o", ".venv/bin/.installed", "test", *args],
                cwd=settings.BASE_DIR,
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
                env={"PATH": os.environ["PATH"]},
            ).stdout

        self.assertIn("python -m techbirdsfly.prerequisites --full\n", dry_run())
        self.assertIn("python -m techbirdsfly.prerequisites \n", dry_run("TESTS=billing_app"))
        ci = (settings.BASE_DIR / ".ci" / "run").read_text()
        self.assertIn("postgres://postgres@127.0.0.1:5432/techbirdsfly", (settings.BASE_DIR / "Makefile").read_text())
        self.assertIn("\nmake test\n", ci)
