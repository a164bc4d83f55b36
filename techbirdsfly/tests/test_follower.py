"""The journal follower: rows pushed on commit are known at once, and the poll still guarantees them.

"Another process" writes the way a process cut off from Redis would: the database change and its
journal row in one transaction, and no Redis bump, so only the journal can make the readers fresh.
"""

from __future__ import annotations

import select
import threading
import time

import psycopg
from django.db import connection, connections, transaction
from django.db.models import QuerySet
from django.test import override_settings, tag

from auth_app.cache import user_scope
from auth_app.models import User
from auth_app.services import token_pair_issue
from auth_app.tests.factories import make_user
from billing_app.models import Price, UsageRecord
from billing_app.tests.factories import make_account, make_usage
from techbirdsfly.cache import journal, journal_sql
from techbirdsfly.cache.follower import _Follower
from techbirdsfly.testing import GunicornServer, LiveTestCase, elsewhere, http_json, server_env

SLOW_POLL = 30.0  # far longer than any test waits: what arrives sooner was pushed


def write_elsewhere(app: str, scopes: list[str], change=None) -> None:
    """Commit rows (and a change) on another connection, with no Redis bump: another process's write."""

    def write() -> None:
        with transaction.atomic():
            if change:
                change()
            journal.record(app, scopes)

    elsewhere(write)


def wait_for(condition, seconds: float = 10.0) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if condition():
            return time.monotonic() - began
        time.sleep(0.002)
    return None


@override_settings(CACHE_JOURNAL_POLL=SLOW_POLL)
class PushTests(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.follower = _Follower()
        self.follower.ensure_running()
        self.addCleanup(self.follower.stop)
        # The follower's first poll has run (it polls as it starts) and it is listening.
        self.assertIsNotNone(wait_for(lambda: self.follower.listening))

    def test_a_committed_row_is_known_before_any_poll(self):
        write_elsewhere("billing", ["billing:account:31"])
        self.assertIsNotNone(wait_for(lambda: journal.floor("billing", "billing:account:31") > 0))
        self.assertGreaterEqual(self.follower.pushed, 1)

    def test_a_rolled_back_write_pushes_nothing(self):
        def rolled_back() -> None:
            try:
                with transaction.atomic():
                    journal.record("billing", ["billing:account:32"])
                    raise RuntimeError("rollback")
            except RuntimeError:
                pass
            finally:
                connections.close_all()

        thread = threading.Thread(target=rolled_back)
        thread.start()
        thread.join(10)
        write_elsewhere("billing", ["billing:account:33"])  # a later write, to know the first had its chance
        self.assertIsNotNone(wait_for(lambda: journal.floor("billing", "billing:account:33") > 0))
        self.assertEqual(journal.floor("billing", "billing:account:32"), 0)

    def test_rows_too_many_for_one_notification_are_read_at_once(self):
        scopes = [f"billing:account:{n}" for n in range(1000, 1600)]  # far over 8000 bytes of payload
        write_elsewhere("billing", scopes)
        self.assertIsNotNone(wait_for(lambda: all(journal.floor("billing", s) > 0 for s in scopes)))


class LostSessionTests(LiveTestCase):
    def test_a_poll_on_a_session_the_server_ended_fails_and_the_follower_lives_on(self):
        from techbirdsfly.cache.follower import _listen

        self.assertTrue(journal.catch_up())
        listener = _listen()
        self.addCleanup(listener.close)
        self.assertTrue(journal.catch_up(session=listener))
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [listener.info.backend_pid])
        with self.assertLogs("techbirdsfly.cache", "WARNING"):
            self.assertFalse(journal.catch_up(session=listener))  # said, not raised into the thread
        self.assertTrue(listener.closed)  # so the follower listens again on a new one
        self.assertTrue(journal.catch_up())


