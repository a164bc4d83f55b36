"""Every warm cached read, token validation included, costs one Redis round trip and no SQL."""

from __future__ import annotations

import redis

from auth_app.services import token_pair_issue
from auth_app.tests.factories import make_user
from billing_app.models import Account
from image_app.models import Image
from techbirdsfly.cache import reset_breakers
from techbirdsfly.testing import CacheTestCase, CommitAPIClient, count_round_trips, test_redis


class OneRoundTripTests(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.user = make_user(email="trips@example.com")
        self.staff = make_user(email="staff-trips@example.com", staff=True)
        self.account = Account.objects.create(owner=self.user, name="Trips", plan="pro")
        self.image = Image.objects.create(owner=self.user, prompt="trips", width=64, height=64)
        self.token = token_pair_issue(user=self.user).access_token
        self.staff_token = token_pair_issue(user=self.staff).access_token

    def reads(self) -> dict[str, tuple[str, str, str]]:
        return {
            "validate-token": ("post", "/api/auth/validate-token", self.token),
            "me": ("get", "/api/auth/me", self.token),
            "summary": ("get", f"/api/billing/summary/{self.account.pk}", self.token),
            "usage": ("get", f"/api/billing/usage/{self.account.pk}", self.token),
            "invoices": ("get", f"/api/billing/invoices/{self.account.pk}", self.token),
            "image": ("get", f"/api/images/{self.image.pk}", self.token),
            "preferences": ("get", f"/api/users/{self.user.pk}/preferences", self.token),
            "dashboard": ("get", "/api/admin/analytics/dashboard", self.staff_token),
        }

    def test_a_warm_read_is_one_round_trip_and_no_sql(self):
        for name, (method, path, token) in self.reads().items():
            with self.subTest(name):
                client = self.api.bearer(token)
                getattr(client, method)(path)  # cold: fills
                getattr(client, method)(path)
                with self.assertNumQueries(0), count_round_trips() as trips:
                    answer = getattr(client, method)(path)
                self.assertEqual(answer.status_code, 200, answer.content)
                self.assertIs(answer.json()["fromCache"], True)
                self.assertEqual(trips[0], 1)

    def test_a_cold_read_still_answers_from_the_database(self):
        # The read-ahead found nothing: the token and the data are computed, then cached.
        answer = self.api.bearer(self.token).get("/api/auth/me")
        self.assertEqual((answer.status_code, answer.json()["fromCache"]), (200, False))
        self.assertEqual(answer.json()["data"]["email"], "trips@example.com")
        self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], True)

    def test_another_users_profile_is_never_read_ahead_for_me(self):
        # The profile read ahead is the token's user's, whatever the cache holds for others.
        other = make_user(email="other-trips@example.com")
        other_token = token_pair_issue(user=other).access_token
        for token in (self.token, other_token, self.token, other_token):
            me = self.api.bearer(token).get("/api/auth/me").json()["data"]
            self.assertEqual(me["email"], "trips@example.com" if token == self.token else "other-trips@example.com")


