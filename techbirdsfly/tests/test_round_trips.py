"""Every warm cached read, token validation included, costs one Redis round trip and no SQL (issue 15)."""

from __future__ import annotations

from auth_app.services import token_pair_issue
from auth_app.tests.factories import make_user
from bench.probes import count_round_trips
from billing_app.models import Account
from image_app.models import Image
from techbirdsfly.testing import CacheTestCase


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
