"""Integrity of the cache against whoever can write to Redis, and against a Redis that comes back older.

API.md, settled details: a Redis writer "cannot make the app serve anything it did not compute for
that very key: an entry copied, moved or replayed to another key is never served"; "a Redis that
comes back holding older data ... never brings back a revoked token ... or data older than a write the
API acknowledged"; "lookups of what does not exist leave nothing in Redis that outlives 60 s".

Everything goes through gunicorn (two workers) to this class's private Redis and the test database.
"""

from __future__ import annotations

import secrets
import time

from django.test import tag
from django.utils import timezone

from auth_app import cache as auth_cache
from auth_app.models import User
from auth_app.tokens import token_hash
from billing_app import cache as billing_cache
from billing_app.money import month_start
from faults.load import Actor
from faults.tests.support import ensure_prices, make_actor
from image_app import cache as image_cache
from techbirdsfly.cache import APPS
from techbirdsfly.testing import GunicornServer, LiveTestCase, http_json, poll_until, server_env
from user_app import cache as user_cache


def generation_key(scope: str) -> str:
    return f"{scope}:gen"  # as the cache layer names it (spelled out: this file also runs on older code)


def redis_key(app: str, key: str) -> str:
    return f"{APPS[app]}_{key}"


def entries_of(actor: Actor) -> dict[str, tuple[str, str | None]]:
    """Every cached read of ``actor``: name -> (Redis key of the entry, Redis key of its generation)."""
    digest = token_hash(actor.token)
    month = f"{month_start(timezone.now()):%Y-%m}"
    account = billing_cache.account_scope(actor.account_id)
    return {
        "token": (redis_key("auth", auth_cache.token_key(digest)), auth_cache.token_key(digest)),
        "profile": (redis_key("auth", auth_cache.profile_key(actor.user_id)), auth_cache.user_scope(actor.user_id)),
        "summary": (redis_key("billing", billing_cache.summary_key(actor.account_id)), account),
        "usage": (redis_key("billing", billing_cache.usage_key(actor.account_id, month)), account),
        "invoices": (redis_key("billing", billing_cache.invoices_key(actor.account_id)), account),
        "image": (
            redis_key("image", image_cache.metadata_key(actor.image_id)),
            image_cache.image_scope(actor.image_id),
        ),
        "preferences": (
            redis_key("user", user_cache.preferences_key(actor.user_id)),
            user_cache.user_scope(actor.user_id),
        ),
    }


