"""Every row of API.md's auth table, against the real Redis and database."""

from __future__ import annotations

from auth_app.models import AuthToken, User
from auth_app.tests.factories import PASSWORD, make_user
from techbirdsfly.testing import CacheTestCase


class AuthAPITestCase(CacheTestCase):
    def login(self, email: str, password: str = PASSWORD) -> dict:
        response = self.api.post("/api/auth/login", {"email": email, "password": password})
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()


class RegisterTests(AuthAPITestCase):
    def test_register_creates_a_user(self):
        response = self.api.post("/api/auth/register", {"email": "New@Example.com", "password": PASSWORD, "name": "N"})
        self.assertEqual(response.status_code, 201)
        body = response.json()
        self.assertEqual(set(body), {"id", "email", "name"})
        self.assertEqual((body["email"], body["name"]), ("New@example.com", "N"))
        self.assertTrue(User.objects.get(pk=body["id"]).check_password(PASSWORD))

    def test_name_is_optional(self):
        response = self.api.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
        self.assertEqual(response.json()["name"], "")

    def test_existing_email_in_any_case_is_409(self):
        make_user(email="taken@example.com")
        response = self.api.post("/api/auth/register", {"email": "TAKEN@example.com", "password": PASSWORD})
        self.assertEqual(response.status_code, 409)
        self.assertIn("email", response.json())

    def test_weak_password_is_400_with_the_validators_messages(self):
        for weak in ("short", "password", "12345678901"):
            response = self.api.post("/api/auth/register", {"email": "w@example.com", "password": weak})
            self.assertEqual(response.status_code, 400, weak)
            self.assertTrue(response.json()["password"], weak)
        self.assertFalse(User.objects.exists())

    def test_bad_input_names_the_field(self):
        cases = [
            ({"password": PASSWORD}, "email"),
            ({"email": "not-an-email", "password": PASSWORD}, "email"),
            ({"email": "a@example.com"}, "password"),
            ({"email": ["a@example.com"], "password": PASSWORD}, "email"),
            ({"email": "a@example.com", "password": PASSWORD, "name": "x" * 151}, "name"),
        ]
        for body, field in cases:
            response = self.api.post("/api/auth/register", body)
            self.assertEqual(response.status_code, 400, body)
            self.assertIn(field, response.json(), body)


class LoginTests(AuthAPITestCase):
    def test_login_returns_a_bearer_pair(self):
        user = make_user(email="l@example.com")
        body = self.login("L@EXAMPLE.COM")
        self.assertEqual(set(body), {"accessToken", "refreshToken", "tokenType", "expiresIn"})
        self.assertEqual((body["tokenType"], body["expiresIn"]), ("Bearer", 3600))
        self.assertNotEqual(body["accessToken"], body["refreshToken"])
        self.assertEqual(AuthToken.objects.filter(user=user).count(), 2)
        # Only hashes are stored.
        stored = set(AuthToken.objects.values_list("token_hash", flat=True))
        self.assertNotIn(body["accessToken"], stored)
        self.assertTrue(all(len(h) == 64 for h in stored))

    def test_wrong_password_and_unknown_email_answer_alike(self):
        make_user(email="l@example.com")
        wrong = self.api.post("/api/auth/login", {"email": "l@example.com", "password": "nope"})
        unknown = self.api.post("/api/auth/login", {"email": "who@example.com", "password": "nope"})
        self.assertEqual((wrong.status_code, unknown.status_code), (401, 401))
        self.assertEqual(wrong.json(), unknown.json())

    def test_inactive_user_cannot_log_in(self):
        make_user(email="off@example.com", is_active=False)
        response = self.api.post("/api/auth/login", {"email": "off@example.com", "password": PASSWORD})
        self.assertEqual(response.status_code, 401)


