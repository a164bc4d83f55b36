"""The scale benchmark still runs end to end (``python -m bench.scale --smoke``), so it cannot rot.

Its figures mean nothing at these sizes; what is checked is that every part runs and prints what
bench/SCALE.md reports: the first read of the journal (one index entry per scope), pushed rows seen
by listening followers, the poll, and an idle server's CPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase

from bench.data import drop_database
from bench.tests.test_bench_smoke import smoke_database_url


class ScaleSmokeTest(SimpleTestCase):
    def test_every_part_runs_and_reports(self):
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        url = smoke_database_url().replace("_benchsmoke", "_scalesmoke")
        env["BENCH_DATABASE_URL"] = url
        self.addCleanup(drop_database, url)
        done = subprocess.run(
            [sys.executable, "-m", "bench.scale", "--smoke"],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.assertEqual(done.returncode, 0, done.stderr[-4000:])
        lines = done.stdout.splitlines()
        self.assertIn("  first read, 1,000 rows over 1,000 scopes:", "\n".join(lines))
        self.assertTrue(any("1,000 index entries" in line for line in lines), lines)
        push = [line for line in lines if line.startswith("  push, 2 followers")]
        self.assertEqual(len(push), 1, lines)
        seen, expected = re.search(r"\(([\d,]+) of ([\d,]+) deliveries\)", push[0]).groups()
        self.assertGreater(int(expected.replace(",", "")), 0, push[0])
        self.assertEqual(seen, expected, push[0])  # each write seen by both followers, in their own processes
        self.assertTrue(any(line.startswith("  poll, 2 followers") for line in lines), lines)
        idle = "  idle gunicorn, 1 workers (1 followers listening)"
        self.assertTrue(any(line.startswith(idle) for line in lines), lines)
