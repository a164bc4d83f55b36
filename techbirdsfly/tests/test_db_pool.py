"""Connections bounded per process: request threads share the pool of settings.DATABASES (DATABASE_POOL_*)."""

from __future__ import annotations

import io
import threading
import time
import uuid
import wsgiref.util
from typing import Any
from unittest import skipUnless

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection

from techbirdsfly.db import direct_connection
from techbirdsfly.testing import LiveTestCase

POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _environ(path: str) -> dict[str, Any]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    wsgiref.util.setup_testing_defaults(environ)
    return environ


@skipUnless(POSTGRESQL, "the pool is PostgreSQL's (SQLite has none)")
class PoolTests(LiveTestCase):
    """Request threads of one process share a bounded pool: never more connections than its max_size."""

    THREADS_PER_CONNECTION = 3

    def backends(self, monitor, application_name: str) -> int:
        with monitor.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
                [application_name],
            )
            return cursor.fetchone()[0]

    def test_request_threads_never_hold_more_than_the_pools_max(self):
        pool = connection.pool
        self.assertIsNotNone(pool, "no connection pool: each thread would open a connection of its own")
        max_size = pool.max_size
        application_name = connection.settings_dict["OPTIONS"]["application_name"]
        threads = max_size * self.THREADS_PER_CONNECTION
        handler = WSGIHandler()
        start = threading.Barrier(threads)
        statuses: list[str] = []
        done = threading.Event()
        peak = [0]

        def hold(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            time.sleep(0.2)  # the request keeps its connection a while, so that the threads overlap
            return result

        def request() -> None:
            try:
                with connection.execute_wrapper(hold):
                    start.wait(timeout=30)
                    response = handler(_environ("/api/health"), lambda status, headers: statuses.append(status))
                    b"".join(response)
                    response.close()  # request_finished: the connection goes back to the pool, as under gunicorn
            finally:
                connection.close()

        with direct_connection(application_name=f"pool-monitor-{uuid.uuid4().hex[:8]}") as monitor:

            def watch() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], self.backends(monitor, application_name))

            pool.pop_stats()
            watcher = threading.Thread(target=watch)
            watcher.start()
            workers = [threading.Thread(target=request) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=120)
            done.set()
            watcher.join(timeout=30)
            stats = pool.get_stats()

        self.assertEqual(statuses, ["200 OK"] * threads)
        self.assertGreater(stats.get("requests_queued", 0), 0, "the threads never had to wait for a connection")
        self.assertGreaterEqual(peak[0], 1)
        self.assertLessEqual(peak[0], max_size)
