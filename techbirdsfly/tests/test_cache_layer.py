"""The shared cache layer against the private test redis-server."""

from __future__ import annotations

import pickle
import sys
import threading
import time
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings

from auth_app.models import User
from auth_app.services import token_pair_issue
from techbirdsfly.cache import (
    APPS,
    KINDS,
    cache_counts,
    clear_app,
    fills,
    get_or_compute,
    invalidate,
    journal,
    reset_breakers,
    scan_keys,
    stamps,
)
from techbirdsfly.cache.calls import breaker_for, cache_for
from techbirdsfly.cache.fills import FILL_LOCK_TTL
from techbirdsfly.cache.generations import WRITING_TTL, bump
from techbirdsfly.cache.policy import MAX_VALUE_BYTES
from techbirdsfly.cache.scope import request_scope
from techbirdsfly.cache.serializers import SafeJSONSerializer
from techbirdsfly.models import CacheJournal
from techbirdsfly.testing import CacheTestCase, RedisServer, elsewhere, fill_polls, polls_within, test_redis

UNPICKLED = []


def _mark_unpickled():
    UNPICKLED.append(True)
    return "pwned"


class Exploit:
    def __reduce__(self):
        return (_mark_unpickled, ())


def run_threads(target, n):
    """Run ``target`` in ``n`` threads at once; each closes its database connection, as requests do."""

    def run():
        try:
            target()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value=None, sleep=0.0):
        self.calls = 0
        self.value = value
        self.sleep = sleep
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.sleep:
            time.sleep(self.sleep)
        return self.value if self.value is not None else {"n": n}


class PolicyTests(CacheTestCase):
    def test_each_kind_has_its_ttl(self):
        expected = {
            "auth.token": 3600,
            "auth.profile": 300,
            "billing.summary": 900,
            "billing.usage": 300,
            "billing.invoices": 1800,
            "admin.dashboard": 300,
            "image.metadata": 3600,
            "user.preferences": 600,
        }
        for kind, ttl in expected.items():
            self.assertEqual(KINDS[kind].ttl, ttl, kind)
        self.assertTrue(all(k.ttl > 0 for k in KINDS.values()))

    def test_one_alias_per_app_with_its_prefix(self):
        self.assertEqual(
            APPS,
            {
                "auth": "AuthService",
                "billing": "BillingService",
                "admin": "AdminService",
                "image": "ImageService",
                "user": "UserService",
            },
        )
        for app, prefix in APPS.items():
            config = settings.CACHES[app]
            self.assertEqual(config["BACKEND"], "django_redis.cache.RedisCache")
            self.assertEqual(config["KEY_PREFIX"], prefix)
            self.assertEqual(config["OPTIONS"]["SERIALIZER"], "techbirdsfly.cache.serializers.SafeJSONSerializer")
        self.assertIn("default", settings.CACHES)

    def test_unknown_kind_is_refused(self):
        with self.assertRaises(ValueError):
            get_or_compute("billing.forever", "k", lambda: 1)


