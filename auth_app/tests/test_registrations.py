"""Limits on new accounts: REGISTRATION_ADDRESS_LIMIT per client address an hour, hashing in the bounded pool."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from auth_app.models import Registration, User
from auth_app.tests.factories import PASSWORD
from auth_app.tests.test_doors import ENTERED, GATE, hold_checks
from techbirdsfly.testing import CacheTestCase, LiveTestCase


class RegistrationsPerAddressTests(CacheTestCase):
    def register(self, i: int, **extra):
        return self.api.post("/api/auth/register", {"email": f"new{i}@example.com", "password": PASSWORD}, **extra)

    def test_the_thirty_first_account_from_one_address_within_an_hour_is_429(self):
        self.assertEqual([self.register(i).status_code for i in range(30)], [201] * 30)
        refused = self.register(30)
        self.assertEqual(refused.status_code, 429)
        self.assertTrue(1 <= int(refused["Retry-After"]) <= 3600)
        self.assertIn("30", refused.json()["detail"])
        self.assertEqual(User.objects.count(), 30)
        # Another address is not affected.
        self.assertEqual(self.register(31, REMOTE_ADDR="192.0.2.7").status_code, 201)

    @override_settings(REGISTRATION_ADDRESS_LIMIT=2)
    def test_the_window_passes_and_failed_registrations_do_not_count(self):
        self.assertEqual(self.register(0).status_code, 201)
        self.assertEqual(self.register(0).status_code, 409)  # no account made: not counted
        self.assertEqual(self.register(1).status_code, 201)
        self.assertEqual(self.register(2).status_code, 429)
        Registration.objects.update(at=timezone.now() - timedelta(seconds=3601))
        self.assertEqual(self.register(2).status_code, 201)

    @override_settings(REGISTRATION_ADDRESS_LIMIT=3)
    def test_an_ipv6_client_is_limited_per_64_not_per_address(self):
        statuses = [self.register(i, REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}").status_code for i in range(4)]
        self.assertEqual(statuses, [201, 201, 201, 429])
        # Another /64 of the same /48 is another client.
        self.assertEqual(self.register(9, REMOTE_ADDR="2001:db8:1:3::1").status_code, 201)

    @override_settings(REGISTRATION_ADDRESS_LIMIT=1, TRUSTED_PROXY_COUNT=1)
    def test_behind_the_proxy_the_forwarded_client_is_counted(self):
        self.assertEqual(self.register(0, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code, 201)
        self.assertEqual(self.register(1, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code, 429)
        self.assertEqual(self.register(2, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code, 201)


@override_settings(REGISTRATION_ADDRESS_LIMIT=2)
class RacingRegistrationsTests(LiveTestCase):
    def test_concurrent_registrations_from_one_address_cannot_pass_the_limit_together(self):
        start = threading.Barrier(6)

        def register(i: int) -> int:
            try:
                start.wait(10)
                return (
                    Client(REMOTE_ADDR="192.0.2.50")
                    .post(
                        "/api/auth/register",
                        {"email": f"racer{i}@example.com", "password": PASSWORD},
                        content_type="application/json",
                    )
                    .status_code
                )
            finally:
                connection.close()

        with ThreadPoolExecutor(6) as pool:
            statuses = sorted(pool.map(register, range(6)))
        self.assertEqual(statuses, [201, 201, 429, 429, 429, 429])
        self.assertEqual(User.objects.count(), 2)


@override_settings(
    PASSWORD_HASHERS=["auth_app.tests.test_doors.BlockingHasher"], LOGIN_CONCURRENCY=2, LOGIN_CONCURRENCY_WAIT=0.05
)
class RegistrationHashingPoolTests(LiveTestCase):
    def post(self, path: str, body: dict, address: str):
        try:
            return Client(REMOTE_ADDR=address).post(path, body, content_type="application/json")
        finally:
            connection.close()

    def test_a_registration_waits_for_the_pool_of_password_checks_like_a_login(self):
        hold_checks()
        with ThreadPoolExecutor(2) as pool:
            logins = [({"email": f"g{i}@example.com", "password": "x"}, f"192.0.2.{i}") for i in range(2)]
            running = [pool.submit(self.post, "/api/auth/login", body, address) for body, address in logins]
            for _ in range(2):
                self.assertTrue(ENTERED.acquire(timeout=10))  # both slots hold a check
            refused = self.post("/api/auth/register", {"email": "late@example.com", "password": PASSWORD}, "192.0.2.9")
            GATE.set()
            self.assertEqual([future.result().status_code for future in running], [401, 401])
        self.assertEqual(refused.status_code, 429)
        self.assertEqual(refused["Retry-After"], "1")
        self.assertFalse(User.objects.filter(email="late@example.com").exists())
        # With the pool free again, the registration goes through (and was not counted when refused).
        again = self.post("/api/auth/register", {"email": "late@example.com", "password": PASSWORD}, "192.0.2.9")
        self.assertEqual(again.status_code, 201)
