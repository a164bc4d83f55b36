"""The cache layer against a Redis writer's junk, a malformed reply and a probe that stalls.

Junk is planted with redis-py in the private test Redis, with no more than the app's own rights
(write its keys); malformed replies and stalls come from a fake RESP server (fake_redis.py) the app's
aliases are pointed at. In every case the answer comes from the database, at once, never a 500.
"""

from __future__ import annotations

import hashlib
import threading
import time

from django.conf import settings
from django.test import override_settings
from prometheus_client import REGISTRY
from redis.exceptions import TimeoutError as RedisTimeoutError

from auth_app.models import LoginFailure
from auth_app.tests.factories import PASSWORD, make_token, make_user
from auth_app.tokens import email_hash, token_hash
from techbirdsfly.cache import calls, fills, get_or_compute, reset_breakers
from techbirdsfly.cache.calls import breaker_for, cache_for
from techbirdsfly.cache.scope import request_scope
from techbirdsfly.testing import CacheTestCase, breaker_clock, caches_at
from techbirdsfly.tests.fake_redis import OK, Error, FakeRedis, nils, resp


def fill_polls(app: str) -> float:
    return REGISTRY.get_sample_value("techbirdsfly_cache_fill_polls_total", {"app": app}) or 0.0


def cache_errors(app: str) -> float:
    return REGISTRY.get_sample_value("techbirdsfly_cache_errors_total", {"app": app}) or 0.0


def cache_wait_ms(response) -> float:
    """What the layer measured the request waiting on Redis (Server-Timing: cache;dur=<ms>)."""
    return float(response["Server-Timing"].partition("dur=")[2])