@tag("live")
class IntegrityTestCase(LiveTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = GunicornServer(env=server_env(CACHE_BREAKER_COOLDOWN="0.2"), workers=2).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        ensure_prices()

    def call(self, method: str, path: str, token: str | None = None, body: object = None) -> tuple[int, dict]:
        return http_json(self.server.url, method, path, token=token, body=body)

    def reads(self, actor: Actor) -> dict[str, tuple[int, dict]]:
        return {
            "token": self.call("POST", "/api/auth/validate-token", actor.token),
            "profile": self.call("GET", "/api/auth/me", actor.token),
            "summary": self.call("GET", f"/api/billing/summary/{actor.account_id}", actor.token),
            "usage": self.call("GET", f"/api/billing/usage/{actor.account_id}", actor.token),
            "invoices": self.call("GET", f"/api/billing/invoices/{actor.account_id}", actor.token),
            "image": self.call("GET", f"/api/images/{actor.image_id}", actor.token),
            "preferences": self.call("GET", f"/api/users/{actor.user_id}/preferences", actor.token),
        }

    def warm(self, actor: Actor) -> None:
        """Read everything until two rounds in a row come from Redis (both workers).

        An entry computed before a worker's journal follower read the rows of the actor's creation is
        refused once it has, and computed again: a round of hits comes after a poll or two.
        """
        rounds: list[dict[str, tuple[int, dict]]] = []

        def warm_round() -> bool:
            rounds.append(self.reads(actor))
            return all(status == 200 and body["fromCache"] for status, body in rounds[-1].values())

        self.assertTrue(poll_until(lambda: warm_round() and warm_round(), timeout=10, interval=0.05), rounds[-1])

    def copy(self, source: str, target: str) -> None:
        """What a Redis writer can do: DUMP one key and RESTORE it over another, TTL kept."""
        dumped = self.redis.dump(source)
        self.assertIsNotNone(dumped, source)
        ttl = max(self.redis.pttl(source), 1)
        self.redis.restore(target, ttl, dumped, replace=True)


class RedisWriterTests(IntegrityTestCase):
    def test_entries_and_generations_copied_over_another_users_are_never_served(self):
        staff = make_actor(staff=True, tag="staff")
        user = make_actor(tag="user")
        self.warm(staff)
        self.warm(user)
        theirs, mine = entries_of(staff), entries_of(user)
        for name, (entry, scope) in theirs.items():
            self.copy(entry, mine[name][0])
            self.copy(
                redis_key(name_app(entry), generation_key(scope)),
                redis_key(name_app(entry), generation_key(mine[name][1])),
            )

        status, _ = self.call("GET", "/api/admin/cache/stats", user.token)
        self.assertEqual(status, 403)  # the staff's token record under this token's key is no way in
        status, _ = self.call("POST", f"/api/billing/invoices/{user.account_id}", user.token)
        self.assertEqual(status, 403)
        for _ in range(3):  # both workers
            answers = self.reads(user)
            self.assertEqual(answers["token"][1]["userId"], user.user_id)
            self.assertEqual(answers["profile"][1]["data"]["id"], user.user_id)
            self.assertFalse(answers["profile"][1]["data"]["isStaff"])
            for name in ("summary", "usage"):
                self.assertEqual(answers[name][1]["data"]["accountId"], user.account_id, name)
            self.assertEqual(answers["image"][1]["data"]["id"], user.image_id)
        # The staff's logout still ends the staff's token, whatever was copied where.
        self.assertEqual(self.call("POST", "/api/auth/logout", staff.token)[0], 200)
        self.assertEqual(self.call("POST", "/api/auth/validate-token", staff.token)[0], 401)

    def test_the_dashboard_and_an_entry_of_another_app_swapped_are_never_served(self):
        staff = make_actor(staff=True, tag="staff")
        self.warm(staff)
        dashboard = redis_key("admin", "admin:dashboard")
        self.assertTrue(
            poll_until(
                lambda: self.call("GET", "/api/admin/analytics/dashboard", staff.token)[1]["fromCache"], timeout=5
            )
        )
        summary, _ = entries_of(staff)["summary"]
        saved = self.redis.dump(dashboard)
        self.copy(summary, dashboard)  # a billing entry where the dashboard's is
        for _ in range(3):
            status, body = self.call("GET", "/api/admin/analytics/dashboard", staff.token)
            self.assertEqual(status, 200)
            self.assertIn("users", body["data"])
        self.redis.restore(summary, 60_000, saved, replace=True)  # and the dashboard's where a summary is
        for _ in range(3):
            status, body = self.call("GET", f"/api/billing/summary/{staff.account_id}", staff.token)
            self.assertEqual(body["data"]["accountId"], staff.account_id)

    def test_an_entry_moved_to_another_key_of_the_same_scope_is_never_served(self):
        # Same scope, same (current) generation: only the key the entry names tells them apart.
        user = make_actor(tag="user")
        self.warm(user)
        mine = entries_of(user)
        self.copy(mine["usage"][0], mine["summary"][0])
        self.copy(mine["invoices"][0], mine["usage"][0])
        for _ in range(3):
            answers = self.reads(user)
            self.assertIn("totalInvoiced", answers["summary"][1]["data"])
            self.assertIn("byMetric", answers["usage"][1]["data"])

    def test_an_old_entry_replayed_with_its_old_generation_is_never_served(self):
        user = make_actor(tag="user")
        self.warm(user)
        summary, scope = entries_of(user)["summary"]
        gen = redis_key("billing", generation_key(scope))
        old_entry, old_gen = self.redis.dump(summary), self.redis.dump(gen)
        status, _ = self.call(
            "POST", "/api/billing/usage", user.token, {"accountId": user.account_id, "metric": "api.call", "units": 7}
        )
        self.assertEqual(status, 201)
        self.call("GET", f"/api/billing/summary/{user.account_id}", user.token)
        # Every worker has noted the write's journal row: pushed to it as the write committed, and at the
        # latest read at its next poll (CACHE_JOURNAL_POLL, 1 s), which is what this waits for, so a
        # busy machine that delays the push fails nothing; the one that made the write knew it at once.
        time.sleep(1.5)
        self.redis.restore(summary, 60_000, old_entry, replace=True)
        self.redis.restore(gen, 60_000, old_gen, replace=True)
        for _ in range(6):
            status, body = self.call("GET", f"/api/billing/summary/{user.account_id}", user.token)
            self.assertEqual(body["data"]["totalUsageUnits"], 7, body)

    def test_lookups_of_what_does_not_exist_leave_nothing_that_outlives_60_seconds(self):
        user = make_actor(tag="user")
        before = set(self.redis.scan_iter(count=1000))
        for i in range(40):
            self.call("GET", "/api/auth/me", secrets.token_urlsafe(32))
            self.call("POST", "/api/auth/validate-token", body={"token": secrets.token_urlsafe(32)})
            self.call("GET", f"/api/billing/summary/{10_000_000 + i}", user.token)
            self.call("GET", f"/api/images/{10_000_000 + i}", user.token)
            self.call("GET", f"/api/users/{10_000_000 + i}/preferences", user.token)
        left = {key: self.redis.ttl(key) for key in set(self.redis.scan_iter(count=1000)) - before}
        long_lived = {key: ttl for key, ttl in left.items() if ttl == -1 or ttl > 60}
        # The user's own token record and profile may be cached by now (their TTLs are the policy's).
        mine = {entry.encode() for entry, _ in entries_of(user).values()}
        mine |= {redis_key(name_app(e), generation_key(s)).encode() for e, s in entries_of(user).values()}
        self.assertEqual({k: v for k, v in long_lived.items() if k not in mine}, {})


def name_app(redis_key_: str) -> str:
    prefix = redis_key_.split("_", 1)[0]
    return next(app for app, p in APPS.items() if p == prefix)


class OlderRedisTests(IntegrityTestCase):
    """SAVE, then writes (logout, usage, deactivation, a password set), then Redis killed and restarted on that save."""

    def test_revocations_and_writes_survive_a_restart_from_an_older_dump(self):
        tags = ("leaving", "paying", "deactivated", "new-password")
        leaving, paying, deactivated, repassworded = (make_actor(tag=tag) for tag in tags)
        for actor in (leaving, paying, deactivated, repassworded):
            self.warm(actor)
        before = self.call("GET", f"/api/billing/summary/{paying.account_id}", paying.token)[1]["data"]
        self.redis.save()

        self.assertEqual(self.call("POST", "/api/auth/logout", leaving.token)[0], 200)
        status, _ = self.call(
            "POST",
            "/api/billing/usage",
            paying.token,
            {"accountId": paying.account_id, "metric": "api.call", "units": 4},
        )
        self.assertEqual(status, 201)
        user = User.objects.get(pk=deactivated.user_id)
        user.is_active = False
        user.save()  # this process, not gunicorn's: another writer
        user = User.objects.get(pk=repassworded.user_id)
        user.set_password("a-new-password-after-the-save")
        user.save()

        self.redis_server.kill()
        self.redis_server.start()  # dump.rdb from the SAVE: every entry above is back, as it was
        for actor in (leaving, paying, deactivated, repassworded):
            token_entry, _ = entries_of(actor)["token"]
            self.assertEqual(self.redis.exists(token_entry), 1)

        for _ in range(10):
            self.assertEqual(self.call("POST", "/api/auth/validate-token", leaving.token)[0], 401)
            self.assertEqual(self.call("GET", "/api/auth/me", deactivated.token)[0], 401)
            self.assertEqual(self.call("GET", "/api/auth/me", repassworded.token)[0], 401)
            status, body = self.call("GET", f"/api/billing/summary/{paying.account_id}", paying.token)
            self.assertEqual((status, body["data"]["totalUsageUnits"]), (200, before["totalUsageUnits"] + 4))
        # And caching resumes on the restarted Redis.
        path = f"/api/billing/summary/{paying.account_id}"
        self.assertTrue(poll_until(lambda: self.call("GET", path, paying.token)[1]["fromCache"], timeout=5))
