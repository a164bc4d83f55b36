"""GET /api/admin/cache/stats, GET /api/admin/cache/{app}/keys, DELETE /api/admin/cache/{app}."""

from __future__ import annotations

from admin_app.key_pages import PageCursor
from techbirdsfly.cache import APPS, get_or_compute
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.testing import CacheTestCase, test_redis

from .factories import make_token, make_user

ENDPOINTS = [
    ("get", "/api/admin/analytics/dashboard"),
    ("get", "/api/admin/cache/stats"),
    ("get", "/api/admin/cache/billing/keys"),
    ("delete", "/api/admin/cache/billing"),
]


class AdminTestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = make_user(staff=True)
        self.staff_token = make_token(self.staff)
        self.api.bearer(self.staff_token)

    def seed(self, app: str, count: int, ttl: int = 300, stem: str = "seed") -> list[str]:
        keys = [f"{APPS[app]}_{app}:{stem}:{i}" for i in range(count)]
        for key in keys:
            self.redis.set(key, b'"x"', ex=ttl)
        return keys


class AccessTests(AdminTestCase):
    def test_anonymous_gets_401_everywhere(self):
        self.api.bearer(None)
        for method, path in ENDPOINTS:
            with self.subTest(path=path):
                response = getattr(self.api, method)(path)
                self.assertEqual(response.status_code, 401)
                self.assertTrue(response["WWW-Authenticate"].startswith("Bearer"))

    def test_invalid_token_gets_401(self):
        self.api.bearer("not-a-token")
        for method, path in ENDPOINTS:
            with self.subTest(path=path):
                self.assertEqual(getattr(self.api, method)(path).status_code, 401)

    def test_non_staff_gets_403_everywhere(self):
        self.api.bearer(make_token(make_user()))
        for method, path in ENDPOINTS:
            with self.subTest(path=path):
                response = getattr(self.api, method)(path)
                self.assertEqual(response.status_code, 403)
                self.assertIn("detail", response.json())

    def test_non_staff_gets_403_before_404_for_an_unknown_app(self):
        keys = self.seed("billing", 2)
        self.api.bearer(make_token(make_user()))
        self.assertEqual(self.api.get("/api/admin/cache/nope/keys").status_code, 403)
        self.assertEqual(self.api.delete("/api/admin/cache/nope").status_code, 403)
        self.assertEqual(self.api.delete("/api/admin/cache/billing").status_code, 403)
        self.assertEqual(self.redis.exists(*keys), 2)

    def test_unknown_app_is_404(self):
        for method, path in [("get", "/api/admin/cache/nope/keys"), ("delete", "/api/admin/cache/nope")]:
            with self.subTest(path=path):
                response = getattr(self.api, method)(path)
                self.assertEqual(response.status_code, 404)
                self.assertIn("nope", response.json()["detail"])

    def test_default_alias_is_not_an_app(self):
        # The ``default`` alias (DRF throttles) is not one of the apps and cannot be listed or cleared.
        self.assertEqual(self.api.delete("/api/admin/cache/default").status_code, 404)


class StatsTests(AdminTestCase):
    def test_shape_and_key_counts(self):
        self.seed("billing", 3)
        self.seed("image", 2)
        response = self.api.get("/api/admin/cache/stats")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(set(body["apps"]), set(APPS))
        for stats in body["apps"].values():
            self.assertLessEqual({"hits", "misses", "errors", "hitRatio", "keys"}, set(stats))
        self.assertEqual(body["apps"]["billing"]["keys"], 3)
        self.assertEqual(body["apps"]["image"]["keys"], 2)
        self.assertEqual(body["apps"]["user"]["keys"], 0)
        self.assertGreater(body["apps"]["billing"]["memoryBytes"], 0)
        redis = body["redis"]
        self.assertEqual(redis["status"], "up")
        self.assertEqual(redis["version"], self.redis.info("server")["redis_version"])
        self.assertIsInstance(redis["usedMemory"], int)
        self.assertIn("maxmemory", redis)
        self.assertEqual(redis["maxmemoryPolicy"], self.redis.config_get("maxmemory-policy")["maxmemory-policy"])

    def test_counts_move_by_the_reads_made(self):
        before = self.api.get("/api/admin/cache/stats").json()["apps"]["user"]
        for _ in range(3):
            get_or_compute("user.preferences", "user:preferences:test", lambda: {"theme": "dark"})
        after = self.api.get("/api/admin/cache/stats").json()["apps"]["user"]
        self.assertEqual(after["misses"] - before["misses"], 1)
        self.assertEqual(after["hits"] - before["hits"], 2)
        self.assertGreater(after["hitRatio"], 0)


