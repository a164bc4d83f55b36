"""The cache layer on a real three-master Redis Cluster (REDIS_CLUSTER_NODES), as the app's ACL user."""

from __future__ import annotations

import os
import subprocess
import time

import redis
from django.db import transaction
from django.test import TestCase, override_settings, tag
from prometheus_client import REGISTRY
from redis.crc import key_slot

from auth_app.models import User
from techbirdsfly.cache import generations, hot, journal
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


def invalidation_errors(app: str) -> float:
    return REGISTRY.get_sample_value("techbirdsfly_cache_invalidation_errors_total", {"app": app}) or 0.0


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
        self.invalidation_errors_before = invalidation_errors("billing")
        journal.reset()
        journal.catch_up()
        generations.retries.clear()
        hot.clear()

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

    def test_a_scoped_entry_shares_its_generations_slot_and_a_hit_is_one_command(self) -> None:
        # An account whose summary and generation key would live on different primaries by their
        # plain names: the hash tag puts both in the account's slot.
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
        entry, generation = f"BillingService_{key}{{{scope}}}", f"BillingService_{scope}:gen{{{scope}}}"
        self.assertIs(self.node_of(entry), self.node_of(generation))
        self.assertEqual(key_slot(entry.encode()), key_slot(generation.encode()))

        for node in self.nodes:
            node.admin().config_resetstat()
        self.assertTrue(get_or_compute("billing.summary", key, compute, scope=scope).from_cache)
        calls = [node.admin().info("commandstats").get("cmdstat_mget", {}).get("calls", 0) for node in self.nodes]
        self.assertEqual(sorted(calls), [0, 0, 1])  # one MGET, to the shard of the account

        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", scope)
        third = get_or_compute("billing.summary", key, compute, scope=scope)
        fourth = get_or_compute("billing.summary", key, compute, scope=scope)
        self.assertEqual((third.from_cache, third.value["version"]), (False, 2))
        self.assertEqual((fourth.from_cache, fourth.value["version"]), (True, 2))
        self.assert_no_cache_errors()

    def test_an_invalidation_reaches_the_generation_keys_on_every_shard(self) -> None:
        scopes = [f"billing:account:{i}" for i in range(1, 40)]
        self.assertEqual({shard(f"BillingService_{s}:gen{{{s}}}") for s in scopes}, {0, 1, 2})
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", *scopes)
        for scope in scopes:
            name = f"BillingService_{scope}:gen{{{scope}}}"
            value = self.node_of(name).admin().get(name)
            number = journal.floor("billing", scope)
            self.assertGreater(number, 0)
            self.assertTrue(value.startswith(f"{number}.".encode()), value)  # the journal's number, by the bump
        self.assertEqual(invalidation_errors("billing"), self.invalidation_errors_before)
        self.assert_no_cache_errors()

    def test_a_bump_that_fails_is_counted_logged_once_and_retried_until_it_lands(self) -> None:
        def gen_key_of(scope: str) -> str:
            return f"BillingService_{scope}:gen{{{scope}}}"

        # Not on the node the client was given (redis-py asks it for the topology after a failure).
        scope = next(f"billing:account:{i}" for i in range(1, 100) if shard(gen_key_of(f"billing:account:{i}")) != 0)
        gen_key, key = gen_key_of(scope), scope.replace("account", "summary")
        get_or_compute("billing.summary", key, lambda: {"v": 1}, scope=scope)
        holder = self.node_of(gen_key)
        # A scope on another shard, whose bumps land meanwhile: the run of failures goes on all the same.
        elsewhere = next(
            f"billing:account:{i}"
            for i in range(100, 200)
            if self.nodes[shard(gen_key_of(f"billing:account:{i}"))] is not holder
        )
        holder.pause()
        try:
            with self.assertLogs("techbirdsfly.cache", "WARNING") as logs:
                for _ in range(2):
                    with self.captureOnCommitCallbacks(execute=True):
                        invalidate("billing", scope)
                    with self.captureOnCommitCallbacks(execute=True):
                        invalidate("billing", elsewhere)
            number = journal.floor("billing", scope)
            # Both invalidations, and any retry the thread has made meanwhile.
            self.assertGreaterEqual(invalidation_errors("billing") - self.invalidation_errors_before, 2)
            self.assertEqual(sum("did not reach Redis" in line for line in logs.output), 1, logs.output)
            self.assertFalse(any("reach Redis again" in line for line in logs.output), logs.output)
            self.assertEqual(generations.retries.pending(), {("billing", scope): (number, journal.history())})
        finally:
            holder.resume()
        with self.assertLogs("techbirdsfly.cache", "WARNING") as logs:
            wait_for(
                lambda: (holder.admin().get(gen_key) or b"").startswith(f"{number}.".encode()), 10, "the retried bump"
            )
            wait_for(lambda: not generations.retries.pending(), 5, "no bump pending")
        self.assertTrue(any("reach Redis again" in line for line in logs.output), logs.output)
        reset_breakers()
        self.assertEqual(get_or_compute("billing.summary", key, lambda: {"v": 2}, scope=scope).value, {"v": 2})

    def test_a_bump_redis_refuses_deletes_the_generation_and_is_counted(self) -> None:
        scope, key = "billing:account:8", "billing:summary:8"
        gen_key = f"BillingService_{scope}:gen{{{scope}}}"
        get_or_compute("billing.summary", key, lambda: {"v": 1}, scope=scope)
        holder = self.node_of(gen_key)
        holder.admin().execute_command("ACL", "SETUSER", APP_USER, "-eval")  # the shard refuses the script
        try:
            with self.assertLogs("techbirdsfly.cache", "WARNING") as logs, self.captureOnCommitCallbacks(execute=True):
                invalidate("billing", scope)
            self.assertEqual(invalidation_errors("billing") - self.invalidation_errors_before, 1)
            self.assertEqual(sum("did not reach Redis" in line for line in logs.output), 1, logs.output)
            # DEL needs no script: without a generation, no entry of the scope is valid in any process.
            self.assertIsNone(holder.admin().get(gen_key))
            self.assertEqual(generations.retries.pending(), {})
        finally:
            holder.admin().execute_command("ACL", "SETUSER", APP_USER, "+eval")
        self.assertEqual(get_or_compute("billing.summary", key, lambda: {"v": 2}, scope=scope).value, {"v": 2})

    def mgets(self) -> list[int]:
        return [node.admin().info("commandstats").get("cmdstat_mget", {}).get("calls", 0) for node in self.nodes]

    @override_settings(CACHE_HOT_COPY_SECONDS=0.3)
    def test_a_hot_entry_is_served_from_the_process_copy_and_never_staler_than_its_bound(self) -> None:
        scope, key = "billing:account:9", "billing:summary:9"
        holder = shard(f"BillingService_{key}{{{scope}}}")
        state = {"v": 1}

        def read() -> tuple[dict, bool]:
            result = get_or_compute("billing.summary", key, lambda: dict(state), scope=scope)
            return result.value, result.from_cache

        for _ in range(hot.HOT_READS + 1):
            read()
        self.assertIsNotNone(hot.get("billing", key, scope))
        for node in self.nodes:
            node.admin().config_resetstat()
        taken = hot.taken
        self.assertEqual([read() for _ in range(200)], [({"v": 1}, True)] * 200)
        # Redis was asked only to renew the copy, each time it expired (a busy machine may be slow).
        self.assertEqual(self.mgets()[holder], hot.taken - taken)
        self.assertLess(self.mgets()[holder], 200)

        # Another process's write: its bump reaches Redis, this process's journal does not know it.
        copy = hot.get("billing", key, scope)
        state["v"] = 2
        generations.bump("billing", [(scope, copy.number + 1)], copy.history)
        while time.monotonic() < copy.until:
            time.sleep(0.02)
        self.assertEqual(read(), ({"v": 2}, False))  # past the copy's bound: fresh

        # This process's own write: fresh at once, whatever copy it keeps.
        for _ in range(hot.HOT_READS + 1):
            read()
        self.assertIsNotNone(hot.get("billing", key, scope))
        state["v"] = 3
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", scope)
        self.assertEqual(read(), ({"v": 3}, False))

        # Inside this process's own transaction, a copy taken by another thread just before the write
        # (as it would, racing it) is not served: the transaction reads its own write.
        for _ in range(hot.HOT_READS + 1):
            read()
        copy = hot.get("billing", key, scope)
        with transaction.atomic():
            state["v"] = 4
            invalidate("billing", scope)
            hot.offer("billing", key, scope, copy.value, f"{copy.number}.{copy.history}.racer")
            self.assertIsNotNone(hot.get("billing", key, scope))
            self.assertEqual(read(), ({"v": 4}, False))

        # A token record is never copied: a logout elsewhere is final at the next read.
        token = "auth:token:" + "ab" * 32
        for _ in range(hot.HOT_READS * 2):
            get_or_compute("auth.token", token, lambda: {"userId": 1}, scope=token)
        self.assertIsNone(hot.get("auth", token, token))

    def test_reads_spread_over_every_shard_and_a_hot_entry_pins_none(self) -> None:
        accounts = range(1, 31)
        entries = [(f"billing:summary:{i}", f"billing:account:{i}") for i in accounts]
        by_shard = [0, 0, 0]
        for key, scope in entries:
            by_shard[shard(f"BillingService_{key}{{{scope}}}")] += 1
            get_or_compute("billing.summary", key, lambda: {"ok": True}, scope=scope)
        self.assertTrue(all(by_shard), by_shard)
        dashboard = shard("AdminService_admin:dashboard")
        for node in self.nodes:
            node.admin().config_resetstat()
        taken = hot.taken
        for turn in range(300):
            get_or_compute("admin.dashboard", "admin:dashboard", lambda: {"users": 1})
            if turn % 30 == 0:  # ten reads of each: fewer than make an entry hot
                for key, scope in entries:
                    self.assertTrue(get_or_compute("billing.summary", key, dict, scope=scope).from_cache)
        calls = self.mgets()
        print(f"\nMGET per shard, 30 accounts read 10 times each and one dashboard 300 times: {calls}")
        self.assertTrue(all(calls), calls)  # every shard serves
        # The dashboard's shard: its share of the accounts, the reads that made the dashboard hot,
        # and one read per renewal of its copy; not one per read.
        self.assertEqual([calls[i] - 10 * by_shard[i] for i in range(3) if i != dashboard], [0, 0])
        dashboard_reads = calls[dashboard] - 10 * by_shard[dashboard]
        self.assertLessEqual(dashboard_reads, hot.HOT_READS + (hot.taken - taken))
        self.assertLess(dashboard_reads, 300)

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
