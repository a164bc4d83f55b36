"""Mistakes a newcomer's client makes are answered so they can be fixed: another scheme, a wrong type."""

from __future__ import annotations

from auth_app.tests.factories import PASSWORD, make_token, make_user
from techbirdsfly.testing import CacheTestCase


class AuthorizationSchemeTests(CacheTestCase):
    def test_another_scheme_is_told_to_use_bearer(self):
        token = make_token(make_user())
        for header in (f"Token {token}", f"Basic {token}", "JWT x"):
            with self.subTest(header=header.split()[0]):
                self.api.credentials(HTTP_AUTHORIZATION=header)
                response = self.api.get("/api/auth/me")
                self.assertEqual(response.status_code, 401)
                self.assertIn("Bearer <accessToken>", response.json()["detail"])
                self.assertTrue(response["WWW-Authenticate"].startswith("Bearer"))

    def test_no_header_still_says_no_credentials_and_bearer_still_works(self):
        token = make_token(make_user())
        self.assertIn("not provided", self.api.get("/api/auth/me").json()["detail"])
        self.assertEqual(self.api.bearer(token).get("/api/auth/me").status_code, 200)
        self.api.credentials(HTTP_AUTHORIZATION=f"bearer {token}")
        self.assertEqual(self.api.get("/api/auth/me").status_code, 200)  # the scheme is case-insensitive


class LoginTypesTests(CacheTestCase):
    def test_a_number_for_email_or_password_is_a_type_error_naming_the_field(self):
        make_user(email="123@example.com")
        for body, field in (
            ({"email": 123, "password": PASSWORD}, "email"),
            ({"email": "123@example.com", "password": 123}, "password"),
            ({"email": ["a@example.com"], "password": PASSWORD}, "email"),
        ):
            with self.subTest(body=body):
                response = self.api.post("/api/auth/login", body)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json()[field], ["A JSON string is required."])

    def test_password_change_and_refresh_fields_are_strings_too(self):
        token = make_token(make_user())
        response = self.api.bearer(token).post("/api/auth/password", {"currentPassword": 1, "newPassword": 2})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(set(response.json()), {"currentPassword", "newPassword"})
        response = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": 12345})
        self.assertEqual(response.status_code, 400)
        self.assertIn("refreshToken", response.json())