class KeysTests(AdminTestCase):
    def test_walks_every_key_of_one_app_with_ttls(self):
        billing = set(self.seed("billing", 25, ttl=600))
        self.seed("auth", 5)
        found, cursor, pages = [], "0", 0
        while True:
            response = self.api.get("/api/admin/cache/billing/keys", {"count": 7, "cursor": cursor})
            self.assertEqual(response.status_code, 200)
            body = response.json()
            self.assertEqual(body["app"], "billing")
            found += body["keys"]
            cursor, pages = body["cursor"], pages + 1
            self.assertIsInstance(cursor, str)
            if cursor == "0":
                break
            self.assertLess(pages, 100)
        self.assertEqual({k["key"] for k in found}, billing)
        self.assertEqual(len(found), len(billing))
        for entry in found:
            self.assertTrue(0 < entry["ttl"] <= 600)

    def walk(self, app: str, *, count: int, between_pages=None) -> tuple[list[dict], list[int]]:
        """Every page of ``app``'s keys: the keys listed and each page's size; asserts API.md's page rules."""
        found, sizes, cursor, self.cursors = [], [], "0", []
        while True:
            response = self.api.get(f"/api/admin/cache/{app}/keys", {"count": count, "cursor": cursor})
            self.assertEqual(response.status_code, 200, response.content)
            body = response.json()
            found += body["keys"]
            sizes.append(len(body["keys"]))
            self.assertLessEqual(len(body["keys"]), count)
            cursor = body["cursor"]
            self.cursors.append(cursor)
            if cursor == "0":
                return found, sizes
            self.assertGreater(len(body["keys"]), 0, f"page {len(sizes)} is empty but not the last")
            self.assertLess(len(sizes), 1000)
            if between_pages:
                between_pages(body["keys"])

    def _many_other_keys(self, n: int = 20_000) -> None:
        # Other apps' keys fill the buckets SCAN visits, so most of its batches hold no billing key.
        pipe = self.redis.pipeline(transaction=False)
        for i in range(n):
            pipe.set(f"AuthService_auth:filler:{i}", b"x", ex=300)
        pipe.execute()

    def test_pages_are_never_empty_among_many_other_keys(self):
        self._many_other_keys()
        billing = set(self.seed("billing", 12))
        found, sizes = self.walk("billing", count=5)
        self.assertEqual(sorted(k["key"] for k in found), sorted(billing))  # each key once
        self.assertLessEqual(len(sizes), 12)
        self.assertNotIn(0, sizes[:-1])

    def test_a_batch_larger_than_count_is_handed_out_over_pages(self):
        # SCAN's COUNT is a hint: a step over 1,000 buckets finds far more than 5 of these keys.
        self._many_other_keys(2_000)
        billing = set(self.seed("billing", 600))
        found, sizes = self.walk("billing", count=5)
        self.assertEqual(sorted(k["key"] for k in found), sorted(billing))
        self.assertLessEqual(len(sizes), 600)

    def test_keys_expiring_between_pages_make_no_other_key_skipped(self):
        self._many_other_keys(2_000)
        billing = set(self.seed("billing", 300))
        given: list[str] = []

        def expire_what_was_listed(keys: list[dict]) -> None:
            given.extend(k["key"] for k in keys)
            self.redis.delete(*[k["key"] for k in keys])

        found, _ = self.walk("billing", count=7, between_pages=expire_what_was_listed)
        listed = [k["key"] for k in found]
        self.assertEqual(len(listed), len(set(listed)))
        self.assertEqual(set(listed), billing)

    def test_a_bucket_with_more_keys_than_count_is_handed_out_over_pages(self):
        # With count=1, any SCAN batch of two keys (one bucket, or a rehash step) is more than a page.
        billing = set(self.seed("billing", 300))
        found, _ = self.walk("billing", count=1)
        self.assertEqual(sorted(k["key"] for k in found), sorted(billing))
        self.assertTrue(any("." in cursor for cursor in self.cursors), "no page was inside a bucket")

    def test_a_cursor_inside_a_bucket_round_trips(self):
        key = "BillingService_billing:x"
        cursor = PageCursor(12, 34, key)
        self.assertRegex(cursor.encode(), r"^12\.34\.[A-Za-z0-9_-]+$")
        self.assertEqual(PageCursor.decode(cursor.encode()), cursor)
        self.assertEqual(PageCursor.decode("0"), PageCursor(0))

    def test_match_is_a_glob_after_the_prefix(self):
        self.seed("billing", 3, stem="summary")
        self.seed("billing", 4, stem="usage")
        response = self.api.get("/api/admin/cache/billing/keys", {"match": "billing:usage:*", "count": 1000})
        keys = [k["key"] for k in response.json()["keys"]]
        self.assertEqual(sorted(keys), [f"BillingService_billing:usage:{i}" for i in range(4)])

    def test_bad_count_and_cursor_are_400_naming_the_field(self):
        cases = [
            ({"count": "0"}, "count"),
            ({"count": "1001"}, "count"),
            ({"count": "ten"}, "count"),
            ({"cursor": "abc"}, "cursor"),
            ({"cursor": "-1"}, "cursor"),
            ({"cursor": "1.5"}, "cursor"),
            ({"cursor": str(2**64)}, "cursor"),
            ({"cursor": "1.2"}, "cursor"),
            ({"cursor": "0.1000.!!"}, "cursor"),
            ({"cursor": "0.0."}, "cursor"),
        ]
        for params, field in cases:
            with self.subTest(params=params):
                response = self.api.get("/api/admin/cache/billing/keys", params)
                self.assertEqual(response.status_code, 400)
                self.assertIn(field, response.json())

    def test_bounds_are_accepted(self):
        for count in ("1", "1000"):
            self.assertEqual(self.api.get("/api/admin/cache/billing/keys", {"count": count}).status_code, 200)