class CacheAsideTests(CacheTestCase):
    def test_miss_then_hit_with_prefixed_key_and_policy_ttl(self):
        compute = Counter({"total": "12.50"})
        first = get_or_compute("billing.summary", "billing:summary:7", compute)
        second = get_or_compute("billing.summary", "billing:summary:7", compute)
        self.assertEqual(first, ({"total": "12.50"}, False))
        self.assertEqual(second, ({"total": "12.50"}, True))
        self.assertEqual(compute.calls, 1)
        self.assertEqual(self.redis_keys(), ["BillingService_billing:summary:7"])
        ttl = self.redis.ttl("BillingService_billing:summary:7")
        self.assertTrue(0 < ttl <= 900, ttl)

    def test_a_cached_none_is_a_hit_not_a_miss(self):
        calls = []

        def none():
            calls.append(1)

        self.assertEqual(get_or_compute("image.metadata", "image:metadata:1", none), (None, False))
        self.assertEqual(get_or_compute("image.metadata", "image:metadata:1", none), (None, True))
        self.assertEqual(len(calls), 1)

    def test_ttl_of_shortens_but_never_lengthens(self):
        get_or_compute("auth.profile", "auth:profile:1", lambda: 1, ttl_of=lambda v: 10**6)
        self.assertLessEqual(self.redis.ttl("AuthService_auth:profile:1"), 300)
        get_or_compute("auth.profile", "auth:profile:2", lambda: 1, ttl_of=lambda v: 5)
        self.assertLessEqual(self.redis.ttl("AuthService_auth:profile:2"), 5)
        get_or_compute("auth.profile", "auth:profile:3", lambda: 1, ttl_of=lambda v: 0)
        self.assertEqual(self.redis.exists("AuthService_auth:profile:3"), 0)

    def test_invalidating_a_scope_makes_its_entries_stale(self):
        compute = Counter()
        for key in ("billing:summary:1", "billing:invoices:1"):
            kind = "billing.summary" if "summary" in key else "billing.invoices"
            get_or_compute(kind, key, compute, scope="billing:account:1")
        other = get_or_compute("billing.summary", "billing:summary:2", compute, scope="billing:account:2")
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", "billing:account:1")
        again = get_or_compute("billing.summary", "billing:summary:1", compute, scope="billing:account:1")
        self.assertFalse(again.from_cache)
        self.assertEqual(again.value, {"n": 4})
        self.assertEqual(
            get_or_compute("billing.summary", "billing:summary:2", compute, scope="billing:account:2"),
            (other.value, True),
        )

    def test_a_read_racing_a_write_cannot_cache_pre_write_data(self):
        state = {"balance": "1.00"}

        def racing_read():
            seen = dict(state)  # the read sees the database before the write...
            state["balance"] = "2.00"  # ...the write commits and invalidates...
            with self.captureOnCommitCallbacks(execute=True):
                invalidate("billing", "billing:account:9")
            return seen  # ...and the read then stores what it saw

        stale = get_or_compute("billing.summary", "billing:summary:9", racing_read, scope="billing:account:9")
        self.assertEqual(stale, ({"balance": "1.00"}, False))
        fresh = get_or_compute("billing.summary", "billing:summary:9", lambda: dict(state), scope="billing:account:9")
        self.assertEqual(fresh, ({"balance": "2.00"}, False))

    def test_between_a_write_and_its_commit_reads_use_the_database_and_store_nothing(self):
        scope, key = "billing:account:3", "billing:summary:3"
        get_or_compute("billing.summary", key, lambda: {"v": "old"}, scope=scope)
        with self.captureOnCommitCallbacks(execute=True), transaction.atomic():
            invalidate("billing", scope)  # the transaction has not committed yet
            during = get_or_compute("billing.summary", key, lambda: {"v": "uncommitted"}, scope=scope)
            again = get_or_compute("billing.summary", key, lambda: {"v": "still"}, scope=scope)
        self.assertEqual((during, again), (({"v": "uncommitted"}, False), ({"v": "still"}, False)))
        after = get_or_compute("billing.summary", key, lambda: {"v": "committed"}, scope=scope)
        self.assertEqual(after, ({"v": "committed"}, False))
        self.assertEqual(get_or_compute("billing.summary", key, dict, scope=scope), ({"v": "committed"}, True))

    def test_the_mark_of_a_rolled_back_write_expires_by_itself(self):
        scope = "billing:account:4"
        with self.assertRaises(RuntimeError), transaction.atomic():
            invalidate("billing", scope)
            raise RuntimeError("rollback")
        ttl = self.redis.ttl("BillingService_billing:account:4:gen")
        self.assertTrue(0 < ttl <= WRITING_TTL, ttl)

    def test_values_over_one_megabyte_are_served_but_not_cached(self):
        big = "x" * (MAX_VALUE_BYTES + 1)
        with self.assertLogs("techbirdsfly.cache", "WARNING") as logs:
            result = get_or_compute("admin.dashboard", "admin:dashboard", lambda: big)
        self.assertEqual(result, (big, False))
        self.assertEqual(self.redis_keys(), [])
        self.assertIn("not caching admin:dashboard", logs.output[0])

    def test_a_pickle_in_redis_is_never_unpickled(self):
        self.redis.set("AdminService_admin:dashboard", pickle.dumps(Exploit()), ex=60)
        with self.assertLogs("techbirdsfly.cache", "WARNING"):
            result = get_or_compute("admin.dashboard", "admin:dashboard", lambda: {"safe": True})
        self.assertEqual(result, ({"safe": True}, False))
        self.assertEqual(UNPICKLED, [])
        self.assertEqual(get_or_compute("admin.dashboard", "admin:dashboard", lambda: None), ({"safe": True}, True))

    def test_a_forged_entry_is_never_served(self):
        # Whoever can write to Redis must not be able to plant a value (say, a staff token record).
        get_or_compute("admin.dashboard", "admin:dashboard", lambda: {"staff": False})
        stored = self.redis.get("AdminService_admin:dashboard")
        self.redis.set("AdminService_admin:dashboard", stored.replace(b"false", b"true "), ex=60)
        with self.assertLogs("techbirdsfly.cache", "WARNING"):
            result = get_or_compute("admin.dashboard", "admin:dashboard", lambda: {"staff": False})
        self.assertEqual(result, ({"staff": False}, False))

    def test_hits_misses_and_computes_are_counted_per_app(self):
        before = cache_counts()
        get_or_compute("user.preferences", "user:preferences:1", dict, scope="user:user:1")
        get_or_compute("user.preferences", "user:preferences:1", dict, scope="user:user:1")
        get_or_compute("user.preferences", "user:preferences:1", dict, scope="user:user:1")
        after = cache_counts()
        self.assertEqual(after["user"]["misses"] - before["user"]["misses"], 1)
        self.assertEqual(after["user"]["hits"] - before["user"]["hits"], 2)
        self.assertEqual(after["user"]["computes"] - before["user"]["computes"], 1)
        self.assertEqual(after["billing"], before["billing"])


