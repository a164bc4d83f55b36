"""The runbook commands: cache_stats, cache_keys, cache_clear, cache_ping."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from io import StringIO

from django.conf import settings
from django.core.management import CommandError, call_command

from techbirdsfly.cache import cache_counts, get_or_compute
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.testing import server_env, test_redis

from .test_cache_api import AdminTestCase


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


class CommandTestCase(AdminTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.billing = self.seed("billing", 3, stem="summary") + self.seed("billing", 2, stem="usage")
        self.auth = self.seed("auth", 4)


class CacheStatsCommandTests(CommandTestCase):
    def test_table(self):
        get_or_compute("user.preferences", "user:preferences:cmd", dict)
        get_or_compute("user.preferences", "user:preferences:cmd", dict)
        counts = cache_counts()["user"]  # counters are per process: earlier tests' reads count too
        self.assertGreaterEqual((counts["hits"], counts["misses"]), (1, 1))
        out = run("cache_stats")
        rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
        self.assertEqual(rows["billing"][5], "5")  # keys
        self.assertEqual(rows["auth"][5], str(len(self.redis.keys("AuthService_*"))))
        hits, misses, errors = counts["hits"], counts["misses"], counts["errors"]
        self.assertEqual(rows["user"][1:5], [str(hits), str(misses), str(errors), f"{hits / (hits + misses):.1%}"])
        self.assertIn("eviction policy", out)

    def test_json(self):
        stats = json.loads(run("cache_stats", "--json"))
        self.assertEqual(stats["apps"]["billing"]["keys"], 5)
        self.assertEqual(stats["redis"]["status"], "up")


class CacheKeysCommandTests(CommandTestCase):
    def test_lists_all_keys_of_the_app_with_ttl(self):
        out = run("cache_keys", "billing", "--count", "2")
        listed = [line.split()[1] for line in out.splitlines()[1:-1]]
        self.assertEqual(sorted(listed), sorted(self.billing))
        self.assertIn("5 key(s) of billing", out)
        self.assertRegex(out, r"\d+s  BillingService_billing:")

    def test_match_and_limit(self):
        out = run("cache_keys", "billing", "--match", "billing:usage:*")
        self.assertIn("2 key(s) of billing matching BillingService_billing:usage:*", out)
        self.assertNotIn("summary", out)
        out = run("cache_keys", "billing", "--limit", "1", "--count", "1000")
        self.assertIn("1 key(s) of billing", out)

    def test_bad_arguments(self):
        bad = (["billing", "--count", "0"], ["billing", "--count", "1001"], ["nope"], ["billing", "--limit", "0"])
        for args in bad:
            with self.subTest(args=args), self.assertRaises(CommandError):
                run("cache_keys", *args)


class CacheClearCommandTests(CommandTestCase):
    def manage(self, *args: str, stdin=None, answer: bytes | None = None) -> subprocess.CompletedProcess:
        """The command in its own process, as an operator runs it; with ``answer``, on a terminal."""
        command = [sys.executable, "manage.py", *args]
        env = {**os.environ, **server_env()}
        if answer is None:
            return subprocess.run(
                command, cwd=settings.BASE_DIR, env=env, stdin=stdin, capture_output=True, timeout=60, check=False
            )
        controller, terminal = pty.openpty()
        try:
            process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=env,
                stdin=terminal,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            os.write(controller, answer)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            os.close(terminal)
            os.close(controller)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def test_yes_clears_only_that_app(self):
        out = run("cache_clear", "billing", "--yes")
        self.assertIn("deleted 5 key(s) of billing", out)
        self.assertEqual(self.redis.exists(*self.billing), 0)
        self.assertEqual(self.redis.exists(*self.auth), 4)

    def test_refuses_without_yes_when_not_interactive(self):
        result = self.manage("cache_clear", "billing", stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"--yes", result.stderr)
        self.assertEqual(self.redis.exists(*self.billing), 5)

    def test_asks_on_a_terminal_and_clears_on_yes(self):
        result = self.manage("cache_clear", "billing", answer=b"y\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"Delete the 5 key(s) matching BillingService_*?", result.stdout)
        self.assertIn(b"deleted 5 key(s)", result.stdout)
        self.assertEqual(self.redis.exists(*self.billing), 0)
        self.assertEqual(self.redis.exists(*self.auth), 4)

    def test_anything_but_yes_cancels(self):
        result = self.manage("cache_clear", "billing", answer=b"\n")
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"cancelled", result.stderr)
        self.assertEqual(self.redis.exists(*self.billing), 5)


class CachePingCommandTests(CommandTestCase):
    def test_pong(self):
        out = run("cache_ping")
        self.assertIn(f"PONG from redis://127.0.0.1:{test_redis().port}/0", out)
        self.assertIn("apps: auth, billing, admin, image, user", out)

    def test_down_is_an_error(self):
        test_redis().stop()
        self.addCleanup(reset_breakers)
        self.addCleanup(test_redis().start)
        with self.assertRaisesMessage(CommandError, "Redis unavailable"):
            run("cache_ping")
        with self.assertRaisesMessage(CommandError, "Redis is unavailable"):
            run("cache_clear", "billing", "--yes")
        self.assertIn("Redis: down", run("cache_stats"))
