"""The README's and docs/' commands work as written, and make writes what they need.

Every ```sh block of README.md and of each docs/*.md runs in a new bash (``set -eo pipefail``) in
the checkout, after what ``make install`` and ``make run`` leave there (.venv, a development .env,
the demo admin and demo data), and must exit 0; README first, then the docs in name order. A block
preceded by ``<!-- readme-test: skip (reason) -->`` is not run: the two set-up commands, docker, the
benchmark, MONITOR. Three things are pointed at this test run instead of a developer's machine:
``redis-cli`` (a shell function adding ``-p <test Redis port>``), ``localhost:8000`` (a gunicorn
serving the test database, on a free port) and ``make run``'s metrics directory (that gunicorn's).
DATABASE_URL and REDIS_URL name the test database and Redis.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import SimpleTestCase, override_settings, tag

from auth_app.models import User
from image_app import generator_lock
from techbirdsfly.env import read_env_file
from techbirdsfly.testing import GunicornServer, LiveTestCase, free_port, server_env, test_redis

BASE_DIR = Path(settings.BASE_DIR)
README = BASE_DIR / "README.md"
DOCUMENTS = [README, *sorted((BASE_DIR / "docs").glob("*.md"))]
# make run's seed_demo, smaller: the ids the documents use (account 1 of user00000, account 42) exist.
DEMO_DATA = {
    "users": 50,
    "accounts": 60,
    "usage": 3000,
    "large_accounts": 1,
    "large_account_usage": 500,
    "images": 3,
    "preferences": 10,
}
SKIP = re.compile(r"^<!-- readme-test: skip \((?P<reason>[^)]+)\) -->$")
FENCE = re.compile(r"^```(?:sh|bash|shell)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    text: str
    skip: str | None  # the reason, when marked


def shell_blocks(text: str) -> list[Block]:
    blocks, lines = [], text.splitlines()
    index = 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            end = lines.index("```", index + 1)
            before = next((line for line in reversed(lines[:index]) if line.strip()), "")
            marker = SKIP.match(before)
            body = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Block(index + 1, body, marker["reason"] if marker else None))
            index = end
        index += 1
    return blocks


def clean_environment(**extra: str) -> dict[str, str]:
    """A new shell's environment: nothing of this test run's Django, Redis or database settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_", "DATABASE_"))}
    return {**keep, **extra}


