"""A password set any way revokes every earlier token, and how passwords are hashed."""

from __future__ import annotations

import time
from io import StringIO
from unittest import mock

from django.contrib.auth.hashers import get_hasher, identify_hasher, make_password
from django.contrib.auth.management.commands import changepassword
from django.core.management import call_command
from django.test import override_settings

from auth_app.hashers import Argon2idPasswordHasher
from auth_app.models import AuthToken, User
from auth_app.tests.factories import PASSWORD, make_user
from auth_app.tokens import token_hash
from techbirdsfly import settings as project_settings
from techbirdsfly.testing import CacheTestCase

NEW_PASSWORD = "a brand new passphrase 42"
# What production runs (the test runner swaps in MD5 to keep the suite fast).
PRODUCTION_HASHERS = [
    "auth_app.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]


class PasswordSetTestCase(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.user = make_user(email="p@example.com", staff=True, is_superuser=True)
        # Two logins (two token families), each validated once so its record is cached in Redis.
        self.pairs = [self.login() for _ in range(2)]
        for pair in self.pairs:
            self.assert_access(pair["accessToken"], 200)
            self.assert_access(pair["accessToken"], 200)  # now from the cache

    def login(self, password: str = PASSWORD) -> dict:
        response = self.api.post("/api/auth/login", {"email": "p@example.com", "password": password})
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def assert_access(self, token: str, status: int) -> None:
        self.assertEqual(self.api.bearer(token).get("/api/auth/me").status_code, status)
        self.api.bearer(None)

    def assert_all_earlier_tokens_dead(self) -> None:
        for pair in self.pairs:
            self.assert_access(pair["accessToken"], 401)
            refreshed = self.api.post("/api/auth/refresh", {"refreshToken": pair["refreshToken"]})
            self.assertEqual(refreshed.status_code, 401, refreshed.content)
        earlier = [token_hash(raw) for pair in self.pairs for raw in (pair["accessToken"], pair["refreshToken"])]
        self.assertFalse(AuthToken.objects.filter(token_hash__in=earlier, revoked_at__isnull=True).exists())


class PasswordEndpointTests(PasswordSetTestCase):
    def change(self, current: str, new: str, token: str | None = None):
        self.api.bearer(token or self.pairs[0]["accessToken"])
        response = self.api.post("/api/auth/password", {"currentPassword": current, "newPassword": new})
        self.api.bearer(None)
        return response

    def test_a_change_answers_a_fresh_pair_and_kills_every_earlier_token(self):
        response = self.change(PASSWORD, NEW_PASSWORD)
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(set(body), {"accessToken", "refreshToken", "tokenType", "expiresIn"})
        self.assertEqual((body["tokenType"], body["expiresIn"]), ("Bearer", 3600))
        self.assert_all_earlier_tokens_dead()
        self.assert_access(body["accessToken"], 200)
        refreshed = self.api.post("/api/auth/refresh", {"refreshToken": body["refreshToken"]})
        self.assertEqual(refreshed.status_code, 200)
        self.login(NEW_PASSWORD)
        self.assertEqual(
            self.api.post("/api/auth/login", {"email": "p@example.com", "password": PASSWORD}).status_code, 401
        )

    def test_a_wrong_current_password_is_400_naming_it_and_counts_as_a_failed_login(self):
        response = self.change("not it", NEW_PASSWORD)
        self.assertEqual(response.status_code, 400)
        self.assertIn("currentPassword", response.json())
        for _ in range(9):  # nine more failures: ten in the window
            self.assertEqual(self.change("not it", NEW_PASSWORD).status_code, 400)
        throttled = self.change(PASSWORD, NEW_PASSWORD)
        self.assertEqual(throttled.status_code, 429)
        self.assertTrue(1 <= int(throttled["Retry-After"]) <= 60)
        self.assertEqual(
            self.api.post("/api/auth/login", {"email": "p@example.com", "password": PASSWORD}).status_code, 429
        )
        self.user.refresh_from_db()
        self.assertTrue(self.user.check_password(PASSWORD))

    def test_a_weak_new_password_is_400_naming_it_and_changes_nothing(self):
        for weak in ("short", "password", "p@example.com"):
            response = self.change(PASSWORD, weak)
            self.assertEqual(response.status_code, 400, weak)
            self.assertIn("newPassword", response.json())
        self.assert_access(self.pairs[1]["accessToken"], 200)

    def test_bad_input_and_no_token(self):
        self.assertEqual(self.change(PASSWORD, "").status_code, 400)
        self.assertEqual(self.api.post("/api/auth/password", {"currentPassword": PASSWORD}).status_code, 401)
        response = self.change(PASSWORD, None)
        self.assertEqual(response.status_code, 400)
        self.assertIn("newPassword", response.json())


class OtherWaysOfSettingAPasswordTests(PasswordSetTestCase):
    def test_the_orm_set_password_and_save(self):
        user = User.objects.get(pk=self.user.pk)
        user.set_password(NEW_PASSWORD)
        with self.captureOnCommitCallbacks(execute=True):
            user.save()
        self.assert_all_earlier_tokens_dead()

    def test_a_hash_assigned_directly_and_saved(self):
        user = User.objects.get(pk=self.user.pk)
        user.password = make_password(NEW_PASSWORD)
        with self.captureOnCommitCallbacks(execute=True):
            user.save()
        self.assert_all_earlier_tokens_dead()

    def test_a_queryset_update_of_the_password(self):
        with self.captureOnCommitCallbacks(execute=True):
            User.objects.filter(pk=self.user.pk).update(password=make_password(NEW_PASSWORD))
        self.assert_all_earlier_tokens_dead()

    def test_manage_py_changepassword(self):
        # Django's command reads the password from the terminal; give it one without a terminal.
        with (
            mock.patch.object(changepassword.Command, "_get_pass", return_value=NEW_PASSWORD),
            self.captureOnCommitCallbacks(execute=True),
        ):
            call_command("changepassword", "p@example.com", stdout=StringIO())
        self.assert_all_earlier_tokens_dead()
        self.login(NEW_PASSWORD)

    def test_the_django_admin_password_form(self):
        self.client.force_login(self.user)
        url = f"/admin/auth_app/user/{self.user.pk}/password/"
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        self.assertEqual(response.status_code, 302, response.content[:500])
        self.assert_all_earlier_tokens_dead()
        self.login(NEW_PASSWORD)

    def test_saves_that_do_not_set_a_password_revoke_nothing(self):
        user = User.objects.get(pk=self.user.pk)
        user.name = "Renamed"
        with self.captureOnCommitCallbacks(execute=True):
            user.save()
            user.save(update_fields=["name"])
        for pair in self.pairs:
            self.assert_access(pair["accessToken"], 200)


class HashingTests(CacheTestCase):
    def test_argon2id_at_or_above_owasp_minimum_and_at_most_100_ms_of_cpu(self):
        self.assertEqual(project_settings.PASSWORD_HASHERS, PRODUCTION_HASHERS)  # not the test runner's MD5
        hasher = Argon2idPasswordHasher()
        self.assertGreaterEqual(hasher.memory_cost, 19 * 1024)
        self.assertGreaterEqual(hasher.time_cost, 2)
        self.assertGreaterEqual(hasher.parallelism, 1)
        encoded = hasher.encode("x", hasher.salt())
        self.assertIn("$argon2id$", encoded)
        start = time.process_time()
        for _ in range(5):
            hasher.verify("wrong", encoded)
        per_check = (time.process_time() - start) / 5
        print(f"\nargon2id check: {per_check * 1000:.1f} ms of CPU")
        self.assertLess(per_check, 0.100)

    @override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
    def test_a_pbkdf2_hash_verifies_and_is_upgraded_at_the_next_login_revoking_nothing(self):
        user = make_user(email="old@example.com")
        user.password = make_password(PASSWORD, hasher=get_hasher("pbkdf2_sha256"))
        user.save()
        earlier = self.api.post("/api/auth/login", {"email": "old@example.com", "password": PASSWORD})
        self.assertEqual(earlier.status_code, 200)
        user.refresh_from_db()
        self.assertEqual(identify_hasher(user.password).algorithm, "argon2")
        self.assertIn("$argon2id$v=19$m=19456,t=2,p=1$", user.password)
        # The upgrade is not a password change: the token of that very login still works.
        self.assertEqual(self.api.bearer(earlier.json()["accessToken"]).get("/api/auth/me").status_code, 200)
        self.api.bearer(None)
        self.assertEqual(
            self.api.post("/api/auth/login", {"email": "old@example.com", "password": PASSWORD}).status_code, 200
        )
