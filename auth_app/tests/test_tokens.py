"""Tokens carry a MAC: one that was never issued is refused from CPU alone, before Redis and SQL."""

from __future__ import annotations

import importlib
import secrets
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from auth_app import migrations, tokens
from auth_app.models import AuthToken, LegacyTokenBound
from auth_app.services import token_pair_issue
from auth_app.tests.factories import make_token, make_user
from auth_app.tests.test_authentication import CommandCounter
from auth_app.tokens import legacy_bound_forget, legacy_tokens_live, new_token, token_checked, token_hash
from billing_app.tests.factories import make_account
from techbirdsfly.testing import CacheTestCase

OLD_KEY = "an-earlier-secret-key-that-is-still-a-fallback"
NEW_KEY = "the-secret-key-now-in-use-after-the-rotation"


def legacy_pair(user, *, access_ttl: timedelta = timedelta(hours=1)) -> tuple[str, str]:
    """An access and a refresh token as they were issued before tokens carried a MAC."""
    now, family, pair = timezone.now(), secrets.token_hex(16), secrets.token_hex(16)
    access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    issued = ((AuthToken.Kind.ACCESS, access, access_ttl), (AuthToken.Kind.REFRESH, refresh, 30 * access_ttl))
    for kind, raw, ttl in issued:
        AuthToken.objects.create(
            kind=kind, token_hash=token_hash(raw), user=user, family=family, pair=pair, expires_at=now + ttl
        )
    return access, refresh


def other_mac(token: str) -> str:
    """``token`` with one character of its MAC changed."""
    last = "A" if token[-1] != "A" else "B"
    return token[:-1] + last


class TokenFormatTests(CacheTestCase):
    def test_a_new_token_carries_a_mac_that_verifies_and_any_change_breaks_it(self):
        token = new_token()
        self.assertTrue(token.startswith("tbf_"))
        self.assertTrue(token_checked(token))
        for i in range(len("tbf_"), len(token)):
            changed = token[:i] + ("x" if token[i] != "x" else "y") + token[i + 1 :]
            self.assertFalse(token_checked(changed), i)
        self.assertFalse(token_checked(token[:-1]))
        self.assertFalse(token_checked(token + "A"))

    def test_a_token_macd_under_another_key_fails(self):
        with override_settings(SECRET_KEY=OLD_KEY):
            token = new_token()
        with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
            self.assertFalse(token_checked(token))
        with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=["another", OLD_KEY]):
            self.assertTrue(token_checked(token))