class SentEarlyTests(CacheTestCase):
    """RequestCacheMiddleware sends a cached GET's read as the request arrives; the authentication reads it."""

    def setUp(self) -> None:
        super().setUp()
        self.user = make_user(email="early@example.com")
        self.account = Account.objects.create(owner=self.user, name="Early", plan="pro")
        self.token = token_pair_issue(user=self.user).access_token
        self.summary = f"/api/billing/summary/{self.account.pk}"
        self.client_ = self.api.bearer(self.token)
        for _ in range(2):  # cold, then warm
            self.client_.get(self.summary)
            self.client_.get("/api/auth/me")

    def pools(self) -> list:
        from django.core.cache import caches

        return [caches[app].client.get_client(write=False).connection_pool for app in ("auth", "billing")]

    def assert_pools_idle_and_clean(self) -> None:
        """Every connection is back in its pool, with no answer left unread on it."""
        for pool in self.pools():
            self.assertEqual(pool._in_use_connections, set())
            for connection in pool._available_connections:
                try:
                    unread = connection._sock is not None and connection.can_read(timeout=0.05)
                except redis.ConnectionError:
                    unread = False  # closed by a server an earlier test stopped: nothing to read
                self.assertFalse(unread)

    def test_the_answer_arrives_while_the_request_is_prepared(self):
        # When the authentication asks, the command has been sent and Redis has answered: the
        # answer is waiting on the socket, read without a round trip of its own.
        from techbirdsfly.cache.readahead import RequestRead

        seen: list[bool] = []
        original = RequestRead.receive

        def receive(read: RequestRead) -> None:
            if read.sent is not None:
                seen.append(read.sent.connection.can_read(timeout=1))
            original(read)

        RequestRead.receive = receive
        try:
            with count_round_trips() as trips:
                answer = self.client_.get(self.summary)
        finally:
            RequestRead.receive = original
        self.assertEqual((answer.status_code, answer.json()["fromCache"]), (200, True))
        self.assertEqual((seen, trips[0]), ([True], 1))
        self.assert_pools_idle_and_clean()

    def test_an_answer_the_request_never_read_is_read_before_its_connection_is_reused(self):
        # 406 comes from DRF's content negotiation, before the authentication reads the answer.
        for _ in range(3):
            refused = self.client_.get(self.summary, HTTP_ACCEPT="application/xml")
            self.assertEqual(refused.status_code, 406)
            self.assert_pools_idle_and_clean()
        with count_round_trips() as trips:
            me = self.client_.get("/api/auth/me")
        self.assertEqual((me.json()["fromCache"], me.json()["data"]["email"]), (True, "early@example.com"))
        self.assertEqual(trips[0], 1)

    def test_an_answer_skipped_by_the_breaker_or_the_budget_does_not_hold_its_connection(self):
        # Between the send and the authentication, the breaker may open (another thread saw Redis
        # fail) or the request's budget run out: the answer is then never read, and its connection
        # must not stay out of the pool, nor go back to it with that answer unread.
        from techbirdsfly.cache import calls, scope
        from techbirdsfly.cache.readahead import RequestRead

        def open_breaker() -> None:
            calls.breaker_for("auth").failure(RuntimeError("a failure seen by another thread"))

        def spend_budget() -> None:
            scope.current().spent = 10.0

        original = RequestRead.receive
        for cut in (open_breaker, spend_budget):
            with self.subTest(cut.__name__):

                def receive(read: RequestRead, cut=cut) -> None:
                    if read.sent is not None:
                        cut()
                    original(read)

                RequestRead.receive = receive
                try:
                    answer = self.client_.get(self.summary)
                finally:
                    RequestRead.receive = original
                self.assertEqual((answer.status_code, answer.json()["fromCache"]), (200, False))
                self.assert_pools_idle_and_clean()
                reset_breakers()
                me = self.client_.get("/api/auth/me")
                self.assertEqual((me.json()["fromCache"], me.json()["data"]["email"]), (True, "early@example.com"))

    def test_redis_forgetting_its_scripts_costs_a_hit_nothing(self):
        self.redis.script_flush()
        me = self.client_.get("/api/auth/me")
        self.assertEqual((me.status_code, me.json()["fromCache"]), (200, True))
        with count_round_trips() as trips:
            self.assertIs(self.client_.get("/api/auth/me").json()["fromCache"], True)
        self.assertEqual(trips[0], 1)
        self.assert_pools_idle_and_clean()

    def test_redis_down_as_the_request_arrives_answers_from_the_database(self):

        test_redis().stop()
        for path in (self.summary, "/api/auth/me"):
            answer = self.client_.get(path)
            self.assertEqual((answer.status_code, answer.json()["fromCache"]), (200, False), path)

    def test_only_views_with_cache_entries_are_read_early(self):
        from billing_app.views import SummaryView
        from techbirdsfly.cache.middleware import view_entries

        found = view_entries("techbirdsfly.urls", self.summary)
        self.assertEqual(found, (SummaryView, {"account_id": self.account.pk}))
        self.assertIsNone(view_entries("techbirdsfly.urls", "/api/billing/summary/abc"))  # no such URL
        self.assertIsNone(view_entries("techbirdsfly.urls", "/api/auth/login"))  # nothing cached

    def test_without_the_middleware_the_checks_say_so_and_requests_still_answer(self):
        from django.conf import settings
        from django.core import checks

        middleware = [name for name in settings.MIDDLEWARE if not name.endswith(".RequestCacheMiddleware")]
        self.assertEqual(len(middleware), len(settings.MIDDLEWARE) - 1)
        self.assertEqual(checks.run_checks(tags=None, include_deployment_checks=False), [])
        with self.settings(MIDDLEWARE=middleware):
            self.assertEqual([e.id for e in checks.run_checks()], ["techbirdsfly.E001"])
            client = CommitAPIClient(self).bearer(self.token)  # a client loads the middleware once
            for path in (self.summary, "/api/auth/me"):
                with count_round_trips() as trips:
                    answer = client.get(path)
                # No scope, so no read-ahead: the token's record and the view's entry are each read.
                self.assertEqual((answer.json()["fromCache"], trips[0]), (True, 2), path)
