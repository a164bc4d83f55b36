"""Every row of API.md's user table, against the real Redis and database."""

from __future__ import annotations

from auth_app.models import User
from auth_app.tests.factories import make_token, make_user
from techbirdsfly.testing import CacheTestCase
from user_app.models import UserPreferences

DEFAULTS = {"theme": "system", "language": "en", "timezone": "UTC", "notifications": {"email": True, "push": True}}
FULL = {
    "theme": "dark",
    "language": "pt-BR",
    "timezone": "America/Sao_Paulo",
    "notifications": {"email": False, "push": True},
}


class PreferencesTestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.user = make_user()
        self.other = make_user()
        self.staff = make_user(staff=True)
        self.url = f"/api/users/{self.user.pk}/preferences"

    def as_user(self, user):
        return self.api.bearer(make_token(user) if user else None)


class ReadTests(PreferencesTestCase):
    def test_anonymous_is_401(self):
        self.assertEqual(self.api.get(self.url).status_code, 401)

    def test_defaults_when_never_set_first_from_the_database_then_from_redis(self):
        client = self.as_user(self.user)
        first = client.get(self.url)
        self.assertEqual(first.status_code, 200)
        self.assertEqual(first.json(), {"fromCache": False, "data": DEFAULTS})
        with self.assertNumQueries(0):
            second = client.get(self.url)
        self.assertEqual(second.json(), {"fromCache": True, "data": DEFAULTS})
        self.assertFalse(UserPreferences.objects.exists())  # reading creates nothing

    def test_keys_have_the_prefix_and_a_ttl(self):
        self.as_user(self.user).get(self.url)
        keys = [k for k in self.redis_keys() if not k.startswith("AuthService_")]
        self.assertIn(f"UserService_user:preferences:{self.user.pk}", keys)
        self.assertIn(f"UserService_user:user:{self.user.pk}:gen", keys)
        for key in keys:
            self.assertTrue(key.startswith("UserService_user:"), key)
            self.assertGreater(self.redis.ttl(key), 0, key)
        self.assertLessEqual(self.redis.ttl(f"UserService_user:preferences:{self.user.pk}"), 600)

    def test_staff_may_read_anyones_preferences(self):
        response = self.as_user(self.staff).get(self.url)
        self.assertEqual((response.status_code, response.json()["data"]), (200, DEFAULTS))

    def test_another_user_gets_404_even_from_a_warm_cache(self):
        self.as_user(self.user).get(self.url)
        self.assertEqual(self.as_user(self.other).get(self.url).status_code, 404)

    def test_unknown_and_malformed_user_ids_are_404(self):
        client = self.as_user(self.staff)
        for path in ("/api/users/999999/preferences", "/api/users/abc/preferences", "/api/users/1e3/preferences"):
            response = client.get(path)
            self.assertEqual(response.status_code, 404, path)
            self.assertEqual(response["Content-Type"], "application/json", path)
        self.assertNotIn("UserService_user:preferences:999999", self.redis_keys())

    def test_orm_and_admin_changes_invalidate(self):
        client = self.as_user(self.user)
        client.get(self.url)
        with self.captureOnCommitCallbacks(execute=True):
            UserPreferences.objects.create(user=self.user, theme="light")
        response = client.get(self.url).json()
        self.assertEqual((response["fromCache"], response["data"]["theme"]), (False, "light"))
        client.get(self.url)
        with self.captureOnCommitCallbacks(execute=True):
            UserPreferences.objects.filter(user=self.user).update(language="de")
        self.assertEqual(client.get(self.url).json()["data"]["language"], "de")

        superuser = make_user(staff=True, is_superuser=True)
        self.client.force_login(superuser)
        body = {"user": self.user.pk, "theme": "dark", "language": "fr", "timezone": "Europe/Paris"}
        body |= {"notify_email": "on", "updated_at_0": "2026-01-01", "updated_at_1": "00:00:00"}
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(f"/admin/user_app/userpreferences/{self.user.pk}/change/", body)
        self.assertEqual(response.status_code, 302, response.content[:2000])
        answer = client.get(self.url).json()
        self.assertFalse(answer["fromCache"])
        expected = {"theme": "dark", "language": "fr", "timezone": "Europe/Paris"}
        self.assertEqual(answer["data"], {**expected, "notifications": {"email": True, "push": False}})

    def test_deleting_the_user_drops_their_cached_preferences(self):
        self.as_user(self.staff).get(self.url)
        with self.captureOnCommitCallbacks(execute=True):
            User.objects.filter(pk=self.user.pk).delete()
        self.assertEqual(self.as_user(self.staff).get(self.url).status_code, 404)