class MadeUpTokenCostTests(CacheTestCase):
    """Every door a token comes in by refuses one that was never issued without a Redis command or a query."""

    def setUp(self):
        super().setUp()
        legacy_bound_forget()
        self.addCleanup(legacy_bound_forget)
        self.user = make_user(email="owner@example.com")
        self.account = make_account(self.user)
        self.real = token_pair_issue(user=self.user)

    def made_up(self) -> dict[str, str]:
        with override_settings(SECRET_KEY=OLD_KEY):
            other_key = new_token()
        return {
            "new shape, bad MAC": other_mac(new_token()),
            "a real token, MAC changed": other_mac(self.real.access_token),
            "new shape, MACed under a key not configured": other_key,
            "old shape": secrets.token_urlsafe(32),
            "garbage": "garbage",
            "long garbage": "x" * 200,
        }

    def requests(self, token: str) -> dict[str, object]:
        api = self.api
        return {
            "GET /me": lambda: api.bearer(token).get("/api/auth/me"),
            "GET summary": lambda: api.bearer(token).get(f"/api/billing/summary/{self.account.pk}"),
            "validate-token, header": lambda: api.bearer(token).post("/api/auth/validate-token"),
            "validate-token, body": lambda: api.bearer(None).post("/api/auth/validate-token", {"token": token}),
            "refresh": lambda: api.bearer(None).post("/api/auth/refresh", {"refreshToken": token}),
            "logout": lambda: api.bearer(token).post("/api/auth/logout"),
        }

    def assert_refused_without_io(self) -> None:
        legacy_tokens_live()  # the bound is read once per process, before the first request counted here
        for shape, token in self.made_up().items():
            for door, send in self.requests(token).items():
                with self.subTest(shape=shape, door=door):
                    with CaptureQueriesContext(connection) as queries, CommandCounter(self.redis) as redis_calls:
                        response = send()
                    self.assertEqual(response.status_code, 401)
                    self.assertEqual([q["sql"] for q in queries.captured_queries], [])
                    self.assertEqual(redis_calls.delta, {})

    def test_on_a_fresh_database_a_made_up_token_of_any_shape_costs_no_io(self):
        self.assertFalse(LegacyTokenBound.objects.exists())
        self.assert_refused_without_io()

    def test_after_the_legacy_bound_a_made_up_token_of_any_shape_costs_no_io(self):
        LegacyTokenBound.objects.create(live_until=timezone.now() - timedelta(seconds=1))
        self.assert_refused_without_io()

    def test_the_real_tokens_still_work_through_every_door(self):
        access, refresh = self.real.access_token, self.real.refresh_token
        self.assertEqual(self.api.bearer(access).get("/api/auth/me").status_code, 200)
        self.assertEqual(self.api.bearer(access).get(f"/api/billing/summary/{self.account.pk}").status_code, 200)
        self.assertEqual(self.api.bearer(None).post("/api/auth/validate-token", {"token": access}).status_code, 200)
        self.assertEqual(self.api.bearer(access).post("/api/auth/logout").status_code, 200)
        self.assertEqual(self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": refresh}).status_code, 401)
        fresh = token_pair_issue(user=self.user)
        renewed = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": fresh.refresh_token})
        self.assertEqual(renewed.status_code, 200)
        self.assertTrue(token_checked(renewed.json()["accessToken"]))


class LegacyTokenTests(CacheTestCase):
    """Tokens issued before tokens carried a MAC work until the last of them expires, and no longer."""

    def setUp(self):
        super().setUp()
        legacy_bound_forget()
        self.addCleanup(legacy_bound_forget)
        self.user = make_user(email="early@example.com")

    def record_bound(self) -> None:
        (path,) = Path(migrations.__file__).parent.glob("*_legacy_token_bound.py")
        migration = importlib.import_module(f"auth_app.migrations.{path.stem}")
        migration.record_bound(apps, None)
        legacy_bound_forget()

    def test_the_migration_bounds_the_tokens_issued_before_it_and_they_work_until_then(self):
        access, refresh = legacy_pair(self.user)
        self.record_bound()
        latest = AuthToken.objects.order_by("-expires_at").values_list("expires_at", flat=True).first()
        self.assertEqual(list(LegacyTokenBound.objects.values_list("live_until", flat=True)), [latest])

        self.assertEqual(self.api.bearer(access).get("/api/auth/me").status_code, 200)
        validated = self.api.bearer(None).post("/api/auth/validate-token", {"token": access})
        self.assertEqual(validated.json()["userId"], self.user.pk)
        renewed = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": refresh})
        self.assertEqual(renewed.status_code, 200)
        self.assertTrue(renewed.json()["accessToken"].startswith("tbf_"))

    def test_a_database_whose_tokens_have_all_expired_gets_no_bound(self):
        legacy_pair(self.user, access_ttl=timedelta(seconds=-60))
        self.record_bound()
        self.assertFalse(LegacyTokenBound.objects.exists())

    def test_the_bound_is_read_once_per_process_and_ends_the_lookups_of_the_old_shape(self):
        access, _ = legacy_pair(self.user)
        self.record_bound()
        with self.assertNumQueries(1):
            self.assertTrue(token_checked(access))
        with self.assertNumQueries(0):
            self.assertTrue(token_checked(secrets.token_urlsafe(32)))

        LegacyTokenBound.objects.update(live_until=timezone.now() - timedelta(seconds=1))
        legacy_bound_forget()
        legacy_tokens_live()
        with CaptureQueriesContext(connection) as queries, CommandCounter(self.redis) as redis_calls:
            response = self.api.bearer(access).get("/api/auth/me")
        self.assertEqual(response.status_code, 401)
        self.assertEqual((len(queries), redis_calls.delta), (0, {}))


class FallbackKeyTests(CacheTestCase):
    def test_a_token_issued_under_a_key_now_in_the_fallbacks_still_works(self):
        user = make_user(email="rotated@example.com")
        with override_settings(SECRET_KEY=OLD_KEY):
            pair = token_pair_issue(user=user)
        with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
            self.assertEqual(self.api.bearer(pair.access_token).get("/api/auth/me").status_code, 200)
            renewed = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": pair.refresh_token})
            self.assertEqual(renewed.status_code, 200)
            self.assertTrue(token_checked(renewed.json()["accessToken"]))
        with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
            self.assertEqual(self.api.bearer(pair.access_token).get("/api/auth/me").status_code, 401)


class OneCheckPerRequestTests(CacheTestCase):
    def test_a_cached_get_checks_its_token_once_though_the_middleware_and_the_authentication_both_need_it(self):
        token = make_token(make_user(email="once@example.com"))
        with mock.patch.object(tokens, "_mac", wraps=tokens._mac) as mac:
            self.assertEqual(self.api.bearer(token).get("/api/auth/me").status_code, 200)
        self.assertEqual(mac.call_count, 1)
        with mock.patch.object(tokens, "_mac", wraps=tokens._mac) as mac:
            self.assertEqual(self.api.bearer(token[:-1] + "!").get("/api/auth/me").status_code, 401)
        self.assertEqual(mac.call_count, 1 + len(settings.SECRET_KEY_FALLBACKS))  # each key tried, once

    def test_a_verified_token_is_remembered_and_a_made_up_one_never_is(self):
        token = make_token(make_user(email="again@example.com"))
        self.assertEqual(self.api.bearer(token).get("/api/auth/me").status_code, 200)
        made_up = token[:-1] + ("A" if token[-1] != "A" else "B")
        with mock.patch.object(tokens, "_mac", wraps=tokens._mac) as mac:
            self.assertEqual(self.api.bearer(token).get("/api/auth/me").status_code, 200)
            self.assertEqual(mac.call_count, 0)  # its hash is remembered as verified
            for _ in range(2):
                self.assertEqual(self.api.bearer(made_up).get("/api/auth/me").status_code, 401)
            self.assertEqual(mac.call_count, 2 * (1 + len(settings.SECRET_KEY_FALLBACKS)))

    def test_what_is_remembered_goes_with_the_keys_it_was_verified_with(self):
        with override_settings(SECRET_KEY=OLD_KEY):
            token = new_token()
        with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
            self.assertIsNotNone(tokens.checked_hash(token))
            self.assertIsNotNone(tokens.checked_hash(token))  # remembered
        with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):  # the old key retired
            self.assertIsNone(tokens.checked_hash(token))
            self.assertFalse(token_checked(token))