class StampedeTests(CacheTestCase):
    def test_concurrent_misses_compute_once(self):
        before = cache_counts()
        compute = Counter({"heavy": True}, sleep=0.3)
        results = []

        def read():
            results.append(get_or_compute("admin.dashboard", "admin:dashboard", compute))

        run_threads(read, 64)
        self.assertEqual(compute.calls, 1)
        self.assertEqual(len(results), 64)
        self.assertTrue(all(r.value == {"heavy": True} for r in results))
        self.assertEqual(sum(not r.from_cache for r in results), 1)
        # One read per request: one miss (the computing one) and 63 hits (served the peer's value).
        self.assertEqual(cache_counts()["admin"]["misses"] - before["admin"]["misses"], 1)
        self.assertEqual(cache_counts()["admin"]["hits"] - before["admin"]["hits"], 63)

    def test_a_burst_on_an_expired_entry_writes_it_exactly_once(self):
        # Between a caller's miss and its lock, the holder may have stored the entry and unlocked: the
        # late caller re-reads with its lock and serves the peer's entry instead of storing it again.
        key, scope = "billing:summary:31", "billing:account:31"
        get_or_compute("billing.summary", key, lambda: {"v": 0}, scope=scope)
        self.redis.delete(f"BillingService_{key}")  # expired
        writes = []
        monitor_ready = threading.Event()
        stop = threading.Event()

        def watch():
            with redis.Redis(port=test_redis().port, socket_timeout=0.2).monitor() as monitor:
                monitor_ready.set()
                while not stop.is_set():
                    try:
                        command = monitor.next_command()["command"]
                    except redis.TimeoutError:  # idle
                        command = ""
                    if command.startswith(f"SET BillingService_{key} "):
                        writes.append(command)

        watcher = threading.Thread(target=watch)
        watcher.start()
        monitor_ready.wait(5)
        for burst in range(3):
            compute = Counter({"v": burst}, sleep=0.05)
            run_threads(lambda compute=compute: get_or_compute("billing.summary", key, compute, scope=scope), 32)
            self.redis.delete(f"BillingService_{key}")
        time.sleep(0.3)
        stop.set()
        watcher.join()
        self.assertEqual(len(writes), 3, writes)

    @override_settings(CACHE_FILL_WAIT=0.3)
    def test_a_dead_lock_holder_delays_but_never_blocks(self):
        # A holder that died leaves its lock; it expires by itself and waiters give up in time.
        lease = fills._lease(cache_for("admin"), "AdminService_admin:dashboard:lock")
        self.redis.set("AdminService_admin:dashboard:lock", lease, px=int(FILL_LOCK_TTL * 1000))
        self.assertGreater(self.redis.pttl("AdminService_admin:dashboard:lock"), 0)
        polls = fill_polls("admin")
        result = get_or_compute("admin.dashboard", "admin:dashboard", lambda: {"ok": 1})
        self.assertEqual(result, ({"ok": 1}, False))
        # It gave up at CACHE_FILL_WAIT: no more polls than fit in it (a busy machine makes fewer).
        self.assertLessEqual(fill_polls("admin") - polls, polls_within(0.3))

    def test_hot_keys_are_refreshed_early_by_one_caller(self):
        key = "AdminService_admin:dashboard"
        get_or_compute("admin.dashboard", "admin:dashboard", lambda: {"v": "old"})
        # Make the entry look about to expire and slow to compute: XFetch refreshes it early.
        entry = {"k": key, "v": {"v": "old"}, "g": None, "x": time.time() + 0.5, "d": 30.0}
        self.redis.set(key, SafeJSONSerializer({}).dumps(entry), ex=60)
        compute = Counter({"v": "new"}, sleep=0.3)
        results = []

        def read():
            results.append(get_or_compute("admin.dashboard", "admin:dashboard", compute))

        run_threads(read, 16)
        self.assertEqual(compute.calls, 1)
        refreshed = [r for r in results if not r.from_cache]
        self.assertEqual(refreshed, [({"v": "new"}, False)])
        self.assertTrue(all(r.value == {"v": "old"} for r in results if r.from_cache))
        self.assertEqual(get_or_compute("admin.dashboard", "admin:dashboard", compute).value, {"v": "new"})


