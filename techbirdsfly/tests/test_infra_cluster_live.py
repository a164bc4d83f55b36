"""Two server processes on one real three-master Redis Cluster: a write in one is seen by the other.

The servers run with their journal follower off (CACHE_JOURNAL_POLL=0), so the only thing that can
make the reading server fresh is the generation the writing server bumps in Redis.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from django.test import tag

from auth_app.models import User
from techbirdsfly.testing import GunicornServer, LiveTestCase, http_json, server_env

from .infra_nodes import APP_PASSWORD, APP_USER
from .test_infra_cluster import start_cluster

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another horse battery staple"


def commands(node: Any) -> dict[str, int]:
    """Commands clients sent ``node`` since its last CONFIG RESETSTAT, by name, less the probe's own.

    INFO commandstats also counts the commands a script runs; the only ones a read runs in a script
    are TYPE and GET (cluster._READ_SLOTS), which a read never sends by themselves.
    """
    stats = node.admin().info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(fields["calls"]) for name, fields in stats.items()}
    ignored = ("info", "config", "auth", "hello", "type", "get")
    return {name: n for name, n in calls.items() if n and name.split("|")[0] not in ignored}


@tag("infra", "live")
class TwoServersOnAClusterTests(LiveTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.nodes = start_cluster()
        for node in cls.nodes:
            cls.addClassCleanup(node.cleanup)
        env = server_env(
            REDIS_CLUSTER_NODES=cls.nodes[0].address,  # the rest are discovered
            REDIS_USERNAME=APP_USER,
            REDIS_PASSWORD=APP_PASSWORD,
            CACHE_JOURNAL_POLL="0",  # no follower: only the bump in Redis can make a server fresh
        )
        cls.writer = GunicornServer(env=env, workers=1, threads=2, name="cluster-writer").start()
        cls.addClassCleanup(cls.writer.stop)
        cls.reader = GunicornServer(env=env, workers=1, threads=2, name="cluster-reader").start()
        cls.addClassCleanup(cls.reader.stop)

    def setUp(self) -> None:
        super().setUp()
        for node in self.nodes:
            node.admin().flushall()  # admin, on this test's own cluster

    def call(self, server: GunicornServer, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        return http_json(server.url, method, path, token=token, body=body)

    def register(self, email: str) -> int:
        # Through a server: its password hasher, not the test run's fast one.
        status, body = http_json(
            self.writer.url, "POST", "/api/auth/register", body={"email": email, "password": PASSWORD, "name": "Live"}
        )
        self.assertEqual(status, 201, body)
        return body["id"]

    def login(self, email: str, password: str = PASSWORD) -> str:
        status, body = http_json(
            self.writer.url, "POST", "/api/auth/login", body={"email": email, "password": password}
        )
        self.assertEqual(status, 200, body)
        return body["accessToken"]

    def cached_twice(self, path: str, token: str) -> dict:
        """Read ``path`` on the reader until it answers from its cache; its data."""
        self.call(self.reader, "GET", path, token)
        status, body = self.call(self.reader, "GET", path, token)
        self.assertEqual((status, body["fromCache"]), (200, True), body)
        return body["data"]

    def test_a_write_in_one_server_is_seen_by_the_others_next_read(self) -> None:
        user = User.objects.get(pk=self.register("cluster-live@example.com"))
        token = self.login(user.email)
        status, account = self.call(self.writer, "POST", "/api/billing/accounts", token, {"name": "Hot"})
        self.assertEqual(status, 201, account)
        summary = f"/api/billing/summary/{account['id']}"

        with self.subTest("a write outside a transaction (usage)"):
            self.assertEqual(self.cached_twice(summary, token)["totalUsageUnits"], 0)
            status, _ = self.call(
                self.writer,
                "POST",
                "/api/billing/usage",
                token,
                {"accountId": account["id"], "metric": "api.call", "units": 5},
            )
            self.assertEqual(status, 201)
            status, body = self.call(self.reader, "GET", summary, token)
            self.assertEqual((status, body["data"]["totalUsageUnits"]), (200, 5), body)
            self.assertIs(body["fromCache"], False)
            # And cached again at once, under the new generation.
            self.assertEqual(self.cached_twice(summary, token)["totalUsageUnits"], 5)

        preferences = f"/api/users/{user.pk}/preferences"
        with self.subTest("a write inside a transaction (preferences)"):
            self.cached_twice(preferences, token)
            status, _ = self.call(self.writer, "PATCH", preferences, token, {"theme": "dark"})
            self.assertEqual(status, 200)
            status, body = self.call(self.reader, "GET", preferences, token)
            self.assertEqual((status, body["data"]["theme"], body["fromCache"]), (200, "dark", False), body)
            # The transaction's "being written" mark was replaced by the new generation: cached again,
            # not read from the database until the mark expires.
            self.assertEqual(self.cached_twice(preferences, token)["theme"], "dark")

        with self.subTest("logout"):
            other = self.login(user.email)
            self.cached_twice("/api/auth/me", other)
            self.assertEqual(self.call(self.reader, "POST", "/api/auth/validate-token", other)[1]["fromCache"], True)
            self.assertEqual(self.call(self.writer, "POST", "/api/auth/logout", other)[0], 200)
            self.assertEqual(self.call(self.reader, "GET", "/api/auth/me", other)[0], 401)
            self.assertEqual(self.call(self.reader, "POST", "/api/auth/validate-token", other)[0], 401)

        with self.subTest("password change"):
            self.cached_twice("/api/auth/me", token)
            status, pair = self.call(
                self.writer,
                "POST",
                "/api/auth/password",
                token,
                {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
            )
            self.assertEqual(status, 200, pair)
            self.assertEqual(self.call(self.reader, "GET", "/api/auth/me", token)[0], 401)
            self.assertEqual(self.call(self.reader, "GET", summary, token)[0], 401)
            # The user's profile was marked being written in the transaction; the bump replaced the mark.
            self.assertEqual(self.cached_twice("/api/auth/me", pair["accessToken"])["email"], user.email)

        with (
            self.subTest("every invalidation reached Redis"),
            urllib.request.urlopen(f"{self.writer.url}/metrics") as r,  # noqa: S310 (loopback)
        ):
            metrics = r.read().decode()
            for app in ("auth", "billing", "user"):
                self.assertIn(f'techbirdsfly_cache_invalidation_errors_total{{app="{app}"}} 0.0', metrics)

    def test_a_warm_hit_sends_one_command_to_each_shard_it_touches(self) -> None:
        self.register("cluster-hit@example.com")
        token = self.login("cluster-hit@example.com")
        status, account = self.call(self.writer, "POST", "/api/billing/accounts", token, {"name": "Hit"})
        self.assertEqual(status, 201, account)
        summary = f"/api/billing/summary/{account['id']}"
        self.cached_twice(summary, token)  # the token record and the summary, cached

        for node in self.nodes:
            node.admin().config_resetstat()
        status, body = self.call(self.reader, "GET", summary, token)
        self.assertEqual((status, body["fromCache"]), (200, True), body)
        per_shard = [commands(node) for node in self.nodes]
        touched = [calls for calls in per_shard if calls]
        # The token record (with its generation) and the summary (with its account's generation):
        # two slots, on one shard or two, and one command to each shard touched.
        self.assertIn(len(touched), (1, 2), per_shard)
        self.assertEqual([sum(calls.values()) for calls in touched], [1] * len(touched), per_shard)
