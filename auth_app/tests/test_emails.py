"""Look-alike emails: one account and one allowance of tries per normalized email."""

from __future__ import annotations

import importlib
import threading

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import QuerySet
from django.test import Client

from auth_app.emails import normalize_email
from auth_app.models import User
from auth_app.tests.factories import PASSWORD, make_user
from techbirdsfly.testing import CacheTestCase, LiveTestCase

LONG_S = "\u017f"  # the long s: case-folds to s
DOTLESS_I = "\u0131"  # the dotless i: case-folds to itself, PostgreSQL's UPPER() makes it I


class NormalizeEmailTests(CacheTestCase):
    def test_spellings_of_one_email(self):
        for spelling in (f"u{LONG_S}er@example.com", " USER@Example.com\t", "\uff55ser@example.com"):
            self.assertEqual(normalize_email(spelling), "user@example.com", spelling)
        self.assertNotEqual(normalize_email(f"{DOTLESS_I}nfo@example.com"), normalize_email("info@example.com"))


class LookAlikeRegistrationTests(CacheTestCase):
    def register(self, email: str, password: str = PASSWORD):
        return self.api.post("/api/auth/register", {"email": email, "password": password})

    def test_variants_of_a_registered_email_are_409(self):
        self.assertEqual(self.register("user8@example.com").status_code, 201)
        for variant in (f"u{LONG_S}er8@example.com", "USER8@EXAMPLE.COM", "  user8@example.com "):
            response = self.register(variant)
            self.assertEqual(response.status_code, 409, variant)
            self.assertIn("email", response.json())
        self.assertEqual(User.objects.count(), 1)

    def test_every_spelling_logs_in_to_the_one_account(self):
        user = make_user(email="user8@example.com")
        for variant in (f"u{LONG_S}er8@example.com", "USER8@example.com", " user8@example.com "):
            response = self.api.post("/api/auth/login", {"email": variant, "password": PASSWORD})
            self.assertEqual(response.status_code, 200, variant)
            token = response.json()["accessToken"]
            self.assertEqual(self.api.bearer(token).get("/api/auth/me").json()["data"]["id"], user.pk)
            self.api.bearer(None)

    def test_spellings_share_one_allowance_of_tries(self):
        make_user(email="user8@example.com")
        spellings = [f"u{LONG_S}er8@example.com", "USER8@example.com", " user8@example.com", "user8@example.com"]
        for i in range(10):
            response = self.api.post("/api/auth/login", {"email": spellings[i % 4], "password": "wrong"})
            self.assertEqual(response.status_code, 401)
        for spelling in spellings:
            response = self.api.post("/api/auth/login", {"email": spelling, "password": PASSWORD})
            self.assertEqual(response.status_code, 429, spelling)

    def test_a_dotless_i_is_another_account_that_never_reaches_the_first(self):
        first = make_user(email="info@example.com")
        other = f"{DOTLESS_I}nfo@example.com"
        # Not the first account: the first one's password does not log in with this spelling...
        self.assertEqual(self.api.post("/api/auth/login", {"email": other, "password": PASSWORD}).status_code, 401)
        # ...and it can be registered as an account of its own.
        response = self.register(other, "another passphrase 77")
        self.assertEqual(response.status_code, 201)
        self.assertNotEqual(response.json()["id"], first.pk)
        login = self.api.post("/api/auth/login", {"email": other, "password": "another passphrase 77"})
        me = self.api.bearer(login.json()["accessToken"]).get("/api/auth/me").json()["data"]
        self.assertEqual(me["id"], response.json()["id"])

    def test_the_admin_add_form_refuses_a_variant(self):
        staff = make_user(email="boss@example.com", staff=True, is_superuser=True)
        make_user(email="user8@example.com")
        self.client.force_login(staff)
        response = self.client.post(
            "/admin/auth_app/user/add/",
            {"email": f"u{LONG_S}er8@example.com", "name": "", "password1": PASSWORD, "password2": PASSWORD},
        )
        self.assertEqual(response.status_code, 200)  # the form again, with the error
        self.assertContains(response, "already exists")
        self.assertEqual(User.objects.count(), 2)


class RacingRegistrationTests(LiveTestCase):
    def test_two_racing_registrations_of_look_alikes_give_one_201_and_one_409(self):
        start = threading.Barrier(2)
        statuses: list[int] = []

        def register(email: str) -> None:
            try:
                start.wait(5)
                response = Client().post(
                    "/api/auth/register", {"email": email, "password": PASSWORD}, content_type="application/json"
                )
                statuses.append(response.status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=register, args=(email,)) for email in ("xs@e.com", f"x{LONG_S}@e.com")]
        # lower() does not fold the long s: compared that way, both would answer 201 and logins then 500.
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(sorted(statuses), [201, 409])
        self.assertEqual(User.objects.count(), 1)
        # Logins with either spelling find the one account (no MultipleObjectsReturned, no 500).
        for email in ("xs@e.com", f"x{LONG_S}@e.com", "XS@E.COM"):
            response = Client().post(
                "/api/auth/login", {"email": email, "password": PASSWORD}, content_type="application/json"
            )
            self.assertEqual(response.status_code, 200, email)


