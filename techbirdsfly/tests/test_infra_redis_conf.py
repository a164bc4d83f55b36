"""infra/redis/redis.conf, run for real: persistence, the ACL users, and the app working as its ACL user."""

from __future__ import annotations

import re
import time

import redis
from django.conf import settings
from django.test import TestCase, override_settings, tag

from auth_app.models import User
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.cache.counters import window_increment, window_read
from techbirdsfly.cache.generations import invalidate
from techbirdsfly.cache.ops import clear_app, count_keys, ping, scan_keys, server_info
from techbirdsfly.cache.policy import APPS, DEFAULT_PREFIX
from techbirdsfly.cache.reads import get_or_compute
from techbirdsfly.cache.stats import cache_counts
from techbirdsfly.settings import redis_cache
from techbirdsfly.testing import CommitAPIClient

from .infra_nodes import APP_PASSWORD, APP_USER, INFRA, RedisNode


def hardened_caches(node: RedisNode) -> dict:
    """Every alias on ``node``, logged in as the app's ACL user, as production would be."""
    aliases = {"default": DEFAULT_PREFIX, **APPS}
    return {
        alias: redis_cache(prefix, node.url, sentinels=[], cluster_nodes=[], username=APP_USER, password=APP_PASSWORD)
        for alias, prefix in aliases.items()
    }


@tag("infra")
class RedisConfTests(TestCase):
    node: RedisNode

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.node = RedisNode().start()
        cls.addClassCleanup(cls.node.cleanup)

    def setUp(self) -> None:
        self.admin = self.node.admin()
        self.admin.flushall()  # as admin, on this test's own server

    def test_the_running_server_has_the_settings_of_the_file(self) -> None:
        config = self.admin.config_get("*")
        self.assertEqual(config["appendonly"], "yes")
        self.assertEqual(config["appendfsync"], "everysec")
        self.assertEqual(config["save"], "900 1 300 10")
        self.assertEqual(config["maxmemory"], str(256 * 1024 * 1024))
        self.assertEqual(config["maxmemory-policy"], "allkeys-lru")
        self.assertEqual(config["protected-mode"], "yes")
        self.assertEqual(config["enable-debug-command"], "no")

    def test_writes_survive_a_crash_through_the_aof(self) -> None:
        app = self.node.app()
        app.set("BillingService_billing:summary:1", "before-crash", ex=600)
        app.set("AuthService_auth:token:abc:gen", "g1", ex=600)
        time.sleep(1.5)  # appendfsync everysec: a write older than a second is on disk
        self.node.kill()
        self.node.start()
        app = self.node.app()
        self.assertEqual(app.get("BillingService_billing:summary:1"), b"before-crash")
        self.assertEqual(app.get("AuthService_auth:token:abc:gen"), b"g1")
        self.assertGreater(app.ttl("BillingService_billing:summary:1"), 500)  # TTLs survive too

    def test_writes_survive_a_clean_restart_and_leave_a_snapshot(self) -> None:
        self.node.app().set("UserService_user:preferences:7", "kept", ex=600)
        self.node.shutdown()
        self.assertTrue((self.node.dir / "dump.rdb").exists())
        self.assertTrue(any((self.node.dir / "appendonlydir").glob("*.aof")))
        self.node.start()
        self.assertEqual(self.node.app().get("UserService_user:preferences:7"), b"kept")

    def test_the_app_user_cannot_flush_list_all_keys_reconfigure_or_debug(self) -> None:
        app = self.node.app()
        app.set("AuthService_auth:profile:1", "x", ex=60)
        denied = [
            ["FLUSHALL"],
            ["FLUSHDB"],
            ["KEYS", "*"],
            ["CONFIG", "GET", "maxmemory"],
            ["CONFIG", "SET", "maxmemory", "1"],
            ["SHUTDOWN", "NOSAVE"],
            ["ACL", "LIST"],
            ["SWAPDB", "0", "1"],
            ["FUNCTION", "FLUSH"],
        ]
        for command in denied:
            with self.subTest(command=command), self.assertRaises(redis.exceptions.NoPermissionError):
                app.execute_command(*command)
        # DEBUG is refused to everyone (enable-debug-command no) before the ACL is even asked;
        # ACL DRYRUN shows the ACL denies it to the app user as well.
        with self.assertRaisesRegex(redis.exceptions.ResponseError, "DEBUG command not allowed"):
            app.execute_command("DEBUG", "SLEEP", "0")
        for command in [*denied, ["DEBUG", "SLEEP", "0"]]:
            verdict = self.admin.execute_command("ACL", "DRYRUN", APP_USER, *command)
            self.assertIn(b"no permissions", verdict, command)
        self.assertEqual(self.admin.execute_command("ACL", "DRYRUN", APP_USER, "UNLINK", "AuthService_x"), b"OK")
        self.assertEqual(app.get("AuthService_auth:profile:1"), b"x")

    def test_the_app_user_only_touches_the_apps_prefixes(self) -> None:
        with self.assertRaises(redis.exceptions.NoPermissionError):
            self.node.app().set("someone-else:key", "x", ex=60)
        self.assertTrue(self.node.app().set("TechBirdsFly_throttle:1", "x", ex=60))

    def test_no_anonymous_access(self) -> None:
        with self.assertRaises(redis.exceptions.AuthenticationError):
            self.node.client().ping()
        with self.assertRaises(redis.exceptions.AuthenticationError):
            self.node.client("app", "wrong").ping()

    def test_the_acl_key_patterns_are_the_cache_policy_prefixes(self) -> None:
        script = (INFRA / "redis" / "entrypoint.sh").read_text()
        patterns = re.search(r'^app_keys="([^"]*)"', script, re.MULTILINE).group(1).split()
        self.assertEqual(sorted(patterns), sorted(f"~{p}_*" for p in [*APPS.values(), DEFAULT_PREFIX]))


