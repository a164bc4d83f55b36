"""The cache layer on a real three-master Redis Cluster (REDIS_CLUSTER_NODES), as the app's ACL user."""

from __future__ import annotations

import os
import subprocess

import redis
from django.test import TestCase, override_settings, tag
from redis.crc import key_slot

from auth_app.models import User
from techbirdsfly.cache.calls import CacheUnavailable, reset_breakers
from techbirdsfly.cache.cluster import ClusterUnavailable, SafeRedisCluster, cluster_client
from techbirdsfly.cache.counters import window_increment, window_read
from techbirdsfly.cache.generations import invalidate
from techbirdsfly.cache.ops import clear_app, count_keys, ping, scan_keys, server_info
from techbirdsfly.cache.policy import APPS, DEFAULT_PREFIX
from techbirdsfly.cache.reads import get_or_compute
from techbirdsfly.cache.stats import cache_counts
from techbirdsfly.settings import redis_cache
from techbirdsfly.testing import CommitAPIClient, breaker_clock, count_round_trips, free_port

from .infra_nodes import APP_PASSWORD, APP_USER, PASSWORDS, RedisNode, wait_for


def cluster_caches(nodes: list[str]) -> dict:
    aliases = {"default": DEFAULT_PREFIX, **APPS}
    return {
        alias: redis_cache(prefix, sentinels=[], cluster_nodes=nodes, username=APP_USER, password=APP_PASSWORD)
        for alias, prefix in aliases.items()
    }


def shard(key: str) -> int:
    """Which of three masters ``redis-cli --cluster create`` gives ``key``'s slot to."""
    slot = key_slot(key.encode())
    return 0 if slot <= 5460 else 1 if slot <= 10922 else 2


def start_cluster(count: int = 3) -> list[RedisNode]:
    nodes = []
    try:
        for _ in range(count):
            # An explicit bus port: the default, port + 10000, may be taken or out of range.
            extra = ["cluster-enabled yes", "cluster-node-timeout 3000", f"cluster-port {free_port()}"]
            nodes.append(RedisNode(extra=extra).start())
        subprocess.run(
            ["redis-cli", "--user", "admin", "--cluster", "create", *(n.address for n in nodes), "--cluster-yes"],
            env={**os.environ, "REDISCLI_AUTH": PASSWORDS["REDIS_ADMIN_PASSWORD"]},
            check=True,
            capture_output=True,
            timeout=30,
        )
        for node in nodes:
            wait_for(
                lambda node=node: (
                    b"cluster_state:ok" in node.admin().execute_command("CLUSTER", "INFO")
                    and node.admin().execute_command("CLUSTER", "INFO").count(b"cluster_known_nodes:3")
                ),
                20,
                f"cluster state ok on {node.port}",
            )
    except BaseException:
        for node in nodes:
            node.cleanup()
        raise
    return nodes


