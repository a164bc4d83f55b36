"""Invalidations that survive what Redis forgets, against gunicorn, redis-server and PostgreSQL.

API.md, settled details: "A Redis that comes back holding older data (restarted from an earlier
RDB/AOF, a failover to a replica that missed the last writes) never brings back a revoked token, a
changed password's tokens, or data older than a write the API acknowledged", and "A process whose
Redis connection is cut while the others' are not: its invalidations reach the others within 1 s."

- ``SentinelFailoverToStaleReplicaTests``: a Sentinel failover promotes a replica that missed a
  logout and a usage write (it was paused and its replication link dropped while they were made).
  The promoted replica really holds the revoked token's record and the old summary under their old
  generations; the app must neither validate the token nor serve the old summary, from its first
  answer after the failover on, and must cache again on the new master.
- ``CutOffProcessTests``: two gunicorn servers on one database and one Redis; A reaches Redis through
  the faults relay, B directly. With A's relay cut, a usage write and a logout made through A reach
  Redis only through the journal, and B must stop serving what they replaced within 1 s.
- ``JournalFirstLoadTests``: what the journal's first load does with a row whose transaction is still
  open (found while writing the tests above; it fails until the journal watches those ids).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.cache import caches
from django.db import connection, transaction
from django.test import tag

from auth_app.cache import token_key
from auth_app.models import User
from auth_app.services import token_pair_issue
from auth_app.tokens import token_hash
from billing_app.cache import account_scope, summary_key
from faults.proxy import TcpProxy
from faults.tests.support import make_actors
from techbirdsfly.testing import GunicornServer, LiveTestCase, http_json, server_env
from techbirdsfly.tests.infra_nodes import (
    RedisNode,
    sentinel_server_env,
    start_sentinel_stack,
    wait_for,
)

OLD_UNITS = 3  # a usage record made before the caches are warmed: the old figure
NEW_UNITS = 7  # the usage record the stale Redis missed
COOLDOWN = 0.3  # the servers' breaker cooldown, seconds
PROPAGATION = 1.0  # API.md: a cut-off process's invalidations reach the others within 1 s
POLL_EVERY = 0.03  # how often the cut-off test asks B (keep the test's own load small)


def validate(base: str, token: str) -> tuple[int, Any]:
    return http_json(base, "POST", "/api/auth/validate-token", token=token, timeout=5)


def summary(base: str, token: str, account_id: int) -> tuple[int, Any]:
    return http_json(base, "GET", f"/api/billing/summary/{account_id}", token=token, timeout=5)


def post_usage(base: str, token: str, account_id: int, units: int) -> int:
    status, _ = http_json(
        base,
        "POST",
        "/api/billing/usage",
        token=token,
        body={"accountId": account_id, "metric": "api.call", "units": units},
        timeout=5,
    )
    return status


def units_of(body: Any) -> int | None:
    return body.get("data", {}).get("totalUsageUnits") if isinstance(body, dict) else None


def from_cache(body: Any) -> bool | None:
    return body.get("fromCache") if isinstance(body, dict) else None


class _Scenario(LiveTestCase):
    """An actor with an account holding OLD_UNITS, and a second token of the same user to log out."""

    def make_scenario(self, tag: str) -> None:
        self.actor = make_actors(1, tag=tag)[0]
        self.leaver = token_pair_issue(user=User.objects.get(pk=self.actor.user_id)).access_token
        self.keys = {
            "token": caches["auth"].make_key(token_key(token_hash(self.leaver))),
            "token gen": caches["auth"].make_key(f"{token_key(token_hash(self.leaver))}:gen"),
            "summary": caches["billing"].make_key(summary_key(self.actor.account_id)),
            "account gen": caches["billing"].make_key(f"{account_scope(self.actor.account_id)}:gen"),
        }

    def warm(self, base: str) -> None:
        """Old units in the account, the summary and the leaver's token record cached (fromCache true)."""
        self.assertEqual(post_usage(base, self.actor.token, self.actor.account_id, OLD_UNITS), 201)
        wait_for(lambda: self.cached_summary(base) == OLD_UNITS, 15, "a cached summary")
        wait_for(lambda: validate(base, self.leaver) == (200, self.valid_body(True)), 15, "a cached token record")

    def cached_summary(self, base: str) -> int | None:
        status, body = summary(base, self.actor.token, self.actor.account_id)
        return units_of(body) if status == 200 and from_cache(body) is True else None

    def valid_body(self, cached: bool) -> dict[str, Any]:
        user = User.objects.get(pk=self.actor.user_id)
        return {"valid": True, "userId": user.pk, "email": user.email, "fromCache": cached}


