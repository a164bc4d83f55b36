"""Test support: a private redis-server for the test run, and base classes that use it.

The test run never touches a Redis it did not start: ``RedisTestRunner`` starts redis-server on
a free loopback port, points every cache alias at it and stops it at the end.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.test import TestCase, TransactionTestCase, tag
from django.test.runner import DiscoverRunner
from django.test.utils import override_settings
from rest_framework.test import APIClient

from techbirdsfly.cache import generations, hot, journal
from techbirdsfly.cache.calls import reset_breakers
from techbirdsfly.probes import count_round_trips, flood
from techbirdsfly.redis_process import RedisServer
from techbirdsfly.servers import GunicornServer, free_port
from techbirdsfly.test_measures import ManualClock, breaker_clock, cache_wait, fill_polls, polls_within

# Re-exported: the tests import them from here.
__all__ = [
    "GunicornServer",
    "ManualClock",
    "RedisServer",
    "breaker_clock",
    "cache_wait",
    "count_round_trips",
    "fill_polls",
    "flood",
    "free_port",
    "polls_within",
]


def elsewhere[T](fn: Callable[[], T]) -> T:
    """``fn()`` as another process runs it: on a database connection of its own, in autocommit.

    What it writes is committed at once, outside the transaction a TestCase holds, and its
    transaction is not the test's (a row the test's own transaction wrote is one it has seen).
    """
    result: list[T] = []

    def run() -> None:
        try:
            result.append(fn())
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():  # waiting, most likely, for a lock the test's own transaction holds
        raise AssertionError("the other connection's work did not end within 30 s")
    if not result:
        raise AssertionError("the other connection's work failed (its traceback is above)")
    return result[0]


def poll_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Whether ``check()`` came true within ``timeout`` seconds, asked every ``interval``: waits for
    what the code does in the background, never a bound on how long it takes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def caches_at(url: str) -> dict[str, dict[str, Any]]:
    return {alias: {**config, "LOCATION": url} for alias, config in settings.CACHES.items()}


class CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at the time of each write.

    A logging.StreamHandler keeps the stream it was given when logging was configured; unittest's
    buffer replaces ``sys.stderr`` for each test, so only a handler writing through this one lands
    in the test's buffer.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def capture_logs() -> None:
    """Point every handler writing to stderr at :class:`CurrentStderr`: each test's logs go to its buffer."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.__stderr__):
                handler.setStream(CurrentStderr())  # type: ignore[arg-type]


class RedisTestRunner(DiscoverRunner):
    """The Django test runner, with a private redis-server for the whole run.

    Output is buffered per test, logs included: a passing test prints nothing, a failing one shows
    its own output and logs beside its traceback. ``--show-output`` prints everything as it comes.
    """

    redis_server: RedisServer | None = None

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        super().add_arguments(parser)
        parser.set_defaults(buffer=True)
        parser.add_argument(
            "--show-output",
            action="store_false",
            dest="buffer",
            help="Print every test's output and logs as they come (by default only a failing test's are shown).",
        )

    def __init__(self, *args: Any, buffer: bool = True, pdb: bool = False, **kwargs: Any) -> None:
        # A debugger needs the real terminal.
        super().__init__(*args, buffer=buffer and not pdb, pdb=pdb, **kwargs)

    def setup_test_environment(self, **kwargs: Any) -> None:
        super().setup_test_environment(**kwargs)
        capture_logs()
        server = RedisServer().start()
        RedisTestRunner.redis_server = server
        # Fast hashing for the many logins tests make; production keeps Django's default hashers.
        self._caches = override_settings(
            CACHES=caches_at(server.url),
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            # No follower thread in the test process: its own database connection would not see the
            # rows of a TestCase's transaction. Tests call journal.catch_up(); servers they start follow.
            CACHE_JOURNAL_POLL=0,
            # And this process accepts the tokens its servers (server_env) issue.
            SECRET_KEY_FALLBACKS=[SERVER_SECRET_KEY],
        )
        self._caches.enable()
        # No connection pool in this process: test threads (races, barriers) end without closing their
        # connections, and a pooled connection nobody gives back is lost to its pool for good. The
        # servers and scripts tests start (server_env) pool as production does (test_db_pool.py).
        for alias in connections:
            connections[alias].settings_dict.get("OPTIONS", {}).pop("pool", None)
        if self.verbosity >= 1:
            print(f"Test Redis: redis-server {server.port} on 127.0.0.1 (private to this run)")

    def teardown_test_environment(self, **kwargs: Any) -> None:
        self._caches.disable()
        if RedisTestRunner.redis_server:
            RedisTestRunner.redis_server.cleanup()
        super().teardown_test_environment(**kwargs)