class PreparedPollTests(LiveTestCase):
    def test_the_poll_is_prepared_once_per_session_and_reads_what_a_cursor_reads(self):
        from techbirdsfly.cache.follower import _listen

        self.assertTrue(journal.catch_up())
        listener = _listen()
        self.addCleanup(listener.close)
        after = journal_sql.read(connection, None, journal.WINDOW).position
        write_elsewhere("billing", ["billing:account:1", "billing:account:2"])
        polled = [journal_sql.read(connection, after, journal.WINDOW, session=listener) for _ in range(3)]
        cursor = journal_sql.read(connection, after, journal.WINDOW)
        for read in polled:
            self.assertEqual(sorted(read.rows), sorted(cursor.rows))
            self.assertEqual([scope for _, _, scope in sorted(read.rows)], ["billing:account:1", "billing:account:2"])
            self.assertEqual((read.server, read.history), (cursor.server, cursor.history))
            self.assertIsInstance(read.now, float)
        later = journal_sql.read(connection, polled[0].position, journal.WINDOW, session=listener)
        self.assertEqual(later.rows, [])  # its snapshot is one the next poll continues from
        prepared = listener.execute("SELECT name FROM pg_prepared_statements").fetchall()
        self.assertEqual(prepared, [(journal_sql._POLL_NAME.decode(),)])

    def test_an_error_in_the_poll_is_psycopgs_error_and_the_session_goes_on(self):
        from techbirdsfly.cache.follower import _listen

        listener = _listen()
        self.addCleanup(listener.close)
        after = journal_sql.read(connection, None, journal.WINDOW).position
        with self.assertRaisesMessage(psycopg.DatabaseError, "pg_snapshot"):
            journal_sql.read(connection, "not a snapshot", journal.WINDOW, session=listener)
        self.assertEqual(journal_sql.read(connection, after, journal.WINDOW, session=listener).rows, [])

    def test_a_push_read_off_the_socket_by_a_poll_is_taken_without_waiting(self):
        from techbirdsfly.cache.follower import _listen

        self.assertTrue(journal.catch_up())
        listener = _listen()
        self.addCleanup(listener.close)
        follower = _Follower()
        write_elsewhere("billing", ["billing:account:3"])
        # Its notification is on the listener's socket; the poll reads it off with the poll's answer.
        self.assertEqual(select.select([listener.pgconn.socket], [], [], 10)[0], [listener.pgconn.socket])
        self.assertTrue(journal.catch_up(session=listener))
        # The socket holds nothing more, so only what the poll kept of it can be taken now.
        follower._wait_for_pushes(listener, 0)
        self.assertEqual(follower.pushed, 1)


@tag("live")
class PushAcrossProcessesTests(LiveTestCase):
    """A gunicorn worker whose follower polls every 30 s sees another process's write at once."""

    def test_a_deactivation_and_a_usage_write_reach_the_server_by_push(self):
        user = make_user(email="pushed@example.com")
        token = token_pair_issue(user=user).access_token
        account = make_account(user)
        make_usage(account, units=1)
        server = GunicornServer(env=server_env(CACHE_JOURNAL_POLL=str(SLOW_POLL)), workers=1).start()
        self.addCleanup(server.stop)
        summary = f"/api/billing/summary/{account.pk}"
        for _ in range(2):
            status, body = http_json(server.url, "GET", summary, token=token)
        self.assertEqual((status, body["fromCache"], body["data"]["totalUsageUnits"]), (200, True, 1))

        def record_usage() -> None:  # no signals: only the journal row tells anyone
            price = Price.objects.get(pk="api.call").unit_price
            QuerySet(UsageRecord).bulk_create(
                [UsageRecord(account=account, metric_id="api.call", units=5, amount=5 * price)]
            )

        write_elsewhere("billing", [f"billing:account:{account.pk}"], change=record_usage)

        def fresh() -> bool:
            _, body = http_json(server.url, "GET", summary, token=token)
            return body["data"]["totalUsageUnits"] == 6

        seen = wait_for(fresh)
        self.assertIsNotNone(seen, "the server never saw the write")
        print(f"\npushed across processes: a usage write seen by the server {seen * 1000:.0f} ms after commit")

        write_elsewhere(
            "auth",
            [user_scope(user.pk)],
            change=lambda: QuerySet(User).filter(pk=user.pk).update(is_active=False),
        )
        refused = wait_for(lambda: http_json(server.url, "GET", "/api/auth/me", token=token)[0] == 401)
        self.assertIsNotNone(refused, "the server kept accepting the deactivated user's token")
