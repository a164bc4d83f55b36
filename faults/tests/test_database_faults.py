"""PostgreSQL lost under load: connections terminated by the server, then the database unreachable.

What may happen while the database is gone: a request that needs it answers a JSON 503 with
Retry-After (never a 500, never an HTML page); one that the cache can serve still answers. What must
happen: no acknowledged write is lost, and the service recovers by itself as soon as the database
is back, with no restart.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from django.db import connection
from django.test import tag

from faults.ledger import lost_writes
from faults.load import MIX, Load, Reply, describe, request, run_load, statuses
from faults.proxy import TcpProxy
from faults.tests.support import make_actors
from techbirdsfly.testing import GunicornServer, LiveTestCase, poll_until, server_env

ACTORS = 8
MAX_REQUESTS = 1500


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate_backends(*, spare: int) -> int:
    """End every session of the test database but ``spare`` (the test's), as a PostgreSQL restart would.

    Called from another thread, which has a connection of its own: it is closed afterwards.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                [spare],
            )
            return cursor.fetchone()[0]
    finally:
        connection.close()


@tag("live")
class DatabaseFaultTests(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.actors = make_actors(ACTORS, tag="dbfault")

    def start_server(self, database_port: int | None = None) -> str:
        env = server_env()
        if database_port:
            db = connection.settings_dict
            env["DATABASE_URL"] = f"postgres://{db['USER']}@127.0.0.1:{database_port}/{db['NAME']}"
        server = GunicornServer(env=env, workers=2).start()
        self.addCleanup(server.stop)
        return server.url

    def every_op_succeeds(self, base: str, seen: Load) -> bool:
        rng = random.Random(0)
        replies = [op.run(base, actor, rng) for actor in self.actors for op in MIX]
        for reply in replies:
            seen.add("recovery", reply)
        return all(reply.status is not None and reply.status < 300 for reply in replies)

    def run_scenario(self, name: str, base: str, fault: Callable[[], None]) -> list[Reply]:
        window: dict[str, float] = {}
        stop = threading.Event()

        def inject() -> None:
            try:
                time.sleep(1.0)
                window["start"] = time.monotonic()
                fault()
                window["end"] = time.monotonic()
                time.sleep(1.0)
            finally:
                stop.set()

        injector = threading.Thread(target=inject)
        injector.start()
        load = run_load(base, self.actors, duration=30, max_requests=MAX_REQUESTS, stop=stop)
        injector.join(30)
        self.assertIn("end", window, "the fault raised")

        recovery = Load()
        recovered_at = time.monotonic()
        recovered = poll_until(lambda: self.every_op_succeeds(base, recovery), timeout=20, interval=0.2)
        recover_seconds = time.monotonic() - recovered_at

        replies = load.all + recovery.all
        unavailable = [r for r in replies if r.status == 503]
        broken = [r for r in replies if r.status is None or (r.status >= 500 and r.status != 503)]
        lost = lost_writes(self.actors)
        print(
            f"\n{name}: requests={len(replies)} 5xx={len(broken)} lost_writes={len(lost)} "
            f"json_503={len(unavailable)} max_latency={max(r.latency for r in replies):.3f}s "
            f"fault_seconds={window['end'] - window['start']:.1f} recovered_in={recover_seconds:.1f}s "
            f"statuses={dict(statuses(replies))}"
        )
        self.assertEqual(broken, [], describe(broken))
        self.assertEqual(lost, [])
        self.assertEqual([r for r in replies if not r.is_json], [], "an answer that is not JSON")
        for reply in unavailable:
            self.assertIn("detail", reply.body)
            self.assertEqual(reply.headers.get("retry-after"), "5")
        self.assertTrue(recovered, "the service did not recover by itself")
        return unavailable

    def test_backends_terminated_under_load(self):
        base = self.start_server()
        terminated = []
        spare = backend_pid()

        def fault() -> None:
            for _ in range(4):
                terminated.append(terminate_backends(spare=spare))
                time.sleep(0.5)

        self.run_scenario("postgres-backends-terminated", base, fault)
        self.assertGreater(sum(terminated), 0, "no server connection was terminated")

    def test_database_unreachable_then_back(self):
        proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432)).start()
        self.addCleanup(proxy.stop)
        base = self.start_server(database_port=proxy.port)
        during: list[Reply] = []

        def fault() -> None:
            proxy.refuse()  # every connection reset, new ones refused
            time.sleep(1.0)
            during.append(request(base, "GET", "/api/health"))
            during.append(request(base, "POST", "/api/images", token=self.actors[0].token, body={"prompt": "x"}))
            time.sleep(2.0)
            proxy.start()

        unavailable = self.run_scenario("postgres-unreachable", base, fault)
        self.assertGreater(len(unavailable), 0, "nothing noticed that the database was gone")
        health, write = during
        self.assertEqual((health.status, health.body["database"]), (503, "down"))
        self.assertTrue(health.is_json)
        # A bad body is a 400 naming the field when the token is served from Redis (validation needs no
        # database); a 503 when the token itself needs the database (a process that has just opened a
        # Redis connection trusts nothing cached until it has replayed parked invalidations, which
        # are in the database). Never anything else.
        self.assertIn(write.status, (400, 503), write.body)
        self.assertTrue(write.is_json)
        if write.status == 400:
            self.assertIn("width", write.body)
