"""One throttle for every door: the admin's form and the API share the limits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.test import Client, override_settings

from auth_app.tests.factories import PASSWORD, make_user
from techbirdsfly.testing import CacheTestCase, LiveTestCase

ADMIN_LOGIN = "/admin/login/?next=/admin/"
LONG_S = "\u017f"  # the long s, which case-folds to s


class AdminAndAPIShareTheEmailLimitTests(CacheTestCase):
    def setUp(self):
        super().setUp()
        make_user(email="boss@example.com", staff=True, is_superuser=True)

    def admin_login(self, password: str, email: str = "boss@example.com", **extra):
        return self.client.post(ADMIN_LOGIN, {"username": email, "password": password}, **extra)

    def api_login(self, password: str, email: str = "boss@example.com", **extra):
        return self.api.post("/api/auth/login", {"email": email, "password": password}, **extra)

    def test_admin_failures_count_toward_the_api_limit(self):
        for _ in range(10):
            response = self.admin_login("wrong")
            self.assertEqual(response.status_code, 200)  # the form again, with its error
        refused = self.admin_login(PASSWORD)
        self.assertEqual(refused.status_code, 429)
        self.assertTrue(1 <= int(refused["Retry-After"]) <= 60)
        self.assertContains(refused, "Too many failed logins", status_code=429)
        self.assertNotIn("_auth_user_id", self.client.session)
        self.assertEqual(self.api_login(PASSWORD).status_code, 429)

    def test_api_failures_count_toward_the_admin_limit(self):
        for _ in range(10):
            self.assertEqual(self.api_login("wrong").status_code, 401)
        refused = self.admin_login(PASSWORD)
        self.assertEqual(refused.status_code, 429)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_mixed_doors_and_spellings_share_one_allowance(self):
        for i in range(5):
            self.admin_login("wrong", email="BOSS@example.com ")
            self.api_login("wrong", email=f"bo{LONG_S}s@example.com{' ' * i}")
        self.assertEqual(self.admin_login(PASSWORD).status_code, 429)
        self.assertEqual(self.api_login(PASSWORD, email="Boss@Example.COM").status_code, 429)

    def test_the_admin_still_logs_in(self):
        self.admin_login("wrong")
        response = self.admin_login(PASSWORD, email=" BOSS@example.com")
        self.assertEqual(response.status_code, 302)
        self.assertIn("_auth_user_id", self.client.session)


ADMIN_PASSWORD_CHANGE = "/admin/password_change/"


class AdminPasswordChangeFormTests(CacheTestCase):
    """The admin's own password-change form: its old password is a guess, counted like a login."""

    def setUp(self):
        super().setUp()
        self.boss = make_user(email="boss@example.com", staff=True, is_superuser=True)
        self.client.force_login(self.boss)

    def change(self, old: str, new: str = "a brand new passphrase 42", **extra):
        body = {"old_password": old, "new_password1": new, "new_password2": new}
        return self.client.post(ADMIN_PASSWORD_CHANGE, body, **extra)

    def test_wrong_old_passwords_count_against_the_email_limit_of_every_door(self):
        for _ in range(10):
            response = self.change("wrong")
            self.assertEqual(response.status_code, 200)  # the form again, with its error
            self.assertContains(response, "old password was entered incorrectly")
        refused = self.change(PASSWORD)
        self.assertEqual(refused.status_code, 429)
        self.assertTrue(1 <= int(refused["Retry-After"]) <= 60)
        self.assertContains(refused, "Too many failed logins", status_code=429)
        self.boss.refresh_from_db()
        self.assertTrue(self.boss.check_password(PASSWORD))  # not changed
        api = self.api.post("/api/auth/login", {"email": "boss@example.com", "password": PASSWORD})
        self.assertEqual(api.status_code, 429)

    def test_api_failures_refuse_the_admin_form(self):
        for _ in range(10):
            self.api.post("/api/auth/login", {"email": "BOSS@example.com", "password": "wrong"})
        self.assertEqual(self.change(PASSWORD).status_code, 429)

    def test_wrong_old_passwords_count_per_address(self):
        for i in range(20):
            self.api.post("/api/auth/login", {"email": f"n{i}@example.com", "password": "x"})
        refused = self.change(PASSWORD)
        self.assertEqual(refused.status_code, 429)
        self.assertContains(refused, "address", status_code=429)
        self.assertEqual(self.change(PASSWORD, REMOTE_ADDR="192.0.2.7").status_code, 302)  # changed
        self.boss.refresh_from_db()
        self.assertTrue(self.boss.check_password("a brand new passphrase 42"))