@tag("live", "infra")
class SentinelFailoverToStaleReplicaTests(_Scenario):
    """A failover to a replica that missed a logout and a usage write brings neither back."""

    def start_cluster(self) -> None:
        self.master, self.replica, self.sentinels = start_sentinel_stack(self)

    def start_server(self, **extra: str) -> GunicornServer:
        env = sentinel_server_env(self.sentinels, CACHE_BREAKER_COOLDOWN=str(COOLDOWN), **extra)
        server = GunicornServer(env=env, workers=2).start()
        self.addCleanup(server.stop)
        return server

    def stale_keys(self, node: RedisNode) -> list[bytes | None]:
        return node.admin().mget(list(self.keys.values()))

    def run_failover(self, **server_extra: str) -> None:
        self.start_cluster()
        server = self.start_server(**server_extra)
        base = server.url
        self.make_scenario("failover")
        self.warm(base)

        # The replica holds exactly what the master holds for the four keys before it is cut off.
        warm = self.stale_keys(self.master)
        self.assertNotIn(None, warm, dict(zip(self.keys, warm, strict=True)))
        wait_for(lambda: self.stale_keys(self.replica) == warm, 10, "the replica to hold the warmed entries")

        # The replica misses the writes: stopped, and its replication link dropped by the master, so
        # nothing of them even waits in its socket buffer (a SIGSTOP alone would leave the stream in
        # the kernel, and the replica would apply it on SIGCONT). Redis replication is asynchronous:
        # the master acknowledges writes no replica has.
        self.replica.pause()
        try:
            self.assertEqual(self.master.admin().client_kill_filter(_type="replica"), 1)
            self.assertEqual(http_json(base, "POST", "/api/auth/logout", token=self.leaver, timeout=5)[0], 200)
            self.assertEqual(post_usage(base, self.actor.token, self.actor.account_id, NEW_UNITS), 201)
            written = self.stale_keys(self.master)
            self.master.kill()  # SIGKILL: a crash, with the writes only on the dead master
        finally:
            self.replica.resume()
        self.assertNotEqual(written[1], warm[1], "the logout did not change the token's generation on the master")
        self.assertNotEqual(written[3], warm[3], "the usage write did not change the account's generation")

        killed = time.monotonic()
        wait_for(
            lambda: all(s.master_port() == self.replica.port for s in self.sentinels), 30, "the replica's promotion"
        )
        wait_for(lambda: self.replica.role() == "master", 10, "the replica to act as master")
        promoted = time.monotonic() - killed

        # What the test claims: the new master holds the revoked token's record and the old summary,
        # under the generations they had before the writes.
        self.assertEqual(self.stale_keys(self.replica), warm, "the promoted replica does not hold the stale entries")

        # The revoked token: 401 on every try. A 503 would be allowed only before the first 200/401
        # (the app still finding its way during the failover); none is expected, as Sentinel has
        # already named the new master and a Redis it cannot reach only sends the app to the database.
        statuses = [validate(base, self.leaver)[0] for _ in range(30)]
        first = next((i for i, status in enumerate(statuses) if status != 503), len(statuses))
        with self.subTest("the revoked token"):  # a failure here still lets the summary be checked
            self.assertEqual(set(statuses[first:]), {401}, f"the revoked token after the failover: {statuses}")

        # The summary: the new units on every read, never the old figure; then cached on the new master.
        reads: list[tuple[int, int | None, bool | None]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(1 for _, _, cached in reads if cached) < 3:
            status, body = summary(base, self.actor.token, self.actor.account_id)
            reads.append((status, units_of(body), from_cache(body)))
            time.sleep(0.05)
        with self.subTest("the summary"):
            self.assertEqual(
                {(status, units) for status, units, _ in reads},
                {(200, OLD_UNITS + NEW_UNITS)},
                f"summary reads after the failover (status, units, fromCache): {reads}",
            )
            self.assertGreaterEqual(sum(1 for *_, cached in reads if cached), 3, f"caching did not resume: {reads}")
        fresh = sum(1 for r in reads if r[1] == OLD_UNITS + NEW_UNITS)
        first_hit = next((i + 1 for i, r in enumerate(reads) if r[2]), None)
        print(
            f"\nfailover{' ' + str(server_extra) if server_extra else ''}: promoted {promoted:.2f} s after the kill;"
            f" the revoked token: {statuses.count(401)}/30 answers 401; summary: {fresh}/{len(reads)} reads with"
            f" {OLD_UNITS + NEW_UNITS} units, {sum(1 for r in reads if r[2])} fromCache (first at read {first_hit})"
        )
        self.assertEqual(http_json(base, "GET", "/api/auth/me", token=self.actor.token)[0], 200)

        # The stale token record is still there (a revoked token's lookup is never cached, so nothing
        # replaced it): refused on every read, not overwritten.
        token_record, token_generation = self.replica.admin().mget([self.keys["token"], self.keys["token gen"]])
        self.assertEqual([token_record, token_generation], warm[:2])

    def test_a_failover_to_a_replica_that_missed_a_logout_and_a_usage_write_brings_neither_back(self) -> None:
        self.run_failover()

    def test_without_the_follower_the_catch_up_at_connect_alone_holds(self) -> None:
        # No follower thread (CACHE_JOURNAL_POLL=0): a worker that did not make the writes learns of
        # them only from the catch-up it runs when it connects to a Redis it has not seen (the
        # promoted replica), before it trusts any of its entries. The failover takes seconds, longer
        # than the follower's poll, so only this variant shows the catch-up itself at work.
        self.run_failover(CACHE_JOURNAL_POLL="0")


@tag("live")
class CutOffProcessTests(_Scenario):
    """A: one gunicorn worker reaching Redis through the faults relay. B: two workers, directly."""

    def setUp(self) -> None:
        super().setUp()
        self.relay = TcpProxy(self.redis_server.port).start()
        self.addCleanup(self.relay.stop)
        relayed = server_env(REDIS_URL=f"redis://127.0.0.1:{self.relay.port}/0")
        self.a = GunicornServer(env=relayed, workers=1).start()
        self.addCleanup(self.a.stop)
        self.b = GunicornServer(env=server_env(), workers=2).start()
        self.addCleanup(self.b.stop)

    def poll(self, ask, since: float, until: float) -> list[tuple[float, Any]]:
        """Ask B every POLL_EVERY until ``until`` s after ``since``: (s after ``since`` it answered, answer)."""
        answers = []
        while time.monotonic() - since < until:
            answer = ask()
            answers.append((round(time.monotonic() - since, 3), answer))
            time.sleep(POLL_EVERY)
        return answers

    def test_a_process_cut_off_from_redis_reaches_the_others_within_a_second(self) -> None:
        self.make_scenario("cutoff")
        self.warm(self.b.url)
        # A reaches Redis through the relay: it is served the entries B cached.
        wait_for(lambda: validate(self.a.url, self.leaver) == (200, self.valid_body(True)), 10, "A's cached token")
        wait_for(lambda: self.cached_summary(self.a.url) == OLD_UNITS, 10, "A's cached summary")

        self.assertGreater(self.relay.cut(), 0, "A had no connection through the relay")
        self.relay.refuse()  # and every new one is refused: A is cut off, B is not

        # A usage write through A: only the journal can tell B.
        self.assertEqual(post_usage(self.a.url, self.actor.token, self.actor.account_id, NEW_UNITS), 201)
        acked = time.monotonic()
        answers = self.poll(
            lambda: summary(self.b.url, self.actor.token, self.actor.account_id), acked, PROPAGATION + 0.5
        )
        seen = [(at, status, units_of(body), from_cache(body)) for at, (status, body) in answers]
        new = [i for i, (_, _, units, _) in enumerate(seen) if units == OLD_UNITS + NEW_UNITS]
        summary_at = seen[new[0]][0] if new else None
        with self.subTest("the usage write"):  # a failure here still lets the logout be checked
            self.assertEqual({status for _, status, _, _ in seen}, {200}, seen)
            self.assertTrue(new, f"B never showed A's usage write within {PROPAGATION + 0.5} s: {seen}")
            self.assertLessEqual(summary_at, PROPAGATION, f"B showed A's usage write too late: {seen}")
            self.assertEqual(
                {units for _, _, units, _ in seen[new[0] :]},
                {OLD_UNITS + NEW_UNITS},
                f"B served the old figure again after the new one: {seen}",
            )

        # A logout through A: B refuses the token within 1 s. With two workers in B, one of them may
        # learn of it up to one poll later than the other (a revoked token's lookup stores nothing
        # that would tell the other), so the check is: a 401 within 1 s, and only 401s from 1 s on.
        self.assertEqual(http_json(self.a.url, "POST", "/api/auth/logout", token=self.leaver, timeout=5)[0], 200)
        acked = time.monotonic()
        answers = self.poll(lambda: validate(self.b.url, self.leaver), acked, PROPAGATION + 0.5)
        seen = [(at, status, from_cache(body)) for at, (status, body) in answers]
        first = next((at for at, status, _ in seen if status == 401), None)
        late = [status for at, status, _ in seen if at > PROPAGATION]
        last_200 = max((at for at, status, _ in seen if status == 200), default=None)
        print(
            f"\ncut off: B showed A's usage write {summary_at} s after its 201;"
            f" B refused the logged-out token {first} s after the logout (last 200 at {last_200} s);"
            f" {len(answers)} polls each"
        )
        with self.subTest("the logout"):
            self.assertIsNotNone(first, f"B never refused the token logged out through A: {seen}")
            self.assertLessEqual(first, PROPAGATION, f"B refused the token too late: {seen}")
            self.assertTrue(late)
            self.assertEqual(set(late), {401}, f"B accepted the token more than 1 s after the logout: {seen}")

        # A itself, cut off, answers from the database.
        status, body = summary(self.a.url, self.actor.token, self.actor.account_id)
        self.assertEqual((status, units_of(body), from_cache(body)), (200, OLD_UNITS + NEW_UNITS, False))


class JournalFirstLoadTests(LiveTestCase):
    """A process's first load of the journal, while another transaction holds a smaller id, in real PostgreSQL."""

    def test_a_row_committed_after_the_first_load_with_a_smaller_id_than_it_saw_is_not_missed(self) -> None:
        from techbirdsfly.cache import journal  # not on the code before the journal

        held, release = threading.Event(), threading.Event()
        taken: dict[str, int] = {}

        def writer() -> None:  # a write whose transaction is still open when the process starts
            try:
                with transaction.atomic():
                    taken["id"] = journal.record("billing", ["billing:account:901"])[0][0]
                    held.set()
                    release.wait(10)
            finally:
                connection.close()

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(release.set)
        self.assertTrue(held.wait(10))
        later = journal.record("billing", ["billing:account:902"])[0][0]  # another write, committed first
        self.assertGreater(later, taken["id"])

        journal.reset()  # a process that starts now (a new gunicorn worker) ...
        self.assertTrue(journal.catch_up())  # ... loads the journal: it sees the later row only
        self.assertEqual(journal.floor("billing", "billing:account:902"), later)

        release.set()  # the first write commits
        thread.join(10)
        self.assertTrue(journal.catch_up())  # what the follower does every CACHE_JOURNAL_POLL
        self.assertEqual(
            journal.floor("billing", "billing:account:901"),
            taken["id"],
            "a row committed after the first load, with a smaller id than it saw, must be read",
        )
