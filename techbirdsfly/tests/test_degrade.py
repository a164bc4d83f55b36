"""Degrade, never fail: the API with redis-server really stopped, paused, and back again."""

from __future__ import annotations

import time

from django.test import override_settings

from auth_app.models import User
from auth_app.services import token_pair_issue
from techbirdsfly.testing import CacheTestCase, test_redis

BOUND = 0.5  # seconds a request may wait on the cache in total


@override_settings(CACHE_BREAKER_COOLDOWN=0.3)
class RedisOutageTests(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.server = test_redis()
        user = User.objects.create_user("deg@example.com", "a long enough password", name="Deg")
        self.token = token_pair_issue(user=user).access_token
        self.api.bearer(self.token)

    def timed(self, method, path):
        began = time.monotonic()
        response = getattr(self.api, method)(path)
        return response, time.monotonic() - began

    def test_endpoints_answer_from_the_database_while_redis_is_stopped(self):
        self.assertTrue(self.api.get("/api/auth/me").json()["fromCache"] is False)
        self.assertTrue(self.api.get("/api/auth/me").json()["fromCache"])
        self.server.stop()
        with self.assertLogs("techbirdsfly.cache", "WARNING") as logs:
            for _ in range(5):
                response, elapsed = self.timed("get", "/api/auth/me")
                self.assertEqual(response.status_code, 200)
                self.assertIs(response.json()["fromCache"], False)
                self.assertLess(elapsed, BOUND)
                response, elapsed = self.timed("post", "/api/auth/validate-token")
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.json()["valid"], True)
                self.assertLess(elapsed, BOUND)
            health, elapsed = self.timed("get", "/api/health")
        self.assertEqual(health.status_code, 200)
        self.assertEqual(health.json(), {"status": "degraded", "database": "up", "cache": "down"})
        self.assertLess(elapsed, BOUND)
        outage_warnings = [line for line in logs.output if "is unavailable" in line]
        self.assertEqual(len(outage_warnings), 1, logs.output)

        self.server.start()
        time.sleep(0.35)  # the breaker's cooldown
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
                response, elapsed = self.timed("get", "/api/auth/me")
                self.assertEqual(response.status_code, 200)
                self.assertIs(response.json()["fromCache"], False)
                self.assertLess(elapsed, BOUND)
        finally:
            self.server.resume()
        time.sleep(0.35)
        self.api.get("/api/auth/me")
        self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], True)
