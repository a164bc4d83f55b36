"""Revocation wins: across server processes, and over a Redis that comes back with old data."""

from __future__ import annotations

import time

from django.test import tag

from auth_app.models import AuthToken
from auth_app.tests.factories import PASSWORD, make_user
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.models import CacheJournal
from techbirdsfly.testing import CacheTestCase, GunicornServer, LiveTestCase, http_json, server_env, test_redis


class RevocationInProcessTests(CacheTestCase):
    def test_dead_right_after_logout_although_the_record_is_still_in_redis(self):
        make_user(email="x@example.com")
        token = self.api.post("/api/auth/login", {"email": "x@example.com", "password": PASSWORD}).json()
        self.api.bearer(token["accessToken"])
        self.assertEqual(self.api.post("/api/auth/validate-token").json()["fromCache"], False)
        self.assertEqual(self.api.post("/api/auth/validate-token").json()["fromCache"], True)
        records = [k for k in self.redis_keys() if k.startswith("AuthService_auth:token:") and not k.endswith(":gen")]
        self.api.post("/api/auth/logout")
        self.assertEqual(self.redis.exists(*records), 1)  # the record is still there...
        self.assertEqual(self.api.post("/api/auth/validate-token").status_code, 401)  # ...and worthless

    def test_a_logout_during_an_outage_wins_over_a_restart_from_the_old_dump(self):
        make_user(email="x@example.com")
        access = self.api.post("/api/auth/login", {"email": "x@example.com", "password": PASSWORD}).json()
        self.api.bearer(access["accessToken"])
        self.api.post("/api/auth/validate-token")
        self.assertEqual(self.api.post("/api/auth/validate-token").json()["fromCache"], True)
        server = test_redis()
        server.stop(save=True)  # SHUTDOWN SAVE: the dump holds the live record
        self.assertEqual(self.api.post("/api/auth/logout").status_code, 200)
        self.assertTrue(CacheJournal.objects.filter(app="auth", scope__startswith="auth:token:").exists())
        server.start()  # restarted from the same dump
        reset_breakers()
        self.assertTrue(any(k.startswith("AuthService_auth:token:") for k in self.redis_keys()))
        self.assertEqual(self.api.post("/api/auth/validate-token").status_code, 401)
        self.assertEqual(self.api.post("/api/auth/validate-token").status_code, 401)


@tag("live")
class RevocationAcrossWorkersTests(LiveTestCase):
    """Two gunicorn workers, each with its own connections and breaker, and the test process."""

    def setUp(self):
        super().setUp()
        self.server = GunicornServer(env=server_env(CACHE_BREAKER_COOLDOWN="0.2"), workers=2).start()
        self.addCleanup(self.server.stop)
        self.base = self.server.url

    def login(self) -> dict:
        # Registered through the server, so the password is hashed with its (production) hashers.
        status, _ = http_json(
            self.base, "POST", "/api/auth/register", body={"email": "w@example.com", "password": PASSWORD}
        )
        self.assertEqual(status, 201)
        status, body = http_json(
            self.base, "POST", "/api/auth/login", body={"email": "w@example.com", "password": PASSWORD}
        )
        self.assertEqual(status, 200, body)
        return body

    def validate_many(self, token: str, n: int = 20) -> list[tuple[int, dict]]:
        return [http_json(self.base, "POST", "/api/auth/validate-token", token=token) for _ in range(n)]

    def test_logout_is_seen_by_every_worker_at_once(self):
        pair = self.login()
        answers = self.validate_many(pair["accessToken"])
        self.assertTrue(all(status == 200 for status, _ in answers))
        self.assertTrue(any(body["fromCache"] for _, body in answers))
        self.assertEqual(http_json(self.base, "POST", "/api/auth/logout", token=pair["accessToken"])[0], 200)
        self.assertEqual({status for status, _ in self.validate_many(pair["accessToken"])}, {401})

    def test_logout_during_an_outage_wins_on_every_worker_after_a_restart_from_the_dump(self):
        pair = self.login()
        self.assertTrue(any(body["fromCache"] for _, body in self.validate_many(pair["accessToken"])))
        self.redis_server.stop(save=True)
        status, _ = http_json(self.base, "POST", "/api/auth/logout", token=pair["accessToken"])
        self.assertEqual(status, 200)
        self.assertTrue(CacheJournal.objects.filter(app="auth", scope__startswith="auth:token:").exists())
        self.assertTrue(AuthToken.objects.filter(revoked_at__isnull=False).exists())
        self.redis_server.start()
        self.assertTrue(any(k.startswith(b"AuthService_auth:token:") for k in self.redis_server.client().scan_iter()))
        time.sleep(0.3)  # the workers' breaker cooldown
        self.assertEqual({status for status, _ in self.validate_many(pair["accessToken"], 30)}, {401})

    def test_login_throttle_holds_across_workers(self):
        statuses = [
            http_json(self.base, "POST", "/api/auth/login", body={"email": "z@example.com", "password": "bad"})[0]
            for _ in range(12)
        ]
        self.assertEqual(statuses, [401] * 10 + [429] * 2)