@tag("infra")
class AppOnHardenedRedisTests(TestCase):
    """The cache flows of the app, logged in as the ``app`` ACL user: nothing it needs is denied."""

    node: RedisNode

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.node = RedisNode().start()
        cls.addClassCleanup(cls.node.cleanup)

    def setUp(self) -> None:
        self.node.admin().flushall()
        overrides = override_settings(CACHES=hardened_caches(self.node))
        overrides.enable()
        self.addCleanup(overrides.disable)
        reset_breakers()
        self.errors_before = {app: counts["errors"] for app, counts in cache_counts().items()}

    def tearDown(self) -> None:
        errors = {app: counts["errors"] - self.errors_before[app] for app, counts in cache_counts().items()}
        self.assertEqual(errors, dict.fromkeys(APPS, 0), "a cache operation failed as the app's ACL user")

    def test_cache_aside_single_flight_and_invalidation(self) -> None:
        calls = []

        def compute() -> dict:
            calls.append(1)
            return {"n": len(calls)}

        first = get_or_compute("billing.summary", "billing:summary:1", compute, scope="billing:account:1")
        second = get_or_compute("billing.summary", "billing:summary:1", compute, scope="billing:account:1")
        self.assertEqual((first.from_cache, second.from_cache), (False, True))
        # The fill lock was released (a Lua script: EVALSHA is allowed and runs with the app's rights).
        self.assertFalse(self.node.admin().exists("BillingService_billing:summary:1:lock"))
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", "billing:account:1")
        third = get_or_compute("billing.summary", "billing:summary:1", compute, scope="billing:account:1")
        self.assertEqual((third.from_cache, third.value), (False, {"n": 2}))

    def test_counters_listing_clearing_and_server_info(self) -> None:
        self.assertEqual(window_increment("auth.login_failures", "auth:login-failures:x"), 1)
        self.assertEqual(window_increment("auth.login_failures", "auth:login-failures:x"), 2)
        self.assertEqual(window_read("auth.login_failures", "auth:login-failures:x")[0], 2)
        for i in range(5):
            get_or_compute("image.metadata", f"image:result:{i}", lambda: {"ok": True})
        get_or_compute("user.preferences", "user:preferences:1", lambda: {"theme": "dark"})

        cursor, listed = scan_keys("image", count=1000)
        self.assertEqual(cursor, 0)
        self.assertEqual(len(listed), 5)
        self.assertTrue(all(0 < ttl <= 3600 for _, ttl in listed))
        self.assertEqual(count_keys("image"), 5)
        self.assertEqual(clear_app("image"), 5)
        self.assertEqual(count_keys("image"), 0)
        self.assertEqual(count_keys("user"), 1)

        self.assertTrue(ping())
        info = server_info()
        self.assertEqual(info["maxmemoryPolicy"], "allkeys-lru")
        self.assertTrue(info["version"].startswith("7."))

    def test_login_me_and_logout_through_the_api(self) -> None:
        User.objects.create_user("acl@example.com", "correct horse battery", name="Acl")
        api = CommitAPIClient(self)
        login = api.post("/api/auth/login", {"email": "acl@example.com", "password": "correct horse battery"})
        self.assertEqual(login.status_code, 200)
        api.bearer(login.json()["accessToken"])
        self.assertFalse(api.get("/api/auth/me").json()["fromCache"])
        self.assertTrue(api.get("/api/auth/me").json()["fromCache"])
        self.assertEqual(api.post("/api/auth/logout").status_code, 200)
        self.assertEqual(api.get("/api/auth/me").status_code, 401)
        # Everything the app wrote is under its prefixes and has a TTL.
        for key in self.node.admin().scan_iter(count=1000):
            self.assertGreater(self.node.admin().ttl(key), 0, key)

    def test_settings_name_the_acl_user(self) -> None:
        options = settings.CACHES["auth"]["OPTIONS"]
        self.assertEqual((options["USERNAME"], options["PASSWORD"]), (APP_USER, APP_PASSWORD))
