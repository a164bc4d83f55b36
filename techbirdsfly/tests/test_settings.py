"""Settings from the environment, the deploy checklist, and what runs on a fresh machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.management import call_command
from django.test import SimpleTestCase, TestCase
from redis.connection import SSLConnection

from auth_app.models import User
from techbirdsfly.cache.connection import ConnectionFactory
from techbirdsfly.env import read_env_file

BASE_DIR = Path(settings.BASE_DIR)


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # DJANGO_ENV_FILE empty: the checkout's .env (debug mode, a development key) must not fill the gaps.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_"))} | {"DJANGO_ENV_FILE": ""}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


class EnvironmentTests(SimpleTestCase):
    def test_refuses_to_start_without_a_secret_key_when_debug_is_off(self):
        result = manage("check", DJANGO_DEBUG="0")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip(), "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")

    def test_deploy_check_leaves_only_what_the_tls_proxy_does(self):
        result = manage("check", "--deploy", DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 20 + "-Aa1!" * 10)
        self.assertEqual(result.returncode, 0, result.stderr)
        warnings = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("?: (")]
        # W008: TLS ends at the proxy in front, which redirects http to https (README, "Deployment").
        self.assertEqual(warnings, ["(security.W008)"], result.stderr)

    def test_bad_boolean_names_the_variable(self):
        result = manage("check", DJANGO_DEBUG="maybe")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("DJANGO_DEBUG must be a boolean", result.stderr)

    def test_redis_password_and_tls_urls_are_honoured(self):
        factory = ConnectionFactory({"SOCKET_TIMEOUT": 0.2, "SOCKET_CONNECT_TIMEOUT": 0.2})
        params = factory.make_connection_params("rediss://app:s3cret@cache.internal:6380/2")
        pool = factory.get_connection_pool(params)
        self.assertTrue(issubclass(pool.connection_class, SSLConnection), pool.connection_class)
        self.assertEqual(pool.connection_kwargs["username"], "app")
        self.assertEqual(pool.connection_kwargs["password"], "s3cret")
        self.assertEqual(pool.connection_kwargs["port"], 6380)
        self.assertEqual(pool.connection_kwargs["db"], 2)
        self.assertEqual(pool.connection_kwargs["socket_timeout"], 0.2)
        self.assertEqual(pool.connection_kwargs["retry"].get_retries(), 0)

    def test_aliases_with_different_options_do_not_share_a_pool(self):
        # django-redis #685: django-redis caches pools by URL alone.
        url = "redis://127.0.0.1:1/0"
        fast = ConnectionFactory({"SOCKET_TIMEOUT": 0.1})
        slow = ConnectionFactory({"SOCKET_TIMEOUT": 3.0})
        fast_pool = fast.get_or_create_connection_pool(fast.make_connection_params(url))
        slow_pool = slow.get_or_create_connection_pool(slow.make_connection_params(url))
        self.assertIsNot(fast_pool, slow_pool)
        self.assertEqual(fast_pool.connection_kwargs["socket_timeout"], 0.1)
        self.assertEqual(slow_pool.connection_kwargs["socket_timeout"], 3.0)

    def test_every_alias_bounds_its_socket_waits(self):
        for alias, config in settings.CACHES.items():
            self.assertLessEqual(config["OPTIONS"]["SOCKET_TIMEOUT"], 0.25, alias)
            self.assertLessEqual(config["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"], 0.25, alias)


class EnvFileTests(SimpleTestCase):
    """The local .env that settings read: it fills gaps, the environment wins."""

    def env_file(self, text: str) -> Path:
        handle = tempfile.NamedTemporaryFile("w", suffix=".env", delete=False)  # noqa: SIM115 (kept for a subprocess)
        self.addCleanup(os.unlink, handle.name)
        with handle:
            handle.write(text)
        return Path(handle.name)

    def test_the_format(self):
        path = self.env_file(
            "# a comment\n\nDJANGO_DEBUG=1\nexport A_KEY = 'quoted # not a comment'\nB=\"double\"\nC=\nD=x=y\n"
        )
        self.assertEqual(
            read_env_file(path),
            {"DJANGO_DEBUG": "1", "A_KEY": "quoted # not a comment", "B": "double", "C": "", "D": "x=y"},
        )

    def test_a_malformed_line_names_the_file_and_line(self):
        path = self.env_file("OK=1\nnot a setting\n")
        with self.assertRaises(SystemExit) as stop:
            read_env_file(path)
        self.assertIn(f"{path}:2", str(stop.exception))

    def test_settings_read_it_and_the_environment_wins(self):
        path = self.env_file("DJANGO_DEBUG=0\nDJANGO_SECRET_KEY=from-the-env-file\n")
        show = ["shell", "-c", "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"]
        result = manage(*show, DJANGO_ENV_FILE=str(path))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[-1], "False from-the-env-file")
        result = manage(*show, DJANGO_ENV_FILE=str(path), DJANGO_DEBUG="1", DJANGO_SECRET_KEY="from-the-environment")
        self.assertEqual(result.stdout.splitlines()[-1], "True from-the-environment", result.stderr)

    def test_without_a_file_nothing_changes(self):
        result = manage("check", DJANGO_ENV_FILE=str(BASE_DIR / "no-such.env"), DJANGO_DEBUG="0")
        self.assertEqual(result.stderr.strip(), "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")


class CreateSuperuserTests(TestCase):
    def test_createsuperuser_noinput_from_the_environment(self):
        env = {"DJANGO_SUPERUSER_EMAIL": "root@example.com", "DJANGO_SUPERUSER_PASSWORD": "a long enough password"}
        with mock.patch.dict(os.environ, env):
            call_command("createsuperuser", "--noinput", verbosity=0)
        user = User.objects.get(email="root@example.com")
        self.assertTrue(user.is_staff and user.is_superuser)
        self.assertTrue(user.check_password("a long enough password"))


class TestRedisTests(SimpleTestCase):
    def test_a_missing_redis_server_is_a_clear_message(self):
        from techbirdsfly.testing import RedisServer

        with mock.patch.dict(os.environ, {"PATH": "/nonexistent"}), self.assertRaises(SystemExit) as stop:
            RedisServer()
        self.assertIn("redis-server is not on PATH", str(stop.exception))
