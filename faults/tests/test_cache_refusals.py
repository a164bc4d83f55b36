"""Regressions found by the fault suite: a Redis that answers but refuses writes must not serve stale data.

The maxmemory scenario of test_redis_faults found cached summaries and preferences that stayed stale
for their whole TTL after Redis had room again: invalidations refused with OOM were parked in the
database, and nothing replayed them, because no connection had broken.
"""

from __future__ import annotations

from django.test import override_settings

from auth_app.models import User
from auth_app.services import token_pair_issue
from techbirdsfly.cache import layer
from techbirdsfly.models import PendingInvalidation
from techbirdsfly.testing import CacheTestCase


@override_settings(CACHE_BREAKER_COOLDOWN=60)
class RefusedWritesTests(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("full@faults.example", None, name="Full")
        self.api.bearer(token_pair_issue(user=self.user).access_token)
        self.path = f"/api/users/{self.user.pk}/preferences"
        self.addCleanup(self.redis.config_set, "maxmemory", 0)

    def fill_redis(self) -> None:
        self.redis.config_set("maxmemory-policy", "noeviction")
        self.redis.config_set("maxmemory", self.redis.info("memory")["used_memory"])

    def read(self) -> dict:
        response = self.api.get(self.path)
        self.assertEqual(response.status_code, 200)
        return response.json()

    def test_a_write_refused_with_oom_still_makes_the_entry_stale_everywhere(self):
        self.read()
        self.assertIs(self.read()["fromCache"], True)
        self.fill_redis()
        self.assertEqual(self.api.patch(self.path, {"language": "de"}).status_code, 200)
        answer = self.read()
        self.assertEqual(answer["data"]["language"], "de")
        self.assertIs(answer["fromCache"], False)
        # Nothing waits for a replay: the generation is gone from Redis, for every process at once.
        self.assertFalse(PendingInvalidation.objects.exists())
        self.redis.config_set("maxmemory", 0)
        self.read()
        self.assertEqual(self.read(), {"fromCache": True, "data": {**answer["data"]}})

    def test_refused_fills_do_not_stop_the_hits(self):
        self.read()
        self.assertIs(self.read()["fromCache"], True)
        self.fill_redis()
        me = self.api.get("/api/auth/me").json()  # a miss whose fill Redis refuses
        self.assertIs(me["fromCache"], False)
        # The server answered; the breaker stays closed and the entries already there are still served.
        self.assertIs(self.read()["fromCache"], True)
        self.assertFalse(layer.breaker_for("user").is_open)

    def test_an_invalidation_parked_without_a_broken_connection_is_replayed(self):
        # Redis answers reads but refuses every write, DEL included (as after a failed snapshot with
        # stop-writes-on-bgsave-error, or an ACL mistake): the invalidation is parked in the database
        # while every connection stays up, so no reconnect would ever trigger its replay.
        self.read()
        self.assertIs(self.read()["fromCache"], True)
        self.addCleanup(self.redis.execute_command, "ACL", "SETUSER", "default", "+@all")
        self.redis.execute_command("ACL", "SETUSER", "default", "-@write")
        self.assertEqual(self.api.patch(self.path, {"language": "fr"}).status_code, 200)
        self.assertTrue(PendingInvalidation.objects.exists())
        self.assertEqual(self.read()["data"]["language"], "fr")  # this process distrusts Redis until it replays
        self.redis.execute_command("ACL", "SETUSER", "default", "+@all")
        self.assertEqual(self.read()["data"]["language"], "fr")
        self.assertFalse(PendingInvalidation.objects.exists())
        self.assertEqual(self.read(), {"fromCache": True, "data": {**self.read()["data"], "language": "fr"}})
