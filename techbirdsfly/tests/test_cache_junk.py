"""The cache layer against a Redis writer's junk, a malformed reply and a probe that stalls.

Junk is planted with redis-py in the private test Redis, with no more than the app's own rights
(write its keys); malformed replies and stalls come from a fake RESP server (fake_redis.py) the app's
aliases are pointed at. In every case the answer comes from the database, at once, never a 500.
"""

from __future__ import annotations

import time

from django.test import override_settings
from prometheus_client import REGISTRY
from redis.exceptions import TimeoutError as RedisTimeoutError

from auth_app.tests.factories import make_token, make_user
from techbirdsfly.cache import calls, get_or_compute, reset_breakers
from techbirdsfly.cache.calls import breaker_for
from techbirdsfly.testing import CacheTestCase, caches_at
from techbirdsfly.tests.fake_redis import OK, Error, FakeRedis, nils, resp


def fill_polls(app: str) -> float:
    return REGISTRY.get_sample_value("techbirdsfly_cache_fill_polls_total", {"app": app}) or 0.0


def cache_errors(app: str) -> float:
    return REGISTRY.get_sample_value("techbirdsfly_cache_errors_total", {"app": app}) or 0.0


def cache_wait_ms(response) -> float:
    """What the layer measured the request waiting on Redis (Server-Timing: cache;dur=<ms>)."""
    return float(response["Server-Timing"].partition("dur=")[2])


# Each answer no Redis gives, to the command it is given for; every other command is answered as by a
# Redis holding nothing.
def _refusing_scripts(mget_reply: bytes):
    def answer(command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name in (b"EVALSHA", b"EVAL"):
            return resp(Error("ERR scripts are refused here"))  # so the request reads by MGET
        return mget_reply if name == b"MGET" else OK

    return answer


def _script_answering(script_reply: bytes):
    def answer(command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name in (b"EVALSHA", b"EVAL"):
            return script_reply
        return nils(command) if name == b"MGET" else OK

    return answer


MALFORMED = {
    "an MGET answered with fewer values than keys": _refusing_scripts(resp([None])),
    "an MGET answered with an integer": _refusing_scripts(resp(5)),
    "an MGET answered with an integer among its values": _refusing_scripts(resp([7, None])),
    "the read-ahead script answered with an integer": _script_answering(resp(7)),
    "the read-ahead script answered with two parts of three": _script_answering(resp([[None, None], []])),
    "the read-ahead script answered with too few values": _script_answering(resp([[None], [], []])),
    "the read-ahead script answered with keys and no values": _script_answering(
        resp([[None, None], [b"AuthService_auth:profile:1", b"AuthService_auth:user:1:gen"], []])
    ),
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
        with override_settings(CACHES=caches_at(fake.url)):
            breaker = breaker_for("admin")
            get_or_compute("admin.dashboard", "admin:dashboard", compute)  # times out: the breaker opens
            self.assertTrue(breaker.is_open)
            time.sleep(0.06)  # the cooldown
            # The probe, inside a request: INFO answered, then the MGET stalls past the request's budget.
            calls._start_budget()
            try:
                probes = len(fake.commands)
                self.assertEqual(get_or_compute("admin.dashboard", "admin:dashboard", compute).from_cache, False)
                self.assertIn([b"INFO", b"server", b"replication"], fake.commands[probes:])
                self.assertGreaterEqual(calls.request_cache_seconds(), 0.09)  # it ran out of time on Redis
            finally:
                calls._end_budget()
            self.assertTrue(breaker.is_open)
            stalled["MGET"] = False  # Redis answers again
            time.sleep(0.06)
            get_or_compute("admin.dashboard", "admin:dashboard", compute)
            self.assertFalse(breaker.is_open, "a new probe was let through and closed the breaker")

    @override_settings(CACHE_BREAKER_COOLDOWN=0.0)
    def test_a_probe_that_ends_in_an_error_of_no_kind_the_breaker_knows_is_not_the_last(self) -> None:
        breaker = breaker_for("admin")
        breaker.failure(RedisTimeoutError("down"))

        def bug() -> None:
            raise KeyError("not Redis's doing")

        with self.assertRaises(KeyError):
            calls.call("admin", bug)  # the probe
        self.assertTrue(breaker.is_open)
        self.assertTrue(breaker.allow(), "the next caller may probe")