class PerAddressLimitTests(CacheTestCase):
    def fail(self, n: int, **extra) -> list[int]:
        return [
            self.api.post("/api/auth/login", {"email": f"nobody{i}@example.com", "password": "x"}, **extra).status_code
            for i in range(n)
        ]

    def test_twenty_failures_from_one_address_refuse_every_further_try(self):
        make_user(email="ok@example.com")
        self.assertEqual(self.fail(20), [401] * 20)  # twenty emails, each far below its own limit
        refused = self.api.post("/api/auth/login", {"email": "ok@example.com", "password": PASSWORD})
        self.assertEqual(refused.status_code, 429)
        self.assertTrue(1 <= int(refused["Retry-After"]) <= 60)
        self.assertIn("address", refused.json()["detail"])
        admin = self.client.post(ADMIN_LOGIN, {"username": "ok@example.com", "password": PASSWORD})
        self.assertEqual(admin.status_code, 429)
        # Another address is not affected.
        other = self.api.post(
            "/api/auth/login", {"email": "ok@example.com", "password": PASSWORD}, REMOTE_ADDR="192.0.2.7"
        )
        self.assertEqual(other.status_code, 200)

    def test_an_ipv6_client_is_counted_per_64(self):
        def login(i: int, address: str) -> int:
            body = {"email": f"v6-{i}@example.com", "password": "x"}
            return self.api.post("/api/auth/login", body, REMOTE_ADDR=address).status_code

        statuses = [login(i, f"2001:db8:7:7::{i + 1:x}") for i in range(21)]  # a fresh address of the /64 each
        self.assertEqual(statuses, [401] * 20 + [429])
        self.assertEqual(login(99, "2001:db8:7:8::1"), 401)  # another /64

    def test_admin_failures_count_per_address_too(self):
        for i in range(20):
            self.client.post(ADMIN_LOGIN, {"username": f"n{i}@example.com", "password": "x"})
        self.assertEqual(self.fail(1), [429])

    def test_a_spoofed_x_forwarded_for_is_ignored_without_trusted_proxies(self):
        statuses = [
            self.api.post(
                "/api/auth/login",
                {"email": f"nobody{i}@example.com", "password": "x"},
                HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
            ).status_code
            for i in range(22)
        ]
        self.assertEqual(statuses, [401] * 20 + [429] * 2)

    @override_settings(TRUSTED_PROXY_COUNT=1)
    def test_with_one_trusted_proxy_the_rightmost_forwarded_address_is_the_client(self):
        # The proxy (REMOTE_ADDR) appends the client's address; what the client wrote to its left is ignored.
        spoofed = [f"203.0.113.{i}, 198.51.100.9" for i in range(22)]
        statuses = [
            self.api.post(
                "/api/auth/login", {"email": f"n{i}@example.com", "password": "x"}, HTTP_X_FORWARDED_FOR=header
            ).status_code
            for i, header in enumerate(spoofed)
        ]
        self.assertEqual(statuses, [401] * 20 + [429] * 2)
        # Another client behind the same proxy (same REMOTE_ADDR) is not affected.
        other = self.api.post(
            "/api/auth/login", {"email": "n0@example.com", "password": "x"}, HTTP_X_FORWARDED_FOR="198.51.100.10"
        )
        self.assertEqual(other.status_code, 401)


# --- the cap on concurrent password checks --------------------------------------------------------

GATE = threading.Event()
ENTERED = threading.Semaphore(0)


def hold_checks() -> None:
    """Close the gate, and forget the entries of checks that ran through it open (every hash the
    hasher made since, a refused try's timing hash included): an entry counted now is a check held now."""
    GATE.clear()
    while ENTERED.acquire(blocking=False):
        pass


class BlockingHasher(MD5PasswordHasher):
    """A hasher that holds its check until the test lets it go: a password check that is still running."""

    algorithm = "blocking_md5"

    def encode(self, password, salt):
        ENTERED.release()
        GATE.wait(10)
        return super().encode(password, salt).replace("md5$", "blocking_md5$", 1)


@override_settings(
    PASSWORD_HASHERS=["auth_app.tests.test_doors.BlockingHasher"], LOGIN_CONCURRENCY=2, LOGIN_CONCURRENCY_WAIT=0.05
)
class ConcurrencyCapTests(LiveTestCase):
    def login(self, i: int):
        try:
            client = Client(REMOTE_ADDR=f"192.0.2.{i}")  # another address each: only the cap may refuse
            return client.post(
                "/api/auth/login", {"email": f"ghost{i}@example.com", "password": "x"}, content_type="application/json"
            )
        finally:
            connection.close()

    def test_over_the_cap_a_login_is_refused_at_once_with_429_and_retry_after(self):
        hold_checks()
        with ThreadPoolExecutor(2) as pool:
            running = [pool.submit(self.login, i) for i in range(2)]
            for _ in range(2):
                self.assertTrue(ENTERED.acquire(timeout=10))  # both slots hold a check
            refused = self.login(9)
            GATE.set()
            answers = [future.result() for future in running]
        self.assertEqual(refused.status_code, 429)
        self.assertEqual(refused["Retry-After"], "1")
        self.assertIn("detail", refused.json())
        self.assertEqual([answer.status_code for answer in answers], [401, 401])
        # The refused try was not counted as a failure; the slots are free again.
        self.assertEqual(self.login(9).status_code, 401)

    def test_the_admin_password_change_form_waits_for_the_same_pool(self):
        with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
            boss = make_user(email="boss@example.com", staff=True, is_superuser=True)
        admin = Client(REMOTE_ADDR="192.0.2.99")
        admin.force_login(boss)
        hold_checks()
        with ThreadPoolExecutor(2) as pool:
            running = [pool.submit(self.login, i) for i in range(2)]
            for _ in range(2):
                self.assertTrue(ENTERED.acquire(timeout=10))  # both slots hold a check
            new = "a brand new passphrase 42"
            body = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
            refused = admin.post("/admin/password_change/", body)
            GATE.set()
            self.assertEqual([future.result().status_code for future in running], [401, 401])
        self.assertEqual(refused.status_code, 429)
        self.assertEqual(refused["Retry-After"], "1")