class WriteTests(PreferencesTestCase):
    def test_anonymous_is_401(self):
        self.assertEqual(self.api.put(self.url, FULL).status_code, 401)
        self.assertEqual(self.api.patch(self.url, {"theme": "dark"}).status_code, 401)

    def test_put_replaces_everything_and_invalidates(self):
        client = self.as_user(self.user)
        client.get(self.url)
        response = client.put(self.url, FULL)
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json(), {"data": FULL})
        self.assertEqual(client.get(self.url).json(), {"fromCache": False, "data": FULL})
        self.assertTrue(client.get(self.url).json()["fromCache"])

    def test_put_needs_every_field(self):
        client = self.as_user(self.user)
        for missing in FULL:
            body = {k: v for k, v in FULL.items() if k != missing}
            response = client.put(self.url, body)
            self.assertEqual(response.status_code, 400, missing)
            self.assertIn(missing, response.json())
        response = client.put(self.url, {**FULL, "notifications": {"email": True}})
        self.assertEqual(response.status_code, 400)
        self.assertIn("push", response.json()["notifications"])
        self.assertFalse(UserPreferences.objects.exists())

    def test_patch_changes_only_what_it_names_and_invalidates(self):
        client = self.as_user(self.user)
        client.put(self.url, FULL)
        client.get(self.url)
        response = client.patch(self.url, {"theme": "light", "notifications": {"push": False}})
        self.assertEqual(response.status_code, 200, response.content)
        expected = {**FULL, "theme": "light", "notifications": {"email": False, "push": False}}
        self.assertEqual(response.json(), {"data": expected})
        self.assertEqual(client.get(self.url).json(), {"fromCache": False, "data": expected})

    def test_patch_from_the_defaults_creates_the_row(self):
        response = self.as_user(self.user).patch(self.url, {"timezone": "Asia/Tokyo"})
        self.assertEqual(response.json(), {"data": {**DEFAULTS, "timezone": "Asia/Tokyo"}})
        self.assertEqual(UserPreferences.objects.get(user=self.user).timezone, "Asia/Tokyo")

    def test_another_user_gets_404_and_staff_403(self):
        for method in ("put", "patch"):
            response = getattr(self.as_user(self.other), method)(self.url, FULL)
            self.assertEqual(response.status_code, 404, method)
            response = getattr(self.as_user(self.staff), method)(self.url, FULL)
            self.assertEqual(response.status_code, 403, method)
        # Before validation, too: a stranger learns nothing from a bad body.
        self.assertEqual(self.as_user(self.other).patch(self.url, {"timezone": "Mars/Base"}).status_code, 404)
        self.assertEqual(self.as_user(self.other).put("/api/users/999999/preferences", FULL).status_code, 404)
        self.assertFalse(UserPreferences.objects.exists())

    def test_bad_input_is_400_naming_the_field(self):
        cases = [
            ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
            ({"timezone": "utc"}, "timezone"),
            ({"timezone": "localtime"}, "timezone"),
            ({"timezone": "../../etc/passwd"}, "timezone"),
            ({"timezone": 5}, "timezone"),
            ({"timezone": "x" * 65}, "timezone"),
            ({"theme": "blue"}, "theme"),
            ({"theme": None}, "theme"),
            ({"language": ""}, "language"),
            ({"language": "english language"}, "language"),
            ({"language": "e"}, "language"),
            ({"language": "en-" + "a" * 40}, "language"),
            ({"language": ["en"]}, "language"),
            ({"notifications": {"email": "yes"}}, "notifications"),
            ({"notifications": {"push": 1}}, "notifications"),
            ({"notifications": None}, "notifications"),
            ({"notifications": "off"}, "notifications"),
        ]
        client = self.as_user(self.user)
        for change, field in cases:
            for method in ("put", "patch"):
                response = getattr(client, method)(self.url, {**FULL, **change} if method == "put" else change)
                self.assertEqual(response.status_code, 400, (method, change))
                self.assertIn(field, response.json(), (method, change))
        for raw in ("{oops", "[]", "null"):
            response = client.generic("PATCH", self.url, raw, content_type="application/json")
            self.assertEqual(response.status_code, 400, raw)
        self.assertFalse(UserPreferences.objects.exists())

    def test_valid_zones_and_tags_are_accepted(self):
        client = self.as_user(self.user)
        for zone in ("UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"):
            self.assertEqual(client.patch(self.url, {"timezone": zone}).status_code, 200, zone)
        for tag in ("de", "en-GB", "zh-Hant-TW", "sr-Latn-RS", "es-419"):
            self.assertEqual(client.patch(self.url, {"language": tag}).status_code, 200, tag)
        self.assertEqual(client.get(self.url).json()["data"]["language"], "es-419")