class ClearTests(AdminTestCase):
    def test_clears_one_app_and_leaves_the_others(self):
        billing = self.seed("billing", 1200)  # more than one UNLINK batch
        others = self.seed("auth", 3) + self.seed("image", 2)
        response = self.api.delete("/api/admin/cache/billing")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"app": "billing", "deleted": len(billing)})
        self.assertEqual(self.redis.exists(*billing), 0)
        self.assertEqual(self.redis.exists(*others), len(others))

    def test_clearing_billing_keeps_tokens_working(self):
        user = make_user()
        login = self.client.post(
            "/api/auth/login", {"email": user.email, "password": "correct horse battery staple"}, "application/json"
        )
        token = login.json()["accessToken"]
        self.api.bearer(token)
        self.assertEqual(self.api.post("/api/auth/validate-token").status_code, 200)  # caches the record
        auth_keys = {k for k in self.redis_keys() if k.startswith("AuthService_")}
        self.assertTrue(auth_keys)
        self.seed("billing", 5)

        self.api.bearer(self.staff_token)
        self.assertEqual(self.api.delete("/api/admin/cache/billing").json()["deleted"], 5)

        self.assertLessEqual(auth_keys, set(self.redis_keys()))
        self.api.bearer(token)
        response = self.api.post("/api/auth/validate-token")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["userId"], user.pk)
        self.assertTrue(response.json()["fromCache"])

    def test_other_prefixes_that_merely_look_alike_stay(self):
        # Keys of the ``default`` alias and keys without any of our prefixes are not the app's.
        self.redis.set("TechBirdsFly_throttle:x", b"1", ex=60)
        self.redis.set("BillingServiceX_other", b"1", ex=60)
        self.seed("billing", 1)
        self.assertEqual(self.api.delete("/api/admin/cache/billing").json()["deleted"], 1)
        self.assertEqual(self.redis.exists("TechBirdsFly_throttle:x", "BillingServiceX_other"), 2)


class RedisDownTests(AdminTestCase):
    def setUp(self) -> None:
        super().setUp()
        test_redis().stop()
        self.addCleanup(self._restart)

    def _restart(self) -> None:
        test_redis().start()
        reset_breakers()

    def test_stats_report_redis_down(self):
        response = self.api.get("/api/admin/cache/stats")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["redis"]["status"], "down")
        self.assertIsNone(body["redis"]["usedMemory"])
        self.assertIsNone(body["apps"]["billing"]["keys"])

    def test_keys_and_clear_answer_503_json(self):
        for method, path in [("get", "/api/admin/cache/billing/keys"), ("delete", "/api/admin/cache/billing")]:
            with self.subTest(path=path):
                response = getattr(self.api, method)(path)
                self.assertEqual(response.status_code, 503)
                self.assertIn("Redis is unavailable", response.json()["detail"])
                self.assertEqual(response["Retry-After"], "5")

    def test_analytics_and_the_dashboard_data_still_answer(self):
        response = self.api.get("/api/admin/analytics/dashboard")
        self.assertEqual(response.status_code, 200)
        self.assertFalse(response.json()["fromCache"])
        self.client.force_login(self.staff)
        body = self.client.get("/dashboard/data").json()
        self.assertEqual(body["cache"]["redis"]["status"], "down")
        self.assertFalse(body["analytics"]["fromCache"])
        self.assertEqual(body["analytics"]["data"]["users"]["total"], 1)