class NamespaceTests(CacheTestCase):
    def fill_every_app(self):
        for kind in KINDS.values():
            if kind.name != "login_failures":
                get_or_compute(
                    f"{kind.app}.{kind.name}", f"{kind.app}:{kind.name}:1", lambda: 1, scope=f"{kind.app}:s:1"
                )

    def test_every_key_has_its_app_prefix_and_a_ttl(self):
        self.fill_every_app()
        keys = self.redis_keys()
        self.assertEqual({k.split("_", 1)[0] for k in keys}, set(APPS.values()))
        for key in keys:
            self.assertGreater(self.redis.ttl(key), 0, key)

    def test_clearing_one_app_leaves_the_others(self):
        self.fill_every_app()
        before = self.redis_keys()
        deleted = clear_app("billing")
        after = self.redis_keys()
        self.assertEqual(deleted, len([k for k in before if k.startswith("BillingService_")]))
        self.assertGreater(deleted, 0)
        self.assertEqual(after, [k for k in before if not k.startswith("BillingService_")])

    def test_scan_lists_one_app_with_ttls(self):
        self.fill_every_app()
        cursor, keys, seen = 0, [], 0
        while True:
            cursor, page = scan_keys("image", match="image:*", count=2, cursor=cursor)
            keys += page
            seen += 1
            if cursor == 0:
                break
        self.assertTrue(keys)
        self.assertTrue(all(k.startswith("ImageService_image:") and 0 < ttl <= 7200 for k, ttl in keys))