class ValidateTokenTests(AuthAPITestCase):
    def test_header_token_is_valid_and_then_cached(self):
        user = make_user(email="v@example.com")
        token = self.login("v@example.com")["accessToken"]
        first = self.api.bearer(token).post("/api/auth/validate-token")
        second = self.api.post("/api/auth/validate-token")
        self.assertEqual(first.status_code, 200)
        self.assertEqual(first.json(), {"valid": True, "userId": user.pk, "email": "v@example.com", "fromCache": False})
        self.assertEqual(second.json()["fromCache"], True)

    def test_body_token_is_accepted(self):
        make_user(email="v@example.com")
        token = self.login("v@example.com")["accessToken"]
        response = self.api.post("/api/auth/validate-token", {"token": token})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.json()["valid"])

    def test_invalid_or_missing_token_is_401_valid_false(self):
        for bearer, body in (("garbage", {}), (None, {}), (None, {"token": "garbage"})):
            response = self.api.bearer(bearer).post("/api/auth/validate-token", body)
            self.assertEqual(response.status_code, 401)
            self.assertIs(response.json()["valid"], False)

    def test_refresh_token_is_not_an_access_token(self):
        make_user(email="v@example.com")
        refresh = self.login("v@example.com")["refreshToken"]
        self.assertEqual(self.api.bearer(refresh).post("/api/auth/validate-token").status_code, 401)


class RefreshTests(AuthAPITestCase):
    def test_refresh_rotates_and_a_spent_token_revokes_the_family(self):
        make_user(email="r@example.com")
        first = self.login("r@example.com")
        second = self.api.post("/api/auth/refresh", {"refreshToken": first["refreshToken"]})
        self.assertEqual(second.status_code, 200)
        second = second.json()
        self.assertEqual(set(second), {"accessToken", "refreshToken", "tokenType", "expiresIn"})
        self.assertNotEqual(second["refreshToken"], first["refreshToken"])
        self.assertEqual(self.api.bearer(second["accessToken"]).get("/api/auth/me").status_code, 200)

        reuse = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": first["refreshToken"]})
        self.assertEqual(reuse.status_code, 401)
        self.assertEqual(reuse.json()["detail"], "Refresh token already used; this login has been revoked.")
        # The whole family is dead: the access token issued by the refresh, and its refresh token.
        self.assertEqual(self.api.bearer(second["accessToken"]).get("/api/auth/me").status_code, 401)
        self.assertEqual(self.api.bearer(first["accessToken"]).get("/api/auth/me").status_code, 401)
        again = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": second["refreshToken"]})
        self.assertEqual(again.status_code, 401)

    def test_another_login_is_not_revoked(self):
        make_user(email="r@example.com")
        victim, other = self.login("r@example.com"), self.login("r@example.com")
        self.api.post("/api/auth/refresh", {"refreshToken": victim["refreshToken"]})
        self.api.post("/api/auth/refresh", {"refreshToken": victim["refreshToken"]})
        self.assertEqual(self.api.bearer(other["accessToken"]).get("/api/auth/me").status_code, 200)

    def test_bad_refresh_input(self):
        self.assertEqual(self.api.post("/api/auth/refresh", {"refreshToken": "nope"}).status_code, 401)
        response = self.api.post("/api/auth/refresh", {})
        self.assertEqual(response.status_code, 400)
        self.assertIn("refreshToken", response.json())


class LogoutTests(AuthAPITestCase):
    def test_logout_kills_the_access_token_and_its_refresh_token(self):
        make_user(email="o@example.com")
        pair = self.login("o@example.com")
        self.api.bearer(pair["accessToken"])
        self.assertEqual(self.api.get("/api/auth/me").status_code, 200)  # cached now
        response = self.api.post("/api/auth/logout")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"message": "Logged out"})
        self.assertEqual(self.api.get("/api/auth/me").status_code, 401)
        self.assertEqual(self.api.post("/api/auth/validate-token").status_code, 401)
        refresh = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": pair["refreshToken"]})
        self.assertEqual(refresh.status_code, 401)
        # It says the token was revoked, not that it was already used.
        self.assertEqual(refresh.json()["detail"], "This refresh token no longer works: logged out. Log in again.")

    def test_a_refresh_after_a_password_change_says_so(self):
        user = make_user(email="p@example.com")
        pair = self.login("p@example.com")
        user.set_password("a-brand-new-password-2026")
        user.save()
        refresh = self.api.post("/api/auth/refresh", {"refreshToken": pair["refreshToken"]})
        self.assertEqual(refresh.status_code, 401)
        self.assertEqual(
            refresh.json()["detail"], "This refresh token no longer works: the password was changed. Log in again."
        )

    def test_a_refresh_of_a_login_revoked_for_reuse_says_so(self):
        make_user(email="r@example.com")
        first = self.login("r@example.com")
        second = self.api.post("/api/auth/refresh", {"refreshToken": first["refreshToken"]}).json()
        self.api.post("/api/auth/refresh", {"refreshToken": first["refreshToken"]})  # reuse: the login dies
        refresh = self.api.post("/api/auth/refresh", {"refreshToken": second["refreshToken"]})
        self.assertEqual(refresh.status_code, 401)
        self.assertIn("a spent refresh token of this login was presented again", refresh.json()["detail"])

    def test_a_refresh_after_logout_still_revokes_the_family(self):
        make_user(email="f@example.com")
        first = self.login("f@example.com")
        second = self.api.post("/api/auth/refresh", {"refreshToken": first["refreshToken"]}).json()
        third = self.api.post("/api/auth/refresh", {"refreshToken": second["refreshToken"]}).json()
        self.api.bearer(third["accessToken"]).post("/api/auth/logout")
        # The access token of the second pair was not logged out, but presenting the revoked refresh token
        # kills the whole login, as reuse detection does (API.md, settled details).
        self.assertEqual(self.api.bearer(second["accessToken"]).get("/api/auth/me").status_code, 200)
        refused = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": third["refreshToken"]})
        self.assertEqual(refused.status_code, 401)
        self.assertEqual(self.api.bearer(second["accessToken"]).get("/api/auth/me").status_code, 401)

    def test_logout_needs_a_token(self):
        self.assertEqual(self.api.post("/api/auth/logout").status_code, 401)


