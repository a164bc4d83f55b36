"""A Redis that answers but refuses writes must not serve stale data.

Under maxmemory (test_redis_faults), invalidations refused with OOM are parked in the database. Unless
something replays them once Redis has room again, cached summaries and preferences stay stale for
their whole TTL: no connection broke, so no reconnect replays them.
"""

from __future__ import annotations

from django.test import override_settings

from auth_app.models import User
from auth_app.services import token_pair_issue
from techbirdsfly.cache.calls import breaker_for
from techbirdsfly.models import CacheJournal
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
        # Far under what Redis uses, so every write that needs memory is refused whatever the memory
        # does meanwhile (at exactly the memory used, a buffer freed let the next write through).
        self.redis.config_set("maxmemory-policy", "noeviction")
        self.redis.config_set("maxmemory", 1)

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
        # The generation is gone from Redis, for every process at once.
        self.assertEqual(self.redis.exists(f"UserService_user:user:{self.user.pk}:gen"), 0)
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
        self.assertFalse(breaker_for("user").is_open)

    def test_an_invalidation_redis_refuses_without_a_broken_connection_still_holds(self):
        # Redis answers reads but refuses every write, DEL included (as after a failed snapshot with
        # stop-writes-on-bgsave-error, or an ACL mistake): the invalidation is only in the journal, while
        # every connection stays up, so no reconnect would ever trigger a replay.
        self.read()
        self.assertIs(self.read()["fromCache"], True)
        self.addCleanup(self.redis.execute_command, "ACL", "SETUSER", "default", "+@all")
        self.redis.execute_command("ACL", "SETUSER", "default", "-@write")
        self.assertEqual(self.api.patch(self.path, {"language": "fr"}).status_code, 200)
        self.assertTrue(CacheJournal.objects.filter(app="user").exists())
        self.assertEqual(self.read()["data"]["language"], "fr")  # the entry is older than the journal's row
        self.redis.execute_command("ACL", "SETUSER", "default", "+@all")
        self.assertEqual(self.read()["data"]["language"], "fr")
        self.assertEqual(self.read(), {"fromCache": True, "data": {**self.read()["data"], "language": "fr"}})
