"""Connections bounded per process: request threads share the pool of settings.DATABASES (DATABASE_POOL_*).

The checks run in a process of their own (pool_threads.py) with production's settings: this test
process keeps Django's one connection per thread (techbirdsfly/testing.py says why).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any
from unittest import skipUnless

from django.conf import settings

from techbirdsfly.testing import LiveTestCase, server_env

POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
POOL_MAX = 4
THREADS = 3 * POOL_MAX


@skipUnless(POSTGRESQL, "the pool is PostgreSQL's (SQLite has none)")
class PoolTests(LiveTestCase):
    def run_process(self, *args: str) -> dict[str, Any]:
        env = {
            **os.environ,
            **server_env(
                DATABASE_POOL_MAX=str(POOL_MAX),
                DATABASE_APPLICATION_NAME=f"tbf-pool-test-{uuid.uuid4().hex[:8]}",
                CACHE_JOURNAL_POLL="0",
                DJANGO_ENV_FILE="",
            ),
        }
        done = subprocess.run(
            [sys.executable, "-m", "techbirdsfly.tests.pool_threads", *args],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    def test_request_threads_never_hold_more_than_the_pools_max(self):
        seen = self.run_process("load", str(THREADS))
        self.assertEqual(seen["max_size"], POOL_MAX)  # DATABASE_POOL_MAX
        self.assertEqual(seen["statuses"], ["200 OK"] * THREADS)
        self.assertGreater(seen["queued"], 0, "the threads never had to wait for a connection")
        self.assertGreaterEqual(seen["peak"], 1)
        self.assertLessEqual(seen["peak"], POOL_MAX)

    def test_a_request_that_finds_the_pool_exhausted_answers_a_json_503(self):
        seen = self.run_process("exhausted")
        self.assertEqual(seen["status"], "503 Service Unavailable")
        self.assertEqual(seen["body"], {"detail": "The database is unavailable; try again shortly."})