class JournalTests(CacheTestCase):
    def test_an_invalidation_is_tried_even_while_this_process_backs_off(self):
        # Redis is up for the other processes: this one's open breaker must not keep the new generation
        # from them (they would serve the stale entry until their journal follower saw the row).
        scope = "billing:account:6"
        get_or_compute("billing.summary", "billing:summary:6", lambda: {"v": "old"}, scope=scope)
        generation = self.redis.get("BillingService_billing:account:6:gen")
        breaker_for("billing").failure(ConnectionError("a timeout a moment ago"))
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", scope)
        self.assertNotEqual(self.redis.get("BillingService_billing:account:6:gen"), generation)
        reset_breakers()
        result = get_or_compute("billing.summary", "billing:summary:6", lambda: {"v": "new"}, scope=scope)
        self.assertEqual(result, ({"v": "new"}, False))

    def test_every_invalidation_is_a_journal_row_in_the_writes_transaction(self):
        with self.assertRaises(RuntimeError), transaction.atomic():
            invalidate("billing", "billing:account:70", "billing:account:71")
            self.assertEqual(CacheJournal.objects.filter(scope__startswith="billing:account:7").count(), 2)
            raise RuntimeError("rollback")
        self.assertFalse(CacheJournal.objects.filter(scope__startswith="billing:account:7").exists())
        with self.captureOnCommitCallbacks(execute=True), transaction.atomic():
            invalidate("billing", "billing:account:72")
        row = CacheJournal.objects.get(scope="billing:account:72")
        self.assertEqual(journal.floor("billing", "billing:account:72"), row.pk)
        # The generation in Redis carries the row's id as its number.
        gen = stamps.decode(self.redis.get("BillingService_billing:account:72:gen"))
        self.assertEqual(int(gen.split(".")[0]), row.pk)

    def test_an_invalidation_made_while_redis_is_down_wins_over_an_old_dump(self):
        scope = "billing:account:5"
        get_or_compute("billing.summary", "billing:summary:5", lambda: {"v": "old"}, scope=scope)
        server = test_redis()
        server.stop(save=True)  # the dump holds the entry and its generation
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", scope)
        server.start()  # back with the old data
        self.assertEqual(self.redis.exists("BillingService_billing:summary:5"), 1)
        reset_breakers()
        result = get_or_compute("billing.summary", "billing:summary:5", lambda: {"v": "new"}, scope=scope)
        self.assertEqual(result, ({"v": "new"}, False))
        self.assertEqual(
            get_or_compute("billing.summary", "billing:summary:5", lambda: {"v": "newer"}, scope=scope),
            ({"v": "new"}, True),
        )

    def test_an_invalidation_made_while_redis_is_up_wins_over_an_older_dump(self):
        # Redis saves, the write reaches it, then it comes back from the save: the journal, not
        # Redis, remembers the write.
        scope = "billing:account:8"
        get_or_compute("billing.summary", "billing:summary:8", lambda: {"v": "old"}, scope=scope)
        self.redis.save()
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", scope)
        server = test_redis()
        server.kill()
        server.start()
        reset_breakers()
        self.assertEqual(self.redis.exists("BillingService_billing:summary:8"), 1)
        result = get_or_compute("billing.summary", "billing:summary:8", lambda: {"v": "new"}, scope=scope)
        self.assertEqual(result, ({"v": "new"}, False))

    def test_a_row_committed_by_another_process_is_read_by_catch_up(self):
        scope = "billing:account:12"
        get_or_compute("billing.summary", "billing:summary:12", lambda: {"v": "old"}, scope=scope)
        # Another process's write whose generation never reached Redis: only its row exists.
        row = elsewhere(lambda: CacheJournal.objects.create(app="billing", scope=scope))
        self.addCleanup(elsewhere, lambda: CacheJournal.objects.filter(pk=row.pk).delete())
        self.assertEqual(get_or_compute("billing.summary", "billing:summary:12", dict, scope=scope).from_cache, True)
        self.assertTrue(journal.catch_up())
        self.assertEqual(journal.floor("billing", scope), row.pk)
        result = get_or_compute("billing.summary", "billing:summary:12", lambda: {"v": "new"}, scope=scope)
        self.assertEqual(result, ({"v": "new"}, False))
        # The reader moved Redis's generation on, so the new entry is a hit.
        self.assertEqual(get_or_compute("billing.summary", "billing:summary:12", dict, scope=scope).from_cache, True)

    def test_generations_only_grow_under_another_serializer(self):
        # The scripts read generations in the layer's own form (stamps.py), whatever the serializer
        # lays out; under msgpack a late, lower bump used to overwrite a newer generation.
        import msgpack

        class SignedMsgpack(SafeJSONSerializer):
            def encode(self, value):
                return msgpack.packb(value)

            def decode(self, payload):
                return msgpack.unpackb(payload)

        cache = cache_for("billing")
        original = cache.client._serializer
        cache.client._serializer = SignedMsgpack({})
        self.addCleanup(setattr, cache.client, "_serializer", original)
        scope, key = "billing:account:88", "BillingService_billing:account:88:gen"
        bump("billing", [(scope, 10)], journal.history())
        bump("billing", [(scope, 5)], journal.history())  # an invalidation applied late
        self.assertEqual(stamps.decode(self.redis.get(key)).split(".")[0], "10")
        compute = lambda: {"v": 1}  # noqa: E731
        self.assertEqual(
            get_or_compute("billing.summary", "billing:summary:88", compute, scope=scope).from_cache, False
        )
        self.assertEqual(get_or_compute("billing.summary", "billing:summary:88", compute, scope=scope).from_cache, True)

    def test_junk_of_another_type_at_a_generation_key_is_replaced(self):
        # A Redis writer's list at the scope's generation key: the next fill replaces it, and so
        # does the next invalidation, so caching resumes by itself.
        gen = "BillingService_billing:account:9:gen"
        self.redis.rpush(gen, "junk")
        compute = lambda: {"v": 1}  # noqa: E731
        self.assertEqual(
            get_or_compute("billing.summary", "billing:summary:9", compute, scope="billing:account:9"),
            ({"v": 1}, False),
        )
        self.assertEqual(
            get_or_compute("billing.summary", "billing:summary:9", compute, scope="billing:account:9"), ({"v": 1}, True)
        )
        self.redis.delete(gen)
        self.redis.rpush(gen, "junk")
        with self.captureOnCommitCallbacks(execute=True):
            invalidate("billing", "billing:account:9")
        self.assertEqual(self.redis.type(gen), b"string")

    def test_rows_older_than_the_longest_ttl_are_pruned(self):
        old = CacheJournal.objects.create(app="billing", scope="billing:account:15")
        CacheJournal.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(seconds=journal.WINDOW + 1))
        new = CacheJournal.objects.create(app="billing", scope="billing:account:16")
        self.assertGreaterEqual(journal.prune(), 1)
        self.assertEqual(
            list(CacheJournal.objects.filter(pk__in=[old.pk, new.pk]).values_list("pk", flat=True)), [new.pk]
        )
        self.assertGreater(journal.WINDOW, max(kind.ttl for kind in KINDS.values()))


