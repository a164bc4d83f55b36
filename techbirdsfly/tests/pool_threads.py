"""One process of request threads on the connection pool (test_db_pool.py), with production's settings.

``python -m techbirdsfly.tests.pool_threads load THREADS``: THREADS threads each run one request
through Django's WSGI handler, as gunicorn's threads do, holding their connection a while; another
connection (not the pool's) counts this process's backends in pg_stat_activity by application_name
meanwhile. ``python -m techbirdsfly.tests.pool_threads exhausted``: every pooled connection is
taken, then one request is made. Each prints what it saw as JSON.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
import wsgiref.util
from typing import Any


def _environ(path: str, body: dict | None = None) -> dict[str, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    environ: dict[str, Any] = {
        "PATH_INFO": path,
        "REQUEST_METHOD": "POST" if body is not None else "GET",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    wsgiref.util.setup_testing_defaults(environ)
    return environ


def _request(handler: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    statuses: list[str] = []
    response = handler(environ, lambda status, headers: statuses.append(status))
    content = b"".join(response)
    response.close()  # request_finished: Django gives the connection back, as under gunicorn
    return statuses[0], content


def load(threads: int) -> dict[str, Any]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from techbirdsfly.db import direct_connection

    handler = WSGIHandler()
    pool = connection.pool
    application_name = connection.settings_dict["OPTIONS"]["application_name"]
    start = threading.Barrier(threads)
    statuses: list[str] = []
    done = threading.Event()
    peak = [0]

    def hold(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        time.sleep(0.2)  # the request keeps its connection a while, so that the threads overlap
        return result

    def request() -> None:
        with connection.execute_wrapper(hold):
            start.wait(timeout=30)
            statuses.append(_request(handler, _environ("/api/health"))[0])

    with direct_connection(application_name="pool-monitor") as monitor:

        def watch() -> None:
            while not done.is_set():
                row = monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = %s",
                    [application_name],
                ).fetchone()
                peak[0] = max(peak[0], row[0])

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
    return {"statuses": statuses, "peak": peak[0], "max_size": pool.max_size, "queued": stats.get("requests_queued", 0)}


def exhausted() -> dict[str, Any]:
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    pool = connection.pool
    pool.open()
    held = [pool.getconn() for _ in range(pool.max_size)]
    pool.timeout = 0.2  # the default for getconn: how long a request waits for a connection
    try:
        status, content = _request(
            WSGIHandler(), _environ("/api/auth/login", {"email": "a@example.com", "password": "x"})
        )
    finally:
        for conn in held:
            pool.putconn(conn)
    return {"status": status, "body": json.loads(content)}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "techbirdsfly.settings")
    import django

    django.setup()
    result = load(int(sys.argv[2])) if sys.argv[1] == "load" else exhausted()
    print(json.dumps(result), flush=True)