def test_redis() -> RedisServer:
    server = RedisTestRunner.redis_server
    if server is None:
        raise RuntimeError("run the tests with manage.py test (RedisTestRunner)")
    return server


def private_media_root(testcase: Any) -> Path:
    """A MEDIA_ROOT of the test's own for the rest of it, removed afterwards."""
    media = Path(tempfile.mkdtemp(prefix="tbf-media-"))
    testcase.addCleanup(shutil.rmtree, media, ignore_errors=True)
    override = override_settings(MEDIA_ROOT=media)
    override.enable()
    testcase.addCleanup(override.disable)
    return media


class CommitAPIClient(APIClient):
    """An APIClient whose requests commit: on_commit callbacks run, as they do in production."""

    def __init__(self, testcase: TestCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.testcase = testcase

    def request(self, **kwargs: Any):  # type: ignore[override]
        with self.testcase.captureOnCommitCallbacks(execute=True):
            return super().request(**kwargs)

    def bearer(self, token: str | None) -> CommitAPIClient:
        if token:
            self.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        else:
            self.credentials()
        return self


class CacheTestCase(TestCase):
    """A TestCase with an empty private Redis, closed breakers and a committing API client."""

    @classmethod
    def setUpClass(cls) -> None:
        # The journal's history begun and committed before the class's transaction opens. Begun inside
        # it (the first test of a run, or the first after a TransactionTestCase emptied the tables),
        # its row and advisory lock stay uncommitted until the test ends, and a test's own threads,
        # each on a connection of its own, wait for them as long.
        journal.reset()
        journal.catch_up()
        super().setUpClass()

    def setUp(self) -> None:
        super().setUp()
        self.redis = test_redis().client()
        self.redis.flushall()  # our private test server only; application code never flushes
        reset_breakers()
        journal.reset()  # as a process starts: it loads the journal before its first read
        journal.catch_up()
        generations.retries.clear()  # a bump a previous test's outage left pending is not this test's
        hot.clear()
        self.api = CommitAPIClient(self)

    def tearDown(self) -> None:
        # A test may have stopped, killed or paused the private Redis: the next one gets it back.
        test_redis().ensure_running()
        reset_breakers()
        super().tearDown()

    def redis_keys(self) -> list[str]:
        return sorted(key.decode() for key in self.redis.scan_iter(count=1000))


class LiveTestCase(TransactionTestCase):
    """For tests whose data other processes must see (gunicorn, workers, threads): real commits.

    ``serialized_rollback`` restores the migrated data (the price list) after each test's flush; every
    TransactionTestCase in the project must keep it on, or the next one that does fails to restore.
    """

    serialized_rollback = True

    def setUp(self) -> None:
        super().setUp()
        self.redis_server = test_redis()
        self.redis_server.ensure_running()
        self.redis = self.redis_server.client()
        self.redis.flushall()  # our private test server only
        reset_breakers()
        journal.reset()  # as a process starts: it loads the journal before its first read
        journal.catch_up()
        generations.retries.clear()  # a bump a previous test's outage left pending is not this test's
        hot.clear()

    def tearDown(self) -> None:
        self.redis_server.ensure_running()
        reset_breakers()
        super().tearDown()


@tag("live")  # make check leaves out every test that starts a server process
class GunicornTestCase(LiveTestCase):
    """A LiveTestCase with the app under gunicorn (two workers) for the whole class, as ``cls.server``."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = GunicornServer(env=server_env(), workers=2).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        super().tearDownClass()


SERVER_SECRET_KEY = "test-only-secret-key-for-server-processes-0123456789"  # noqa: S105


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a server process that shares this test run's database and private Redis."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        database_url = f"sqlite:///{db['NAME']}"
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        database_url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": test_redis().url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": SERVER_SECRET_KEY,
        # Tokens carry a MAC (auth_app/tokens.py): the servers accept those this process issues.
        "DJANGO_SECRET_KEY_FALLBACKS": settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        **extra,
    }


def http_json(
    base: str, method: str, path: str, *, token: str | None = None, body: Any = None, timeout: float = 10
) -> tuple[int, Any]:
    """One JSON request to a server on loopback: (status, decoded body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", method=method, data=data)  # noqa: S310 (loopback)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")