class RequestBudgetTests(CacheTestCase):
    """The request's Redis budget counts time Redis takes to answer, not time spent waiting for a CPU."""

    @override_settings(CACHE_REQUEST_BUDGET=0.05)
    def test_waiting_for_the_gil_does_not_spend_the_budget(self):
        user = User.objects.create_user("budget@example.com", None, name="Budget")
        self.api.bearer(token_pair_issue(user=user).access_token)
        path = f"/api/users/{user.pk}/preferences"
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                sum(range(1000))

        # Busy threads that hold the GIL for 20 ms at a time: every Redis answer then waits for it,
        # so each call's wall time is far above what Redis took.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(0.02)
        spinners = [threading.Thread(target=spin) for _ in range(2)]
        for spinner in spinners:
            spinner.start()
        try:
            before = cache_counts()
            cold = self.api.get(path)  # a miss: token and data computed, locked, stored, unlocked
            warm = self.api.get(path)
        finally:
            stop.set()
            for spinner in spinners:
                spinner.join()
            sys.setswitchinterval(interval)
        self.assertEqual((cold.status_code, cold.json()["fromCache"]), (200, False))
        self.assertIs(warm.json()["fromCache"], True)
        self.assertEqual(cache_counts()["user"]["errors"], before["user"]["errors"])
        self.assertEqual(cache_counts()["auth"]["errors"], before["auth"]["errors"])


# A script that keeps Redis busy for 50 ms (Redis 7 allows TIME in scripts).
_BUSY_50_MS = """
local t = redis.call('TIME')
while true do
  local n = redis.call('TIME')
  if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 50000 then return 1 end
end
"""


