"""The Bearer authentication class every app uses: the cost of a hit and of a miss."""

from __future__ import annotations

from auth_app.models import User
from auth_app.selectors import token_validate
from auth_app.tests.factories import PASSWORD, make_token, make_user
from auth_app.token_user import TokenUser
from techbirdsfly.testing import CacheTestCase


class CommandCounter:
    """The commands the private Redis executes inside the block, leaving out our own INFO calls."""

    def __init__(self, redis):
        self.redis = redis

    def calls(self) -> dict[str, int]:
        stats = self.redis.info("commandstats")
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items() if k != "cmdstat_info"}

    def __enter__(self):
        self.before = self.calls()
        return self

    def __exit__(self, *exc):
        after = self.calls()
        self.delta = {k: n - self.before.get(k, 0) for k, n in after.items() if n != self.before.get(k, 0)}


class TokenLookupCostTests(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.user = make_user(email="cost@example.com")
        self.token = make_token(self.user)

    def test_a_hit_costs_no_sql_and_one_redis_round_trip(self):
        self.assertIs(token_validate(raw_token=self.token).from_cache, False)
        with self.assertNumQueries(0), CommandCounter(self.redis) as redis_calls:
            record, from_cache = token_validate(raw_token=self.token)
        self.assertIs(from_cache, True)
        self.assertEqual(record["userId"], self.user.pk)
        self.assertEqual(redis_calls.delta, {"mget": 1})  # one round trip: the record and its generation

    def test_a_miss_reads_the_database_once_and_fills_the_cache(self):
        token_validate(raw_token=make_token(self.user))  # opens the connection (and syncs) first
        with self.assertNumQueries(1):
            _, from_cache = token_validate(raw_token=self.token)
        self.assertIs(from_cache, False)
        self.assertIs(token_validate(raw_token=self.token).from_cache, True)

    def test_an_authenticated_request_on_warm_caches_makes_no_sql_query(self):
        self.api.bearer(self.token).get("/api/auth/me")
        with self.assertNumQueries(0):
            response = self.api.get("/api/auth/me")
        self.assertEqual(response.json()["fromCache"], True)

    def test_the_record_ttl_is_at_most_the_tokens_remaining_life(self):
        token_validate(raw_token=self.token)
        (key,) = [k for k in self.redis_keys() if k.startswith("AuthService_auth:token:") and not k.endswith(":gen")]
        self.assertTrue(3590 < self.redis.ttl(key) <= 3600)

    def test_malformed_headers_are_401(self):
        for header in ("Bearer", "Bearer a b", "Bearer \u00e9t\u00e9"):
            response = self.api.get("/api/auth/me", HTTP_AUTHORIZATION=header)
            self.assertEqual(response.status_code, 401, header)


class RequestUserTests(CacheTestCase):
    """``request.user`` is what the token's record says, and it cannot write a user row."""

    def setUp(self):
        super().setUp()
        self.user = make_user(email="stateless@example.com", name="Ada", staff=True)
        self.token = make_token(self.user)

    def request_user(self):
        response = self.api.bearer(self.token).get("/api/auth/me")
        self.assertEqual(response.status_code, 200)
        return response.wsgi_request.user

    def test_it_carries_the_records_fields_on_a_miss_and_on_a_warm_hit(self):
        for attempt in ("a miss", "a warm hit"):
            user = self.request_user()
            self.assertIsInstance(user, TokenUser, attempt)
            self.assertEqual(
                (user.pk, user.id, user.email, user.name), (self.user.pk,) * 2 + ("stateless@example.com", "Ada")
            )
            self.assertEqual(
                (user.is_staff, user.is_active, user.is_authenticated, user.is_anonymous), (True, True, True, False)
            )
            self.assertEqual(user, self.user, attempt)
            self.assertEqual(hash(user), hash(self.user))
            self.assertFalse(user.has_perm("auth_app.change_user"))

    def test_it_cannot_be_saved_deleted_or_given_a_password(self):
        self.request_user()
        user = self.request_user()  # a warm hit: built from Redis alone
        before = User.objects.values("password", "date_joined", "email").get(pk=self.user.pk)
        for change in (
            user.save,
            user.delete,
            lambda: user.set_password("another password 123"),
            user.set_unusable_password,
            lambda: user.check_password(PASSWORD),
            user.refresh_from_db,
        ):
            with self.assertRaises(NotImplementedError):
                change()
        for missing in ("password", "date_joined", "last_login"):  # not in the record: never a made-up value
            with self.assertRaises(AttributeError):
                getattr(user, missing)
        self.assertEqual(User.objects.values("password", "date_joined", "email").get(pk=self.user.pk), before)
        self.assertTrue(User.objects.get(pk=self.user.pk).check_password(PASSWORD))

        # The views that change a user load it, so they work from a warm hit.
        preferences = self.api.patch(f"/api/users/{self.user.pk}/preferences", {"theme": "dark"}, format="json")
        self.assertEqual((preferences.status_code, preferences.json()["data"]["theme"]), (200, "dark"))
        new = "a brand new passphrase 42"
        changed = self.api.post("/api/auth/password", {"currentPassword": PASSWORD, "newPassword": new})
        self.assertEqual(changed.status_code, 200, changed.content)
        self.assertTrue(User.objects.get(pk=self.user.pk).check_password(new))
        self.assertEqual(User.objects.get(pk=self.user.pk).date_joined, before["date_joined"])
