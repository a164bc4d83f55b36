"""Concurrent misses on a value that is never cached must not wait for a fill that will not come.

Single flight (techbirdsfly/cache/fills.py) makes concurrent misses of one key wait for the caller
that computes it. Some values are computed but not stored: an unknown image id (TTL 0, since the
image may be created a moment later) or a value over 1 MB. The fault suite found that concurrent
requests for such a key each waited CACHE_FILL_WAIT (5 s) for an entry that never came.

Nothing here bounds wall time, which a busy machine stretches. The servers wait CACHE_FILL_WAIT_SERVER
for a fill, far past the client's timeout, so a request that waited for a fill that never came gets
no answer at all; in-process, the bound is on the polls the layer makes, of which a busy machine
makes fewer, never more.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import connections
from django.test import tag

from faults.load import request
from faults.tests.support import make_actors
from techbirdsfly.cache import fills, get_or_compute
from techbirdsfly.cache.calls import cache_for
from techbirdsfly.cache.fills import FILL_LOCK_TTL
from techbirdsfly.testing import CacheTestCase, GunicornServer, LiveTestCase, fill_polls, polls_within, server_env

CACHE_FILL_WAIT_SERVER = "60"  # seconds: four times the 15 s each request of faults.load waits for its answer


@tag("live")
class UncachedValueWaitTests(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.server = GunicornServer(env=server_env(CACHE_FILL_WAIT=CACHE_FILL_WAIT_SERVER), workers=2).start()
        self.addCleanup(self.server.stop)
        self.actor = make_actors(1, tag="waits")[0]

    def concurrent_gets(self, path: str, n: int = 12) -> list:
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda _: request(self.server.url, "GET", path, token=self.actor.token), range(n)))

    def test_concurrent_requests_for_an_unknown_image_do_not_wait_for_each_other(self):
        for _ in range(3):
            replies = self.concurrent_gets("/api/images/987654321")
            # None: no answer within the client's timeout, i.e. the request waited for a fill.
            self.assertEqual([reply.status for reply in replies], [404] * 12)

    def test_concurrent_requests_with_one_bogus_token_do_not_wait_for_each_other(self):
        # A token that is not valid is not cached (TTL 0): a flood of requests carrying one must not
        # hold every server thread for CACHE_FILL_WAIT.
        for _ in range(3):
            with ThreadPoolExecutor(12) as pool:
                replies = list(
                    pool.map(lambda _: request(self.server.url, "GET", "/api/auth/me", token="bogus-token"), range(12))
                )
            self.assertEqual([reply.status for reply in replies], [401] * 12)


class FillLeaseTests(CacheTestCase):
    """Fill locks are leases renewed while the holder computes: a slow live holder keeps the others
    waiting for its value, and a lock whose holder's store was lost (a paused or partitioned Redis
    dropped the SET with the connection, the breaker skipped the unlock) frees the entry at once.
    A fixed 10 s lock made every request for that key wait CACHE_FILL_WAIT (5 s)."""

    def read_concurrently(self, compute, n: int = 8) -> list:
        results = []

        def read() -> None:
            try:
                results.append(get_or_compute("admin.dashboard", "admin:dashboard", compute))
            finally:
                connections.close_all()  # this thread's own connection

        threads = [threading.Thread(target=read) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        return results

    def test_an_orphaned_fill_lock_holds_no_one_up(self):
        # What a holder that died, or lost its store, leaves: a lease nobody renews.
        lease = fills._lease(cache_for("admin"), "AdminService_admin:dashboard:lock")
        self.redis.set("AdminService_admin:dashboard:lock", lease, px=int(FILL_LOCK_TTL * 1000))
        polls = fill_polls("admin")
        results = self.read_concurrently(lambda: {"ok": 1})
        self.assertEqual([r.value for r in results], [{"ok": 1}] * 8)
        # Each reader polled while the orphan's lease lasted, and at most as long again for the one
        # of them that then filled the entry: not CACHE_FILL_WAIT long (about eight times as many).
        self.assertLessEqual(fill_polls("admin") - polls, 8 * 2 * polls_within(FILL_LOCK_TTL))
        self.assertIs(get_or_compute("admin.dashboard", "admin:dashboard", dict).from_cache, True)

    def test_a_slow_live_holder_keeps_its_lease(self):
        computes = []

        def slow() -> dict:
            computes.append(1)
            time.sleep(3 * FILL_LOCK_TTL)  # several leases long
            return {"slow": 1}

        results = self.read_concurrently(slow)
        self.assertEqual([r.value for r in results], [{"slow": 1}] * 8)
        self.assertEqual(len(computes), 1, "the others waited for the live holder")
        self.assertFalse(self.redis.exists("AdminService_admin:dashboard:lock"), "released after the fill")