class MigrationTests(LiveTestCase):
    def test_colliding_accounts_stop_the_migration_naming_them(self):
        # Rows as they were before 0003: emails that collide once normalized, the column not yet right
        # (a plain QuerySet: UserQuerySet.bulk_create would fill the column).
        QuerySet(User).bulk_create(
            [
                User(email="sam@example.com", email_normalized="legacy-1", password="!"),
                User(email=f"{LONG_S}am@example.com", email_normalized="legacy-2", password="!"),
                User(email="SAM@example.com ", email_normalized="legacy-3", password="!"),
                User(email="single@example.com", email_normalized="legacy-4", password="!"),
            ]
        )
        ids = dict(User.objects.values_list("email", "pk"))
        apps = MigrationExecutor(connection).loader.project_state(("auth_app", "0002_user_email_normalized")).apps
        migration = importlib.import_module("auth_app.migrations.0003_fill_email_normalized")
        with self.assertRaisesMessage(RuntimeError, "'sam@example.com'") as raised:
            migration.fill(apps, None)
        message = str(raised.exception)
        for email in ("sam@example.com", f"{LONG_S}am@example.com", "SAM@example.com "):
            self.assertIn(f"id {ids[email]} {email!r}", message)
        self.assertNotIn("single@example.com", message)
        # Nothing merged, renamed or filled.
        stored = sorted(User.objects.values_list("email_normalized", flat=True))
        self.assertEqual(stored, ["legacy-1", "legacy-2", "legacy-3", "legacy-4"])


class DomainAndLengthTests(CacheTestCase):
    def register(self, email: str, password: str = PASSWORD):
        return self.api.post("/api/auth/register", {"email": email, "password": password})

    def test_an_idn_domain_and_its_ascii_spelling_are_one_account(self):
        self.assertEqual(normalize_email("x@exämple.test"), normalize_email("x@xn--exmple-cua.test"))
        self.assertEqual(self.register("x@exämple.test").status_code, 201)
        response = self.register("x@xn--exmple-cua.test")
        self.assertEqual(response.status_code, 409)
        self.assertEqual(self.register("X@EXÄMPLE.test").status_code, 409)
        self.assertEqual(User.objects.count(), 1)
        login = self.api.post("/api/auth/login", {"email": "x@xn--exmple-cua.test", "password": PASSWORD})
        self.assertEqual(login.status_code, 200)

    def test_both_spellings_of_a_domain_share_one_allowance_of_tries(self):
        make_user(email="y@xn--exmple-cua.test")
        for i in range(10):
            email = ("y@exämple.test", "y@xn--exmple-cua.test")[i % 2]
            self.assertEqual(self.api.post("/api/auth/login", {"email": email, "password": "x"}).status_code, 401)
        refused = self.api.post("/api/auth/login", {"email": "y@exämple.test", "password": PASSWORD})
        self.assertEqual(refused.status_code, 429)

    def test_an_email_over_254_characters_once_normalized_is_400_naming_the_field(self):
        email = "a@" + "\ufdfa" * 60 + ".com"  # 66 characters sent, 1,086 once NFKC-normalized
        self.assertLessEqual(len(email), 254)
        response = self.register(email)
        self.assertEqual(response.status_code, 400)
        self.assertIn("email", response.json())
        self.assertEqual(User.objects.count(), 0)
        login = self.api.post("/api/auth/login", {"email": email, "password": PASSWORD})
        self.assertEqual(login.status_code, 401)

    def test_the_admin_add_form_refuses_an_email_too_long_once_normalized(self):
        staff = make_user(email="boss@example.com", staff=True, is_superuser=True)
        self.client.force_login(staff)
        email = "a@" + "\ufdfa" * 60 + ".com"
        response = self.client.post(
            "/admin/auth_app/user/add/", {"email": email, "name": "", "password1": PASSWORD, "password2": PASSWORD}
        )
        self.assertEqual(response.status_code, 200)  # the form again, with the error
        self.assertContains(response, "at most 254 characters once normalized")
        self.assertEqual(User.objects.count(), 1)

    def test_the_migration_refills_idn_domains_and_stops_on_collisions(self):
        User._base_manager.bulk_create(  # the column as it was filled before domains were IDNA-encoded
            [
                User(email="p@exämple.test", email_normalized="p@exämple.test", password="!"),
                User(email="q@example.com", email_normalized="q@example.com", password="!"),
            ]
        )
        apps = MigrationExecutor(connection).loader.project_state(("auth_app", "0005_token_revoked_reason")).apps
        migration = importlib.import_module("auth_app.migrations.0006_email_normalized_idna")
        migration.refill(apps, None)
        self.assertTrue(User.objects.filter(email_normalized="p@xn--exmple-cua.test").exists())
        User._base_manager.filter(email="p@exämple.test").update(email_normalized="legacy")
        User._base_manager.create(email="p@xn--exmple-cua.test", email_normalized="other", password="!")
        with self.assertRaisesMessage(RuntimeError, "'p@exämple.test'"):
            migration.refill(apps, None)
