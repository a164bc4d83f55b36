"""Login throttling: 10 failures per email within 60 s, then 429 — in Redis, and without it."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import override_settings
from django.utils import timezone

from auth_app.models import LoginFailure
from auth_app.tests.factories import PASSWORD, make_user
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.testing import CacheTestCase, test_redis

HASHED = []


class CountingHasher(MD5PasswordHasher):
    algorithm = "counting_md5"

    def encode(self, password, salt):
        HASHED.append(password)
        return super().encode(password, salt).replace("md5$", "counting_md5$", 1)

    def verify(self, password, encoded):
        HASHED.append(password)
        return super().verify(password, encoded.replace("counting_md5$", "md5$", 1))


class LoginThrottleTests(CacheTestCase):
    def setUp(self):
        super().setUp()
        make_user(email="t@example.com")

    def fail(self, email="t@example.com"):
        return self.api.post("/api/auth/login", {"email": email, "password": "wrong"})

    def test_eleventh_try_within_the_window_is_429_even_with_the_right_password(self):
        for _ in range(10):
            self.assertEqual(self.fail().status_code, 401)
        response = self.api.post("/api/auth/login", {"email": "T@Example.com", "password": PASSWORD})
        self.assertEqual(response.status_code, 429)
        self.assertTrue(1 <= int(response["Retry-After"]) <= 60)
        self.assertIn("detail", response.json())
        # Another email is not affected.
        make_user(email="u@example.com")
        ok = self.api.post("/api/auth/login", {"email": "u@example.com", "password": PASSWORD})
        self.assertEqual(ok.status_code, 200)

    def test_unknown_emails_are_throttled_alike(self):
        for _ in range(10):
            self.assertEqual(self.fail("ghost@example.com").status_code, 401)
        self.assertEqual(self.fail("ghost@example.com").status_code, 429)

    def test_the_window_passes(self):
        for _ in range(10):
            self.fail()
        self.assertEqual(self.fail().status_code, 429)
        for key in self.redis.scan_iter("AuthService_auth:login-failures:*"):
            self.assertTrue(0 < self.redis.ttl(key) <= 60)
            self.redis.delete(key)  # what expiry does after 60 s
        ok = self.api.post("/api/auth/login", {"email": "t@example.com", "password": PASSWORD})
        self.assertEqual(ok.status_code, 200)

    def test_counter_keys_hold_no_email_and_no_address(self):
        self.fail()
        keys = self.redis_keys()
        self.assertEqual(len(keys), 2)  # the email's counter and the client address's
        for key in keys:
            self.assertNotIn("t@example.com", key)
            self.assertNotIn("127.0.0.1", key)

    @override_settings(PASSWORD_HASHERS=["auth_app.tests.test_throttle.CountingHasher"])
    def test_unknown_email_costs_a_password_hash_like_a_wrong_password(self):
        make_user(email="h@example.com")
        HASHED.clear()
        self.fail("h@example.com")
        wrong = len(HASHED)
        HASHED.clear()
        self.fail("nobody@example.com")
        self.assertEqual(wrong, 1)
        self.assertEqual(len(HASHED), wrong)


@override_settings(CACHE_BREAKER_COOLDOWN=60)
class ThrottleWithoutRedisTests(CacheTestCase):
    def test_failures_are_counted_in_the_database_while_redis_is_down(self):
        make_user(email="t@example.com")
        for _ in range(4):  # counted in Redis
            self.api.post("/api/auth/login", {"email": "t@example.com", "password": "wrong"})
        test_redis().stop(save=True)
        for _ in range(6):  # counted in the database
            response = self.api.post("/api/auth/login", {"email": "t@example.com", "password": "wrong"})
            self.assertEqual(response.status_code, 401)
        self.assertEqual(LoginFailure.objects.filter(subject=LoginFailure.Subject.EMAIL).count(), 6)
        test_redis().start()  # the four are still there (saved), and so are the six
        reset_breakers()
        response = self.api.post("/api/auth/login", {"email": "t@example.com", "password": PASSWORD})
        self.assertEqual(response.status_code, 429)

    def test_redis_down_throttles_from_the_database_alone(self):
        make_user(email="t@example.com")
        test_redis().stop()
        for _ in range(10):
            self.api.post("/api/auth/login", {"email": "t@example.com", "password": "wrong"})
        response = self.api.post("/api/auth/login", {"email": "t@example.com", "password": PASSWORD})
        self.assertEqual(response.status_code, 429)
        LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=61))
        response = self.api.post("/api/auth/login", {"email": "t@example.com", "password": PASSWORD})
        self.assertEqual(response.status_code, 200)


class TamperedCounterTests(CacheTestCase):
    """A Redis writer's values in the counters are never trusted: no 500, no lifted throttle."""

    def setUp(self):
        super().setUp()
        make_user(email="t@example.com")

    def login(self, password="wrong"):  # noqa: S107
        return self.api.post("/api/auth/login", {"email": "t@example.com", "password": password})

    def counter_keys(self) -> list[bytes]:
        return list(self.redis.scan_iter("AuthService_auth:*-failures:*"))

    def tamper(self, value, *, ttl: int | None = 60) -> None:
        for key in self.counter_keys():
            self.redis.set(key, value)
            if ttl is not None:
                self.redis.expire(key, ttl)

    def test_a_negative_counter_does_not_lift_the_throttle(self):
        self.login()
        self.tamper(-(10**9))
        statuses = [self.login().status_code for _ in range(40)]
        self.assertEqual(statuses[:10], [401] * 10)
        self.assertEqual(set(statuses[10:]), {429})
        self.assertEqual(self.login(PASSWORD).status_code, 429)

    def test_a_negative_counter_set_during_the_window_counts_from_zero_again(self):
        for _ in range(5):
            self.login()
        self.tamper(-(10**9))  # worth what deleting the counters is worth, not 10^9 free tries
        statuses = [self.login().status_code for _ in range(12)]
        self.assertEqual(statuses, [401] * 10 + [429] * 2)

    def test_a_non_integer_counter_answers_no_500_and_lets_the_right_password_in(self):
        for value in ("abc", "1.5", "9" * 40):
            with self.subTest(value=value):
                self.redis.flushall()
                self.login()
                self.tamper(value)
                self.assertEqual(self.login().status_code, 401)
                self.assertEqual(self.login(PASSWORD).status_code, 200)

    def test_a_counter_without_expiry_is_dropped_not_kept_forever(self):
        for _ in range(10):
            self.login()
        for key in self.counter_keys():
            self.redis.persist(key)  # a lockout that would never end
        self.assertEqual(self.login(PASSWORD).status_code, 200)
        for key in self.counter_keys():
            self.assertTrue(0 < self.redis.ttl(key) <= 60)

    def test_a_tampered_counter_between_the_count_and_the_read_is_no_error(self):
        from auth_app import cache as auth_cache
        from techbirdsfly.cache import window_decrement, window_increment, window_read

        key = auth_cache.login_failures_key("0" * 64)
        self.assertEqual(window_increment(auth_cache.LOGIN_FAILURES, key), 1)
        full = next(iter(self.redis.scan_iter("AuthService_auth:login-failures:*")))
        for value in (b"abc", b"-5", b"1.5"):
            self.redis.set(full, value, ex=60)
            self.assertEqual(window_read(auth_cache.LOGIN_FAILURES, key)[0], 0)
            window_decrement(auth_cache.LOGIN_FAILURES, key)  # no error, and no change
            self.assertEqual(self.redis.get(full), value)
