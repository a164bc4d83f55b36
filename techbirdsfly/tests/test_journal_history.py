"""The invalidation journal under any history: late commits, rewound ids, a stepped clock, few rows.

Real PostgreSQL and a real (private) Redis; "another process" is a second connection that writes a
row the way a process cut off from Redis would, with no Redis bump.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from unittest import mock

from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Max, QuerySet
from django.db.models.functions import Now
from rest_framework.test import APIClient

from auth_app.cache import user_scope
from auth_app.models import User
from auth_app.selectors import token_validate
from auth_app.services import password_change, token_pair_issue
from auth_app.tests.factories import PASSWORD, make_user
from billing_app.tests.factories import make_account, make_usage
from techbirdsfly.cache import clock, get_or_compute, invalidate, journal, journal_sql
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.models import CacheJournal
from techbirdsfly.testing import LiveTestCase, test_redis


def alive(token: str) -> bool:
    return token_validate(raw_token=token).value is not None


class LateCommitTests(LiveTestCase):
    """A deactivation whose transaction commits after more than a thousand newer ids were read."""

    def deactivate_in_a_long_transaction(self, user: User, *, meanwhile) -> None:
        held, release = threading.Event(), threading.Event()

        def writer() -> None:  # another process, cut off from Redis: a row and no Redis bump
            try:
                with transaction.atomic():
                    QuerySet(User).filter(pk=user.pk).update(is_active=False)
                    journal.record("auth", [user_scope(user.pk)])
                    held.set()
                    release.wait(10)
            finally:
                connections.close_all()

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        self.assertTrue(held.wait(10))
        with transaction.atomic():  # 1,100 invalidations with larger ids commit first
            invalidate("billing", *(f"billing:account:{n}" for n in range(1_100)))
        self.assertTrue(journal.catch_up())  # a poll reads them all before the long one commits
        release.set()
        thread.join(10)
        meanwhile()

    def test_a_poll_after_the_late_commit_reads_it(self):
        user = make_user(email="late@example.com")
        token = token_pair_issue(user=user).access_token
        self.assertTrue(alive(token))  # cached
        self.deactivate_in_a_long_transaction(user, meanwhile=journal.catch_up)
        self.assertEqual([alive(token) for _ in range(20)], [False] * 20)

    def test_a_redis_restored_from_before_the_late_commit_does_not_bring_the_token_back(self):
        user = make_user(email="restored@example.com")
        token = token_pair_issue(user=user).access_token
        self.assertTrue(alive(token))
        self.redis.save()  # the dump holds the live record
        server = test_redis()

        def restart_from_the_dump() -> None:
            server.kill()
            server.start()
            reset_breakers()

        # No explicit poll: the catch-up that a new Redis identity triggers must find the row.
        self.deactivate_in_a_long_transaction(user, meanwhile=restart_from_the_dump)
        self.assertTrue(any(k.startswith(b"AuthService_auth:token:") for k in self.redis.scan_iter()))
        self.assertEqual([alive(token) for _ in range(20)], [False] * 20)


class RewoundIdsTests(LiveTestCase):
    """Journal ids that go backwards: the database's new history makes everything cached before it stale."""

    def setUp(self) -> None:
        super().setUp()
        self.user = make_user(email="rewind@example.com")
        self.token = token_pair_issue(user=self.user).access_token
        self.account = make_account(self.user)
        make_usage(self.account, units=1)
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        # Many writes, so that Redis holds generation numbers far above where the ids restart.
        for _ in range(3):
            with transaction.atomic():
                invalidate("billing", *(f"billing:account:{n}" for n in range(1, 200)))
        invalidate("billing", f"billing:account:{self.account.pk}")
        self.assertTrue(alive(self.token))
        self.summary()
        self.assertIs(self.summary()["fromCache"], True)

    def summary(self) -> dict:
        response = self.api.get(f"/api/billing/summary/{self.account.pk}")
        self.assertEqual(response.status_code, 200)
        return response.json()

    def rewind(self, how) -> None:
        before = journal.history()
        how()
        self.assertEqual(CacheJournal.objects.count(), 0)
        # The writes below are what the process sees first: no poll in between.
        User.objects.filter(pk=self.user.pk).update(is_active=False)
        self.assertNotEqual(journal.history(), before)
        self.assertFalse(alive(self.token))
        self.assertEqual(
            [self.api.get("/api/auth/me").status_code for _ in range(5)], [401] * 5, "the deactivated token"
        )

    def truncate(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE techbirdsfly_cachejournal RESTART IDENTITY")

    def test_a_truncation_with_restart_identity(self):
        self.rewind(self.truncate)

    def test_manage_py_flush(self):
        key, scope = f"billing:summary:{self.account.pk}", f"billing:account:{self.account.pk}"
        self.assertIs(get_or_compute("billing.summary", key, dict, scope=scope).from_cache, True)
        call_command("flush", "--noinput", verbosity=0)
        self.assertTrue(journal.catch_up())  # the follower's next poll
        self.assertEqual(
            get_or_compute("billing.summary", key, lambda: "recomputed", scope=scope), ("recomputed", False)
        )

    def test_a_usage_write_after_a_truncation_shows_in_the_next_summary(self):
        self.truncate()
        response = self.api.post("/api/billing/usage", {"accountId": self.account.pk, "metric": "api.call", "units": 5})
        self.assertEqual(response.status_code, 201)
        body = self.summary()
        self.assertEqual((body["fromCache"], body["data"]["totalUsageUnits"]), (False, 6))

    def test_another_process_learns_the_new_history_at_its_next_read_of_the_journal(self):
        self.truncate()
        # Another process's write: a row of the new history (begun by whoever reads first) ...
        QuerySet(User).filter(pk=self.user.pk).update(is_active=False)
        with transaction.atomic():
            journal.record("auth", [user_scope(self.user.pk)])
        # ... and this process, which wrote nothing since, reads the journal (its follower's poll).
        self.assertTrue(journal.catch_up())
        self.assertFalse(alive(self.token))

    def test_a_history_of_another_server_is_a_new_history(self):
        # A restored copy or a promoted standby keeps the rows, but they name the server they came from.
        CacheJournal.objects.filter(app=journal.HISTORY_APP).update(scope="0123abcd 1/00000001/1")
        before = journal.history()
        self.assertTrue(journal.catch_up())
        self.assertNotEqual(journal.history(), before)
        self.assertIs(self.summary()["fromCache"], False)
        self.assertTrue(alive(self.token))  # nothing changed: computed again, and served


class BoundedRowsTests(LiveTestCase):
    def test_a_password_change_writes_one_row_however_many_logins(self):
        user = make_user(email="many@example.com")
        tokens = [token_pair_issue(user=user).access_token for _ in range(30)]
        self.assertTrue(all(alive(token) for token in tokens))
        before = CacheJournal.objects.exclude(app=journal.HISTORY_APP).count()
        fresh = password_change(
            user_id=user.pk, current_password=PASSWORD, new_password="a new pass phrase 42", address=None
        )
        rows = list(CacheJournal.objects.exclude(app=journal.HISTORY_APP).order_by("id").values_list("app", "scope"))
        rows = rows[before:]
        self.assertEqual(rows, [("auth", user_scope(user.pk))])
        self.assertEqual([alive(token) for token in tokens], [False] * 30)
        self.assertTrue(alive(fresh.access_token))

    def test_the_one_row_is_enough_when_redis_comes_back_older(self):
        user = make_user(email="older@example.com")
        tokens = [token_pair_issue(user=user).access_token for _ in range(5)]
        self.assertTrue(all(alive(token) for token in tokens))
        self.redis.save()
        User.objects.filter(pk=user.pk).update(password="!")  # every token revoked; Redis bumped
        server = test_redis()
        server.kill()
        server.start()  # from the dump: the records and their old generations are back
        reset_breakers()
        self.assertEqual([alive(token) for token in tokens], [False] * 5)


class SteppedClockTests(LiveTestCase):
    def test_a_wall_clock_stepped_back_does_not_revive_an_expired_entry(self):
        scope = "billing:account:77"
        get_or_compute("billing.summary", "billing:summary:77", lambda: {"v": 1}, scope=scope, ttl_of=lambda v: 1)
        key = "BillingService_billing:summary:77"
        dumped = self.redis.dump(key)
        time.sleep(1.2)  # the entry's signed expiry passes
        self.redis.restore(key, 0, dumped, replace=True)  # a Redis writer replays it, with no TTL
        wall = time.time()
        with mock.patch("time.time", lambda: wall - 3600):  # the machine's clock steps back an hour
            self.assertAlmostEqual(clock.now(), wall, delta=5)
            result = get_or_compute("billing.summary", "billing:summary:77", lambda: {"v": 2}, scope=scope)
        self.assertEqual(result, ({"v": 2}, False))

    def test_the_clock_is_the_databases(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
            database_now = cursor.fetchone()[0]
        self.assertTrue(journal.catch_up())
        self.assertAlmostEqual(clock.now(), database_now, delta=1)


class IndexSizeTests(LiveTestCase):
    def test_a_first_read_takes_one_row_per_scope(self):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO techbirdsfly_cachejournal (app, scope)"
                " SELECT 'billing', 'billing:account:' || (g % 10) FROM generate_series(1, 500) AS g"
            )
        read = journal_sql.read(connection, None, journal.WINDOW)
        self.assertEqual(len(read.rows), 10)
        rows = CacheJournal.objects.filter(app="billing").values("scope").annotate(newest=Max("id"))
        newest = {row["scope"]: row["newest"] for row in rows}
        self.assertEqual({scope: row_id for row_id, _, scope in read.rows}, newest)
        journal.reset()
        self.assertTrue(journal.catch_up())
        self.assertEqual(len(journal._index.latest), 10)
        self.assertEqual(journal.floor("billing", "billing:account:3"), newest["billing:account:3"])

    def test_numbers_older_than_the_window_are_forgotten(self):
        with transaction.atomic():
            invalidate("billing", "billing:account:1", "billing:account:2")
        CacheJournal.objects.filter(scope="billing:account:1").update(
            created_at=Now() - timedelta(seconds=journal.WINDOW + 120)
        )
        journal.forget_old()
        self.assertEqual(journal.floor("billing", "billing:account:1"), 0)
        self.assertGreater(journal.floor("billing", "billing:account:2"), 0)