@tag("infra")
@override_settings(CACHE_BREAKER_COOLDOWN=0.3)
class ClusterCacheTests(TestCase):
    nodes: list[RedisNode]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.nodes = start_cluster()
        for node in cls.nodes:
            cls.addClassCleanup(node.cleanup)

    def setUp(self) -> None:
        for node in self.nodes:
            node.admin().flushall()  # admin, on this test's own cluster
        overrides = override_settings(CACHES=cluster_caches([self.nodes[0].address]))  # the rest are discovered
        overrides.enable()
        self.addCleanup(overrides.disable)
        reset_breakers()
        self.errors_before = {app: c["errors"] for app, c in cache_counts().items()}

    def node_of(self, key: str) -> RedisNode:
        """The node that holds ``key`` (asked of each node, not computed by the client under test)."""
        holders = [n for n in self.nodes if list(n.admin().scan_iter(match=key, count=1000))]
        self.assertEqual(len(holders), 1, key)
        return holders[0]

    def keys_on(self, node: RedisNode, prefix: str) -> set[str]:
        return {k.decode() for k in node.admin().scan_iter(match=f"{prefix}_*", count=1000)}

    def assert_no_cache_errors(self) -> None:
        errors = {app: c["errors"] - self.errors_before[app] for app, c in cache_counts().items()}
        self.assertEqual(errors, dict.fromkeys(APPS, 0))

    def test_a_scoped_read_hits_after_a_miss_with_entry_and_generation_on_different_shards(self) -> None:
        # An account whose summary and generation key live on different primaries: a plain MGET
        # of the two would be refused (CROSSSLOT); the client splits it by slot.
        account = next(
            i
            for i in range(1, 500)
            if shard(f"BillingService_billing:summary:{i}") != shard(f"BillingService_billing:account:{i}:gen")
        )
        key, scope = f"billing:summary:{account}", f"billing:account:{account}"
        computed = []

        def compute() -> dict:
            computed.append(1)
            return {"account": account, "version": len(computed)}

        first = get_or_compute("billing.summary", key, compute, scope=scope)
        second = get_or_compute("billing.summary", key, compute, scope=scope)
        self.assertEqual((first.from_cache, second.from_cache), (False, True))
        self.assertEqual(second.value, {"account": account, "version": 1})
        self.assertIsNot(self.node_of(f"BillingService_{key}"), self.node_of(f"BillingService_{scope}:gen"))

        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", scope)
        third = get_or_compute("billing.summary", key, compute, scope=scope)
        fourth = get_or_compute("billing.summary", key, compute, scope=scope)
        self.assertEqual((third.from_cache, third.value["version"]), (False, 2))
        self.assertEqual((fourth.from_cache, fourth.value["version"]), (True, 2))
        self.assert_no_cache_errors()

    def test_login_me_and_logout_through_the_api(self) -> None:
        User.objects.create_user("cluster@example.com", "correct horse battery", name="Cluster")
        api = CommitAPIClient(self)
        login = api.post("/api/auth/login", {"email": "cluster@example.com", "password": "correct horse battery"})
        self.assertEqual(login.status_code, 200)
        api.bearer(login.json()["accessToken"])
        self.assertIs(api.get("/api/auth/me").json()["fromCache"], False)
        self.assertIs(api.get("/api/auth/me").json()["fromCache"], True)
        self.assertEqual(api.post("/api/auth/logout").status_code, 200)
        self.assertEqual(api.get("/api/auth/me").status_code, 401)
        self.assert_no_cache_errors()

    def test_listing_and_clearing_one_app_walk_every_shard_and_leave_the_others(self) -> None:
        for i in range(60):
            get_or_compute("billing.usage", f"billing:usage:{i}", lambda: {"units": 1}, scope=f"billing:a:{i}")
            get_or_compute("image.metadata", f"image:result:{i}", lambda: {"ok": True})
        get_or_compute("user.preferences", "user:preferences:1", lambda: {"theme": "dark"})
        billing_by_node = [self.keys_on(node, "BillingService") for node in self.nodes]
        self.assertTrue(all(billing_by_node), "billing keys should be spread over all three shards")
        every_billing_key = set().union(*billing_by_node)
        self.assertEqual(len(every_billing_key), 120, sorted(every_billing_key))  # 60 entries + 60 generation keys

        listed, cursor, pages = [], 0, 0
        while True:
            cursor, page = scan_keys("billing", count=7, cursor=cursor)
            listed += page
            pages += 1
            if cursor == 0:
                break
            self.assertLess(pages, 500, "the cursor never came back to 0")
        self.assertEqual(sorted(k for k, _ in listed), sorted(every_billing_key))  # each key once
        self.assertTrue(all(ttl > 0 for _, ttl in listed))
        matched = [k for k, _ in scan_keys("billing", match="billing:usage:1*", count=1000)[1]]
        self.assertTrue(all(k.startswith("BillingService_billing:usage:1") for k in matched))
        self.assertEqual(count_keys("billing"), 120)

        self.assertEqual(clear_app("billing"), 120)
        self.assertEqual([self.keys_on(node, "BillingService") for node in self.nodes], [set(), set(), set()])
        self.assertEqual(count_keys("image"), 60)
        self.assertEqual(count_keys("user"), 1)
        self.assert_no_cache_errors()

    def test_counters_ping_and_server_info_cover_the_cluster(self) -> None:
        self.assertEqual(window_increment("auth.login_failures", "auth:login-failures:c"), 1)
        self.assertEqual(window_increment("auth.login_failures", "auth:login-failures:c"), 2)
        self.assertEqual(window_read("auth.login_failures", "auth:login-failures:c")[0], 2)
        self.assertTrue(ping())
        info = server_info()
        self.assertEqual(info["maxmemory"], 3 * 256 * 1024 * 1024)  # summed over the primaries
        self.assertEqual(info["maxmemoryPolicy"], "allkeys-lru")
        self.assert_no_cache_errors()

    def test_a_frozen_shard_costs_a_bounded_wait_and_caching_resumes(self) -> None:
        keys = [f"image:result:{i}" for i in range(30)]
        for key in keys:
            get_or_compute("image.metadata", key, lambda: {"ok": True})
        frozen = self.nodes[1]
        clock = self.enterContext(breaker_clock())  # the breaker stays open until the test says
        frozen.pause()
        try:
            results, trips = [], []
            for key in keys:
                with count_round_trips() as sent:
                    results.append(get_or_compute("image.metadata", key, lambda: {"ok": "db"}))
                trips.append(sent[0])
            self.assertEqual({r.value["ok"] for r in results if not r.from_cache}, {"db"})
            first_miss = next(i for i, r in enumerate(results) if not r.from_cache)
            # Socket timeouts and the breaker bound the cost: the first read of the frozen shard waits
            # out a timeout and opens the breaker; no read after it tries Redis at all.
            self.assertEqual(trips[first_miss + 1 :], [0] * (len(keys) - first_miss - 1))
            self.assertFalse(ping())
        finally:
            frozen.resume()
        clock.advance(0.35)  # past the breaker's cooldown

        def all_hits() -> bool:
            return all(get_or_compute("image.metadata", k, lambda: {"ok": "db"}).from_cache for k in keys)

        wait_for(lambda: all_hits() and all_hits(), 10, "hits on every shard again")
        self.assertTrue(ping())


class UnreachableClusterTests(TestCase):
    def test_no_reachable_node_is_a_cache_outage_not_an_error(self) -> None:
        dead = f"127.0.0.1:{free_port()}"
        with self.assertRaises(ClusterUnavailable):
            cluster_client([f"redis://{dead}"], {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2})
        with override_settings(CACHES=cluster_caches([dead])):
            reset_breakers()
            result = get_or_compute("user.preferences", "user:preferences:9", lambda: {"theme": "light"})
            self.assertEqual(result, (({"theme": "light"}), False))
            self.assertFalse(ping())
            self.assertIsNone(server_info())
            with self.assertRaises(CacheUnavailable):
                scan_keys("user")
            reset_breakers()

    def test_cluster_errors_are_redis_errors(self) -> None:
        # So that django-redis and the layer's breaker treat them as an outage.
        self.assertTrue(issubclass(ClusterUnavailable, redis.exceptions.ConnectionError))
        self.assertTrue(issubclass(SafeRedisCluster, redis.cluster.RedisCluster))
