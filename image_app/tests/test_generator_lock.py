"""One generator per SQLite file: a second one, in another process, refuses to start and says why."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

from image_app import generator_lock


def run_generator(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "1", "DJANGO_ENV_FILE": "", "DATABASE_URL": f"sqlite:///{database}"}
    return subprocess.run(
        [sys.executable, "manage.py", "run_generator", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class SqliteGeneratorLockTests(SimpleTestCase):
    def setUp(self):
        directory = Path(tempfile.mkdtemp(prefix="tbf-genlock-"))
        self.addCleanup(subprocess.run, ["rm", "-rf", str(directory)], check=False)
        self.database = directory / "db.sqlite3"

    def test_a_second_generator_on_the_same_file_refuses_to_start(self):
        held = generator_lock.acquire(self.database)  # as a running generator holds it
        self.assertIsNotNone(held)
        for args in (("--check",), ("--once",)):
            with self.subTest(args=args):
                result = run_generator(self.database, *args)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn("another generator is already running on the SQLite database", result.stderr)
                self.assertIn(str(self.database), result.stderr)
                self.assertNotIn("Traceback", result.stderr)
        held.close()  # the generator ends: the kernel releases its lock
        self.assertEqual(run_generator(self.database, "--check").returncode, 0)

    def test_the_lock_is_one_per_file_and_freed_with_its_holder(self):
        first = generator_lock.acquire(self.database)
        self.assertIsNone(generator_lock.acquire(self.database))
        other = generator_lock.acquire(self.database.with_name("other.sqlite3"))
        self.assertIsNotNone(other)
        other.close()
        first.close()
        again = generator_lock.acquire(self.database)
        self.assertIsNotNone(again)
        again.close()
