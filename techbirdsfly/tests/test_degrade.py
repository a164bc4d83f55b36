"""Degrade, never fail: the API with redis-server really stopped, paused, and back again.

A request's cost is bounded by what the layer controls: the time it measured the request waiting on
Redis (Server-Timing, what the request budget counts) and the Redis round trips it tried, never wall
time, which a busy machine stretches. The breaker reads the test's clock: it stays open until the
test moves that clock past the cooldown.
"""

from __future__ import annotations

from django.conf import settings

from auth_app.models import User
from auth_app.services import token_pair_issue
from techbirdsfly.testing import CacheTestCase, breaker_clock, cache_wait, count_round_trips, test_redis

BOUND = 0.5  # seconds a request may wait on the cache in total


class RedisOutageTests(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.server = test_redis()
        self.clock = self.enterContext(breaker_clock())
        user = User.objects.create_user("deg@example.com", "a long enough password", name="Deg")
        self.token = token_pair_issue(user=user).access_token
        self.api.bearer(self.token)

    def request(self, method, path):
        response = getattr(self.api, method)(path)
        self.assertLess(cache_wait(response), BOUND, f"{method} {path} waited on Redis")
        return response

    def test_endpoints_answer_from_the_database_while_redis_is_stopped(self):
        self.assertTrue(self.api.get("/api/auth/me").json()["fromCache"] is False)
        self.assertTrue(self.api.get("/api/auth/me").json()["fromCache"])
        self.server.stop()
        with self.assertLogs("techbirdsfly.cache", "WARNING") as logs:
            response = self.request("get", "/api/auth/me")  # finds Redis down: the breaker opens
            self.assertEqual((response.status_code, response.json()["fromCache"]), (200, False))
            with count_round_trips() as trips:
                for _ in range(5):
                    response = self.request("get", "/api/auth/me")
                    self.assertEqual(response.status_code, 200)
                    self.assertIs(response.json()["fromCache"], False)
                    response = self.request("post", "/api/auth/validate-token")
                    self.assertEqual(response.status_code, 200)
                    self.assertEqual(response.json()["valid"], True)
            # Within the cooldown no request tries Redis again, however long the requests took.
            self.assertEqual(trips[0], 0, "requests tried the stopped Redis while the breaker was open")
            health = self.request("get", "/api/health")
        self.assertEqual(health.status_code, 200)
        self.assertEqual(health.json(), {"status": "degraded", "database": "up", "cache": "down"})
        outage_warnings = [line for line in logs.output if "is unavailable" in line]
        self.assertEqual(len(outage_warnings), 1, logs.output)

        self.server.start()
        self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], False, "still within the cooldown")
        self.clock.advance(settings.CACHE_BREAKER_COOLDOWN + 0.01)  # past the cooldown
        with self.assertLogs("techbirdsfly.cache", "WARNING") as logs:
            self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], False)
        self.assertTrue(any("reachable again" in line for line in logs.output))
        self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], True)
        self.assertEqual(self.api.get("/api/health").json()["status"], "ok")

    def test_a_paused_redis_costs_at_most_the_bound(self):
        self.api.get("/api/auth/me")
        self.server.pause()  # SIGSTOP: connections hang rather than fail
        try:
            for _ in range(3):
                response = self.request("get", "/api/auth/me")
                self.assertEqual(response.status_code, 200)
                self.assertIs(response.json()["fromCache"], False)
        finally:
            self.server.resume()
        self.clock.advance(settings.CACHE_BREAKER_COOLDOWN + 0.01)  # past the cooldown
        self.api.get("/api/auth/me")
        self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], True)