class JunkKeysTests(CacheTestCase):
    """Whoever can write the app's keys: a wrong type or a lock that is not the app's is a miss."""

    def setUp(self) -> None:
        super().setUp()
        self.user = make_user()
        self.token = make_token(self.user)
        self.token_key = f"AuthService_auth:token:{token_hash(self.token)}"
        self.profile_key = f"AuthService_auth:profile:{self.user.pk}"
        self.junk = [
            f"{self.token_key}:gen",  # the token record's scope: a list
            f"AuthService_auth:user:{self.user.pk}:gen",  # the profile's scope: a list
            f"{self.token_key}:lock",  # a lock with no owner and no TTL
            f"{self.profile_key}:lock",  # a lock of another type
            self.profile_key,  # an entry of another type
        ]

    def plant(self) -> None:
        self.redis.rpush(self.junk[0], "junk")
        self.redis.rpush(self.junk[1], "junk")
        self.redis.set(self.junk[2], "1")
        self.redis.rpush(self.junk[3], "junk")
        self.redis.hset(self.junk[4], "v", "junk")

    @override_settings(CACHE_FILL_WAIT=1.0)
    def test_junk_at_every_key_of_a_request_costs_it_no_wait(self) -> None:
        self.plant()
        self.api.bearer(self.token)
        for attempt in range(3):
            polls = fill_polls("auth")
            response = self.api.get("/api/auth/me")
            self.assertEqual(response.status_code, 200)
            # Computed from the database at first; the fill replaced the junk at the generation keys and
            # the entry (stamps.CLAIM, a SET), so from the second request on it is a hit, while
            # the junk locks are still there.
            expected = (attempt > 0, self.user.pk)
            self.assertEqual((response.json()["fromCache"], response.json()["data"]["id"]), expected)
            # One look at each of the two locks (the token's, the profile's): neither is a lease of the
            # app's, so neither is waited for. Trusted, they would be polled until CACHE_FILL_WAIT.
            self.assertLessEqual(fill_polls("auth") - polls, 2)
            self.assertLessEqual(cache_wait_ms(response), 1000 * settings.CACHE_REQUEST_BUDGET)
        # The junk locks are still there (the app does not clean what it cannot read); the generation
        # keys are the app's again. Once the rest is gone, caching goes on by itself.
        self.assertEqual(self.redis.type(self.junk[0]), b"string")
        self.assertEqual(self.redis.type(self.junk[3]), b"list")
        self.redis.delete(*self.junk)
        self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], False)
        self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], True)

    def test_only_a_live_lease_the_app_signed_for_that_very_key_is_waited_for(self) -> None:
        cache = cache_for("admin")
        name = "AdminService_admin:dashboard:lock"
        live = fills._lease(cache, name)
        self.assertTrue(fills.held(cache, name, live))
        ended = cache.client._serializer.dumps({"k": name, "x": time.time() - 0.01, "n": "00"})
        for raw in (None, b"1", b"junk-with-no-ttl", live[:-2] + b"0}", ended, fills._lease(cache, name + "x")):
            with self.subTest(raw=raw):
                self.assertFalse(fills.held(cache, name, raw))

    @override_settings(CACHE_FILL_WAIT=1.0)
    def test_a_lease_copied_back_after_its_holder_let_go_holds_no_one_past_its_end(self) -> None:
        lock, _ = fills.try_lock("admin", cache_for("admin"), "admin:dashboard", ["AdminService_admin:dashboard"])
        name = "AdminService_admin:dashboard:lock"
        lease = self.redis.get(name)
        fills.unlock("admin", lock)
        self.redis.set(name, lease)  # put back, with no TTL
        ends = cache_for("admin").client._serializer.loads(lease)["x"]
        time.sleep(max(ends - time.time(), 0) + 0.01)
        polls = fill_polls("admin")
        result = get_or_compute("admin.dashboard", "admin:dashboard", lambda: {"ok": 1})
        self.assertEqual(result, ({"ok": 1}, False))
        self.assertEqual(fill_polls("admin") - polls, 1)

    def test_text_or_a_list_at_the_login_counters_still_counts_every_failure(self) -> None:
        # Counted in the database instead, as while Redis is down: never "no limit", never a 500.
        email = "counted@example.com"
        make_user(email=email)
        counters = [
            f"AuthService_auth:login-failures:{email_hash(email)}",
            f"AuthService_auth:address-failures:{hashlib.sha256(b'127.0.0.1').hexdigest()}",
        ]
        for junk in (b"junk", b"-1000000", None):
            with self.subTest(junk=junk):
                self.redis.delete(*counters)
                LoginFailure.objects.all().delete()
                for key in counters:
                    if junk is None:
                        self.redis.rpush(key, "junk")
                    else:
                        self.redis.set(key, junk)
                for _ in range(10):
                    response = self.api.post("/api/auth/login", {"email": email, "password": "wrong"})
                    self.assertEqual(response.status_code, 401)
                response = self.api.post("/api/auth/login", {"email": email, "password": PASSWORD})
                self.assertEqual(response.status_code, 429)


class LeaseRenewalTests(CacheTestCase):
    """A renewal writes a new lease value; a release racing it must use the value Redis now holds."""

    def test_a_release_racing_a_renewal_waits_for_it_and_frees_the_lock(self) -> None:
        name = "AdminService_admin:dashboard:lock"
        lock, _ = fills.try_lock("admin", cache_for("admin"), "admin:dashboard", ["AdminService_admin:dashboard"])
        renewed, go = threading.Event(), threading.Event()

        class HeldAfterRenewal:
            """The lock's client: the renewal's script runs, then its thread waits before it goes on."""

            def __init__(self, client) -> None:
                self.client = client

            def __getattr__(self, attribute: str):
                return getattr(self.client, attribute)

            def eval(self, *args):
                done = self.client.eval(*args)  # Redis holds the new lease; the holder's token is the old one
                renewed.set()
                go.wait(5)
                return done

        lock.redis = HeldAfterRenewal(lock.redis)
        self.assertTrue(renewed.wait(5), "the renewing thread renewed the lease")
        releaser = threading.Thread(target=fills.unlock, args=("admin", lock))
        releaser.start()
        releaser.join(0.2)
        self.assertTrue(releaser.is_alive(), "the release waits for the renewal in flight")
        go.set()
        releaser.join(5)
        self.assertFalse(self.redis.exists(name), "released with the renewed lease, not left to expire")