def make_env_file(directory: Path) -> Path:
    """What ``make install`` writes: the Makefile's own .env recipe, run in ``directory``."""
    subprocess.run(
        ["make", "-s", "-C", str(directory), "-f", str(BASE_DIR / "Makefile"), ".env"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return directory / ".env"


def from_cache_flags(output: str) -> list[bool]:
    return [flag == "true" for flag in re.findall(r'"fromCache":\s*(true|false)', output)]


@tag("live")
class ReadmeBlocksTests(LiveTestCase):
    reset_sequences = True  # the demo data's ids, as on make run's fresh database

    def test_the_documents_are_parsed_and_skips_say_why(self):
        readme = shell_blocks(README.read_text())
        self.assertGreaterEqual(len([b for b in readme if b.skip is None]), 3)
        self.assertTrue(any(b.skip and "make run" in b.skip for b in readme))
        skipped = {b.skip for path in DOCUMENTS for b in shell_blocks(path.read_text()) if b.skip}
        self.assertIn("docker", skipped)
        for path in DOCUMENTS:
            text = path.read_text()
            blocks = shell_blocks(text)
            with self.subTest(document=path.name):
                self.assertFalse(any(b.skip is None and ("make run" in b.text or "docker " in b.text) for b in blocks))
                # No command hides in an indented block, where this test would not see it.
                self.assertFalse(re.search(r"\n\n {4}(make|docker|\.venv|python|redis-cli|curl) ", text))

    def test_the_moved_sections_are_in_docs(self):
        names = {path.name for path in DOCUMENTS}
        for name in ("configuration.md", "cache.md", "operations.md", "deployment.md", "benchmark.md"):
            self.assertIn(name, names)
            self.assertIn(f"(docs/{name})", README.read_text())

    def test_every_shell_block_runs_as_written(self):
        if not (BASE_DIR / ".venv" / "bin" / "python").exists():
            self.skipTest("no .venv: run make install first")
        # make run's demo admin and demo data; a hasher the server (production settings) knows.
        with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
            User.objects.create_superuser("admin@techbirdsfly.local", "admin-demo-password")
            call_command("seed_demo", verbosity=0, **DEMO_DATA)
        server = GunicornServer(env=server_env(), workers=1).start()
        self.addCleanup(server.stop)
        directory = Path(tempfile.mkdtemp(prefix="tbf-readme-"))
        self.addCleanup(subprocess.run, ["rm", "-rf", str(directory)], check=False)
        database = server_env()["DATABASE_URL"]
        env = clean_environment(
            DJANGO_ENV_FILE=str(make_env_file(directory)), DATABASE_URL=database, REDIS_URL=test_redis().url
        )
        preamble = f'set -eo pipefail\nredis-cli() {{ command redis-cli -p {test_redis().port} "$@"; }}\n'
        outputs: dict[str, str] = {}
        for path in DOCUMENTS:
            for block in shell_blocks(path.read_text()):
                if block.skip is not None:
                    continue
                where = f"{path.relative_to(BASE_DIR)} line {block.line}"
                with self.subTest(block=where):
                    script = preamble + block.text.replace("localhost:8000", f"127.0.0.1:{server.port}").replace(
                        ".run/metrics-8000", server.env["PROMETHEUS_MULTIPROC_DIR"]
                    )
                    result = subprocess.run(
                        ["bash", "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
                    )
                    outputs[block.text] = result.stdout
                    self.assertEqual(
                        result.returncode,
                        0,
                        f"{where}:\n{block.text}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}",
                    )
        self.assertGreaterEqual(len(outputs), 7)

        # The README's walkthrough shows what it says: a miss, a hit, and a miss after the write.
        walkthrough = next(text for text in outputs if "api/billing/usage" in text and "summary/1 " in text)
        self.assertEqual(from_cache_flags(outputs[walkthrough]), [False, True, False])
        # The runbook's examples find what they look for, in the order written (-2: no such key).
        runbook = next(text for text in outputs if "TTL 'BillingService_billing:summary:42'" in text)
        lines = outputs[runbook].split()
        self.assertFalse("-2" in lines, f"a runbook command found no key (TTL -2):\n{outputs[runbook][:500]}")
        self.assertGreater(int(lines[-1]), 0, "MEMORY USAGE 'AdminService_admin:dashboard' found nothing")
        stats = next(text for text in outputs if "cache_stats   #" in text)
        billing = next(line for line in outputs[stats].splitlines() if line.startswith("billing "))
        self.assertGreater(int(billing.split()[1]), 0, "cache_stats shows no hits of the server's")


class DevelopmentEnvFileTests(SimpleTestCase):
    def test_make_writes_debug_mode_and_a_fresh_secret_key(self):
        keys = []
        for _ in range(2):
            directory = Path(tempfile.mkdtemp(prefix="tbf-env-"))
            path = make_env_file(directory)
            values = read_env_file(path)
            self.assertEqual(values["DJANGO_DEBUG"], "1")
            self.assertGreaterEqual(len(values["DJANGO_SECRET_KEY"]), 50)
            self.assertEqual(path.stat().st_mode & 0o077, 0, "readable by others")
            keys.append(values["DJANGO_SECRET_KEY"])
            subprocess.run(["rm", "-rf", str(directory)], check=True)
        self.assertNotEqual(keys[0], keys[1])

    def test_git_ignores_it(self):
        result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=BASE_DIR, check=False)
        self.assertEqual(result.returncode, 0)


class MakeRunTests(SimpleTestCase):
    def test_port_chooses_where_the_server_listens(self):
        result = subprocess.run(
            ["make", "-n", "run", "PORT=8123"], cwd=BASE_DIR, capture_output=True, text=True, timeout=30, check=True
        )
        self.assertIn("runserver 127.0.0.1:8123", result.stdout)
        self.assertNotIn("; true", result.stdout)

    def test_a_taken_port_fails_at_once_saying_why(self):
        if not (BASE_DIR / ".venv" / "bin" / "python").exists():
            self.skipTest("no .venv: run make install first")
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = subprocess.run(
                # -o: the virtualenv is there (checked above); this test is about the port, not installing.
                ["make", "-o", ".venv/bin/.installed", "run", f"PORT={port}"],
                cwd=BASE_DIR,
                env=clean_environment(),
                capture_output=True,
                text=True,
                timeout=60,
            )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"127.0.0.1:{port} is in use", result.stderr)
        self.assertNotIn("migrate", result.stdout)  # it stopped before touching the database

    def test_a_generator_on_the_same_sqlite_file_stops_a_second_make_run(self):
        if not (BASE_DIR / ".venv" / "bin" / "python").exists():
            self.skipTest("no .venv: run make install first")
        held = generator_lock.acquire(BASE_DIR / "db.sqlite3")  # as the first make run's generator holds it
        if held is None:
            self.skipTest("a make run is up in this checkout")
        self.addCleanup(held.close)
        result = subprocess.run(
            ["make", "-o", ".venv/bin/.installed", "run", f"PORT={free_port()}"],
            cwd=BASE_DIR,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("make run: another generator is already running on the SQLite database", result.stderr)
        self.assertNotIn("migrate", result.stdout)  # it stopped before touching the database
