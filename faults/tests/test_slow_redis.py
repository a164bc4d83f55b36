"""A Redis that is slow without failing: every command answered, each a little under the socket timeout.

Socket timeouts bound one call and the breaker skips Redis after a failure, but no call fails here:
a request that makes many calls (a miss: token record, entry, fill lock, store, unlock) waited on
each in turn, over a second in all. A request now spends at most its Redis budget on Redis.
"""

from __future__ import annotations

import time

from django.test import override_settings

from auth_app.models import User
from auth_app.services import token_pair_issue
from faults.proxy import TcpProxy
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.testing import CacheTestCase, caches_at, test_redis

BOUND = 0.5  # seconds a request may wait on the cache
DELAY = 0.12  # seconds each command takes to reach Redis: under the 0.2 s socket timeout


class SlowRedisTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.proxy = TcpProxy(test_redis().port).start()
        self.addCleanup(self.proxy.stop)
        slow = override_settings(CACHES=caches_at(f"redis://127.0.0.1:{self.proxy.port}/0"))
        slow.enable()
        self.addCleanup(slow.disable)
        self.addCleanup(reset_breakers)
        user = User.objects.create_user("slow@faults.example", None, name="Slow")
        self.api.bearer(token_pair_issue(user=user).access_token)
        self.paths = ["/api/auth/me", f"/api/users/{user.pk}/preferences", "/api/auth/me"]

    def timed_get(self, path: str) -> tuple[int, float]:
        began = time.monotonic()
        response = self.api.get(path)
        return response.status_code, time.monotonic() - began

    def test_a_slow_redis_costs_a_request_at_most_the_bound(self):
        # The same cold requests against a healthy Redis first: the bound is on the time added.
        baseline = 0.0
        for path in self.paths:
            baseline = max(baseline, self.timed_get(path)[1])
        self.redis.flushall()  # cold again
        self.proxy.delay = DELAY
        for path in self.paths:
            status, elapsed = self.timed_get(path)
            self.assertEqual(status, 200)
            self.assertLess(elapsed, baseline + BOUND, f"{path} waited {elapsed:.2f}s on a slow Redis")

    def test_a_healthy_redis_is_still_used_after_a_slow_request(self):
        self.proxy.delay = DELAY
        self.timed_get(self.paths[0])
        self.proxy.delay = 0
        reset_breakers()  # on a busy machine a slow call may have timed out: not the subject here
        self.api.get(self.paths[1])
        self.assertIs(self.api.get(self.paths[1]).json()["fromCache"], True)
