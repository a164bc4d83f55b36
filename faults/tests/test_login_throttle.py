"""The login throttle under a concurrent burst across two gunicorn workers, with Redis up and down.

auth_app's own test sends failed logins one after another. An attacker sends them all at once: if
the count is read before any of the burst's failures is recorded, every request of the burst passes
the check and more than 10 passwords are tried within the window.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from django.test import tag

from faults.load import request
from techbirdsfly.testing import GunicornServer, LiveTestCase, server_env, test_redis

LIMIT = 10  # API.md: 429 after 10 failed tries for one email within 60 s
BURST = 40


@tag("live")
class LoginBurstTests(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.server = GunicornServer(env=server_env(), workers=2, threads=8).start()
        self.addCleanup(self.server.stop)
        self.addCleanup(test_redis().ensure_running)

    def burst(self, email: str) -> Counter:
        body = {"email": email, "password": "not the password"}

        def login(_: int):
            # Up to ten real password hashes (production's PBKDF2) share two cores: a generous timeout.
            return request(self.server.url, "POST", "/api/auth/login", body=body, timeout=90)

        with ThreadPoolExecutor(BURST) as pool:
            replies = list(pool.map(login, range(BURST)))
        errors = {reply.error for reply in replies if reply.status is None}
        self.assertEqual(errors, set(), "requests without an answer")
        return Counter(reply.status for reply in replies)

    def test_a_concurrent_burst_tries_at_most_the_limit_of_passwords(self):
        statuses = self.burst("burst@faults.example")
        print(f"\nlogin-burst (Redis up): {dict(statuses)}")
        self.assertEqual(set(statuses), {401, 429})
        self.assertLessEqual(statuses[401], LIMIT, f"{statuses[401]} passwords tried in one window")

    def test_a_concurrent_burst_with_redis_down(self):
        test_redis().stop()
        statuses = self.burst("burst-down@faults.example")
        print(f"\nlogin-burst (Redis down): {dict(statuses)}")
        self.assertEqual(set(statuses), {401, 429})
        self.assertLessEqual(statuses[401], LIMIT, f"{statuses[401]} passwords tried in one window")
