"""PgBouncer in transaction mode (infra/docker-compose*.yml): the real binary in front of the test PostgreSQL.

The app under gunicorn reaches the database only through pgbouncer: its writes, its cached reads and
their invalidation, and the journal's reads (a catch-up with a snapshot kept between two reads) work
there, and PostgreSQL sees no more server connections than pgbouncer's pool, however many clients.
LISTEN needs a session of its own: DATABASE_DIRECT_URL reaches PostgreSQL around pgbouncer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from unittest import skipUnless

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings, tag

from techbirdsfly.cache import journal
from techbirdsfly.cache.generations import invalidate
from techbirdsfly.db import direct_connection
from techbirdsfly.testing import GunicornServer, LiveTestCase, http_json, server_env

from .pgbouncer_server import PgBouncerServer

POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
POOL_SIZE = 2  # pgbouncer's server connections
CLIENTS = 16  # concurrent requests: more than the two workers have threads (4 each)


def _direct_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@skipUnless(POSTGRESQL, "PgBouncer fronts PostgreSQL")
@tag("infra", "live")
class PgBouncerTests(LiveTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.bouncer = PgBouncerServer(connection.settings_dict, pool_size=POOL_SIZE).start()
        cls.addClassCleanup(cls.bouncer.stop)
        cls.bounced_url = cls.bouncer.url(connection.settings_dict["NAME"])

    def start_app(self) -> None:
        env = server_env(
            DATABASE_URL=self.bounced_url,
            DATABASE_DIRECT_URL=_direct_url(),
            CACHE_JOURNAL_POLL="0.1",
        )
        self.server = GunicornServer(env=env, workers=2, threads=4, name="pgbouncer").start()
        self.addCleanup(self.server.stop)

    def login(self, email: str) -> str:
        credentials = {"email": email, "password": "pgb-Pass-2026!"}
        status, _ = self.call("POST", "/api/auth/register", body=credentials)
        self.assertEqual(status, 201)
        status, tokens = self.call("POST", "/api/auth/login", body=credentials)
        self.assertEqual(status, 200, tokens)
        return tokens["accessToken"]

    def call(self, method: str, path: str, *, token: str | None = None, body=None):
        return http_json(self.server.url, method, path, token=token, body=body)

    def test_writes_reads_and_invalidation_go_through_pgbouncer(self):
        self.start_app()
        before = sum(int(row["total_xact_count"]) for row in self.bouncer.show("STATS"))
        token = self.login("b@example.com")
        status, account = self.call("POST", "/api/billing/accounts", token=token, body={"name": "Bounced"})
        self.assertEqual(status, 201, account)
        summary = f"/api/billing/summary/{account['id']}"
        status, first = self.call("GET", summary, token=token)
        self.assertEqual((status, first["data"]["totalUsageUnits"]), (200, 0))
        status, cached = self.call("GET", summary, token=token)
        self.assertTrue(cached["fromCache"])
        usage = {"accountId": account["id"], "metric": "api.call", "units": 5}
        status, record = self.call("POST", "/api/billing/usage", token=token, body=usage)
        self.assertEqual(status, 201, record)
        # Either worker answers: the write's invalidation reached the one that did not make it.
        for _ in range(4):
            status, after = self.call("GET", summary, token=token)
            self.assertEqual((status, after["data"]["totalUsageUnits"]), (200, 5))
        status, _ = self.call("POST", "/api/auth/logout", token=token)
        self.assertEqual(status, 200)
        status, _ = self.call("GET", "/api/auth/me", token=token)
        self.assertEqual(status, 401)
        after = sum(int(row["total_xact_count"]) for row in self.bouncer.show("STATS"))
        self.assertGreater(after, before)  # the app's transactions went through pgbouncer

    def test_postgresql_sees_pgbouncers_pool_not_the_apps_clients(self):
        self.start_app()
        token = self.login("c@example.com")
        status, account = self.call("POST", "/api/billing/accounts", token=token, body={"name": "Many"})
        start = threading.Barrier(CLIENTS)
        statuses: list[int] = []
        pools: list[dict] = []

        def post() -> None:
            start.wait(timeout=30)
            usage = {"accountId": account["id"], "metric": "api.call", "units": 1}
            statuses.append(self.call("POST", "/api/billing/usage", token=token, body=usage)[0])

        def watch(stop: threading.Event) -> None:
            while not stop.is_set():
                pools.extend(row for row in self.bouncer.show("POOLS") if row["database"] == self.db_name)

        self.db_name = connection.settings_dict["NAME"]
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(stop,))
        watcher.start()
        clients = [threading.Thread(target=post) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=120)
        stop.set()
        watcher.join(timeout=30)

        self.assertEqual(statuses, [201] * CLIENTS)
        status, summary = self.call("GET", f"/api/billing/summary/{account['id']}", token=token)
        self.assertEqual(status, 200)
        self.assertEqual(summary["data"]["totalUsageUnits"], CLIENTS)
        servers = [int(p["sv_active"]) + int(p["sv_idle"]) + int(p["sv_used"]) + int(p["sv_login"]) for p in pools]
        self.assertLessEqual(max(servers), POOL_SIZE)
        self.assertGreater(max(int(p["cl_active"]) + int(p["cl_waiting"]) for p in pools), POOL_SIZE)

    def test_journal_catch_up_through_pgbouncer(self):
        scope = "billing:account:424242"
        with transaction.atomic():
            invalidate("billing", scope)
        written = journal.floor("billing", scope)
        self.assertGreater(written, 0)
        # A process on pgbouncer: its first read (every row within the window), then one from the
        # snapshot of that read, after a row committed by another connection.
        script = (
            "import django; django.setup()\n"
            "from django.db import connection, transaction\n"
            "from techbirdsfly.cache import journal\n"
            "from techbirdsfly.cache.generations import invalidate\n"
            "import os; assert str(connection.settings_dict['PORT']) == os.environ['BOUNCER_PORT']\n"
            f"assert journal.catch_up(); print(journal.floor('billing', {scope!r}))\n"
            f"with transaction.atomic(): invalidate('billing', {scope!r})\n"
            f"assert journal.catch_up(); print(journal.floor('billing', {scope!r}))\n"
        )
        env = {
            **os.environ,
            **server_env(DATABASE_URL=self.bounced_url, CACHE_JOURNAL_POLL="0", DJANGO_ENV_FILE=""),
            "BOUNCER_PORT": str(self.bouncer.port),
            "DJANGO_SETTINGS_MODULE": "techbirdsfly.settings",
        }
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        first, second = (int(line) for line in done.stdout.split())
        self.assertEqual(first, written)
        self.assertGreater(second, first)
        journal.catch_up()
        self.assertEqual(journal.floor("billing", scope), second)  # and this process, directly, agrees

    def test_listen_goes_around_pgbouncer_with_the_direct_url(self):
        with override_settings(DATABASE_DIRECT_URL=_direct_url()), direct_connection() as listener:
            self.assertNotEqual(listener.info.port, self.bouncer.port)
            listener.execute("LISTEN tbf_pgbouncer_test")
            with psycopg.connect(self.bounced_url, autocommit=True) as bounced:
                bounced.execute("NOTIFY tbf_pgbouncer_test, 'hello'")
            received = next(listener.notifies(timeout=10, stop_after=1), None)
        self.assertIsNotNone(received)
        self.assertEqual(received.payload, "hello")