# Each answer no Redis gives, to the command it is given for; every other command is answered as by a
# Redis holding nothing.
def _refusing_scripts(mget_reply: bytes):
    def answer(command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name in (b"EVALSHA", b"EVAL"):
            return resp(Error("ERR scripts are refused here"))  # so every read is an MGET
        return mget_reply if name == b"MGET" else OK

    return answer


MALFORMED = {
    "an MGET answered with fewer values than keys": _refusing_scripts(resp([None])),
    "an MGET answered with an integer": _refusing_scripts(resp(5)),
    "an MGET answered with an integer among its values": _refusing_scripts(resp([7, None])),
}


class MalformedReplyTests(CacheTestCase):
    """A reply no Redis sends is the cache being unavailable: the request is answered from the database."""

    def test_a_malformed_reply_is_redis_unavailable_never_a_500(self) -> None:
        user = make_user()
        self.api.bearer(make_token(user))
        fake = FakeRedis(lambda command: OK)  # its answer is set per case
        self.addCleanup(fake.close)
        for case, answer in MALFORMED.items():
            with self.subTest(case), override_settings(CACHES=caches_at(fake.url)):
                fake.answer = answer
                reset_breakers()
                errors = cache_errors("auth")
                response = self.api.get("/api/auth/me")
                self.assertEqual(response.status_code, 200)
                self.assertEqual((response.json()["fromCache"], response.json()["data"]["id"]), (False, user.pk))
                self.assertTrue(breaker_for("auth").is_open, "counted as Redis unavailable")
                self.assertGreater(
                    REGISTRY.get_sample_value("techbirdsfly_cache_errors_total", {"app": "auth"}), errors
                )


class HalfOpenProbeTests(CacheTestCase):
    """Whatever the breaker's probe ends in, the breaker leaves half-open, and caching resumes by itself."""

    @override_settings(CACHE_BREAKER_COOLDOWN=0.05, CACHE_REQUEST_BUDGET=0.1)
    def test_a_probe_that_runs_out_of_its_requests_time_is_not_the_last(self) -> None:
        stalled = {"MGET": True}

        def answer(command: list[bytes]) -> bytes | None:
            if command[0].upper() == b"MGET":
                return None if stalled["MGET"] else nils(command)  # the connect's INFO is answered
            return OK

        fake = FakeRedis(answer)
        self.addCleanup(fake.close)
        compute = lambda: {"ok": 1}  # noqa: E731
        with override_settings(CACHES=caches_at(fake.url)), breaker_clock() as clock:
            breaker = breaker_for("admin")
            get_or_compute("admin.dashboard", "admin:dashboard", compute)  # times out: the breaker opens
            self.assertTrue(breaker.is_open)
            clock.advance(0.06)  # past the cooldown
            # The probe, inside a request: INFO answered, then the MGET stalls past the request's budget.
            with request_scope():
                probes = len(fake.commands)
                self.assertEqual(get_or_compute("admin.dashboard", "admin:dashboard", compute).from_cache, False)
                self.assertIn([b"INFO", b"server", b"replication"], fake.commands[probes:])
                self.assertGreaterEqual(calls.request_cache_seconds(), 0.09)  # it ran out of time on Redis
            self.assertTrue(breaker.is_open)
            stalled["MGET"] = False  # Redis answers again
            clock.advance(0.06)
            get_or_compute("admin.dashboard", "admin:dashboard", compute)
            self.assertFalse(breaker.is_open, "a new probe was let through and closed the breaker")

    @override_settings(CACHE_BREAKER_COOLDOWN=0.0)
    def test_a_probe_that_ends_in_an_error_of_no_kind_the_breaker_knows_is_not_the_last(self) -> None:
        breaker = breaker_for("admin")
        breaker.failure(RedisTimeoutError("down"))

        def bug() -> None:
            raise KeyError("not Redis's doing")

        with self.assertRaises(KeyError):
            calls.redis_call("admin", bug)  # the probe
        self.assertTrue(breaker.is_open)
        self.assertTrue(breaker.allow(), "the next caller may probe")