class MeTests(AuthAPITestCase):
    def setUp(self):
        super().setUp()
        self.user = make_user(email="me@example.com", name="Me")
        self.api.bearer(self.login("me@example.com")["accessToken"])

    def me(self) -> dict:
        response = self.api.get("/api/auth/me")
        self.assertEqual(response.status_code, 200)
        return response.json()

    def test_me_is_cached_five_minutes(self):
        first, second = self.me(), self.me()
        self.assertIs(first["fromCache"], False)
        self.assertIs(second["fromCache"], True)
        self.assertEqual(
            first["data"],
            {
                "id": self.user.pk,
                "email": "me@example.com",
                "name": "Me",
                "isStaff": False,
                "dateJoined": self.user.date_joined.isoformat(),
            },
        )
        ttl = self.redis.ttl(f"AuthService_auth:profile:{self.user.pk}")
        self.assertTrue(0 < ttl <= 300)

    def test_orm_save_invalidates(self):
        self.me()
        with self.captureOnCommitCallbacks(execute=True):
            self.user.name = "Renamed"
            self.user.save()
        body = self.me()
        self.assertEqual((body["fromCache"], body["data"]["name"]), (False, "Renamed"))

    def test_queryset_update_invalidates(self):
        self.me()
        with self.captureOnCommitCallbacks(execute=True):
            User.objects.filter(pk=self.user.pk).update(is_staff=True)
        # The token record carries the staff flag too, and was invalidated with the profile.
        self.assertIs(self.api.post("/api/auth/validate-token").json()["fromCache"], False)
        self.assertEqual(self.me()["data"]["isStaff"], True)

    def test_django_admin_change_invalidates(self):
        self.me()
        admin = User.objects.create_superuser("root@example.com", PASSWORD)
        browser = self.client_class()
        browser.force_login(admin)
        with self.captureOnCommitCallbacks(execute=True):
            response = browser.post(
                f"/admin/auth_app/user/{self.user.pk}/change/",
                {
                    "email": "me@example.com",
                    "name": "Via Admin",
                    "is_active": "on",
                    "last_login_0": "",
                    "last_login_1": "",
                    "date_joined_0": self.user.date_joined.strftime("%Y-%m-%d"),
                    "date_joined_1": self.user.date_joined.strftime("%H:%M:%S"),
                },
            )
        self.assertEqual(response.status_code, 302, response.content[:2000])
        self.assertEqual(self.me()["data"]["name"], "Via Admin")

    def test_deactivated_user_is_locked_out_at_once(self):
        self.me()
        with self.captureOnCommitCallbacks(execute=True):
            self.user.is_active = False
            self.user.save()
        self.assertEqual(self.api.get("/api/auth/me").status_code, 401)

    def test_deleted_user_is_locked_out_at_once(self):
        self.me()
        with self.captureOnCommitCallbacks(execute=True):
            self.user.delete()
        self.assertEqual(self.api.get("/api/auth/me").status_code, 401)