class HitPathTests(CacheTestCase):
    """The shortcuts of a warm hit (raw reads, remembered signatures, fast-read metering) stay correct."""

    def test_a_read_keeps_a_connection_the_server_answered_and_drops_one_that_failed(self):
        from redis.exceptions import NoScriptError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        from techbirdsfly.cache.rawio import read

        client = test_redis().client()
        pool = client.connection_pool
        client.set("hit-path:a", b"1")
        self.assertEqual(read(client, "MGET", "hit-path:a", "hit-path:b"), [b"1", None])
        (connection,) = pool._available_connections
        with self.assertRaises(NoScriptError):  # an error answer: the connection is fine, and kept
            read(client, "EVALSHA", "0" * 40, 0)
        self.assertEqual(pool._available_connections, [connection])
        self.assertIsNotNone(connection._sock)

        paused = RedisServer().start()  # a server of its own, paused while a read waits on it
        try:
            client = redis.Redis(host="127.0.0.1", port=paused.port, socket_timeout=0.1)
            pool = client.connection_pool
            self.assertEqual(read(client, "MGET", "hit-path:a"), [None])
            (connection,) = pool._available_connections
            paused.pause()
            try:
                with self.assertRaises(RedisTimeoutError):
                    read(client, "MGET", "hit-path:a")
            finally:
                paused.resume()
            self.assertIsNone(connection._sock)  # dropped (its answer may still come), and given back
            self.assertFalse(pool._in_use_connections)
            self.assertEqual(read(client, "MGET", "hit-path:a"), [None])  # the next read reconnects
        finally:
            paused.cleanup()

    def test_a_value_verified_once_is_remembered_by_its_exact_bytes_only(self):
        from techbirdsfly.cache import serializers
        from techbirdsfly.cache.serializers import CorruptValue

        serializer = SafeJSONSerializer({})
        signed = serializer.dumps("7.abc")
        self.assertEqual(serializer.loads(signed), "7.abc")
        self.assertEqual(serializer._verified[signed], "7.abc")  # a string: remembered decoded
        forged = signed[:32] + b'."9.abc"'  # a valid tag moved onto another value
        with self.assertRaises(CorruptValue):
            serializer.loads(forged)
        self.assertNotIn(forged, serializer._verified)
        record = serializer.dumps({"userId": 1, "isStaff": False})
        first = serializer.loads(record)
        first["isStaff"] = True  # a caller changing what it got...
        self.assertEqual(serializer.loads(record), {"userId": 1, "isStaff": False})  # ...changes no one else's
        self.assertIs(serializer._verified[record], serializers._SIGNED)
        large = serializer.dumps("x" * serializers._REMEMBERED_BYTES)
        self.assertEqual(serializer.loads(large), "x" * serializers._REMEMBERED_BYTES)
        self.assertNotIn(large, serializer._verified)  # too long to keep
        for n in range(serializers._REMEMBERED + 10):
            serializer.loads(serializer.dumps(f"{n}.x"))
        self.assertLessEqual(len(serializer._verified), serializers._REMEMBERED)
        # One memory per process and key, whatever the thread or alias (each has its own instance).
        self.assertIs(SafeJSONSerializer({})._verified, serializer._verified)

    def test_a_fast_read_is_charged_its_wall_time_and_a_slow_one_what_redis_took(self):
        from techbirdsfly.cache import calls
        from techbirdsfly.cache.metering import FAST_READ

        client = calls.client_for("auth", write=False)
        with request_scope():  # as RequestCacheMiddleware does for a request
            began = time.monotonic()
            calls.redis_call("auth", client.mget, ["hit-path:a"])
            took = time.monotonic() - began
            spent = calls.request_cache_seconds()
            self.assertLessEqual(spent, took)  # never more than the call's wall time...
            # ...and at most FAST_READ: under it, what the read took; over it (a busy machine), what the
            # kernel saw Redis take, in TCP_INFO's whole milliseconds, which an instant answer keeps at 0 or 1.
            self.assertLessEqual(spent, FAST_READ)
            # ...and a read that waited on Redis (a 50 ms script) is charged that wait, from TCP_INFO.
            calls.redis_call("auth", client.eval, _BUSY_50_MS, 0)
            self.assertGreater(calls.request_cache_seconds() - spent, 0.04)
