"""The Redis runbook (docs/operations.md) counts what it says it counts, against a real Redis."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from django.conf import settings

from auth_app.tests.factories import PASSWORD, make_user
from techbirdsfly.testing import CacheTestCase, test_redis

RUNBOOK = Path(settings.BASE_DIR) / "docs" / "operations.md"


def runbook_line(comment: str) -> str:
    """The runbook's command line whose trailing comment starts with ``comment``."""
    lines = [line for line in RUNBOOK.read_text().splitlines() if re.search(rf"#\s*{re.escape(comment)}", line)]
    assert len(lines) == 1, f"expected one runbook line commented {comment!r}, found {lines}"
    return lines[0].split("#", 1)[0].strip()


class LiveTokenRecordsTests(CacheTestCase):
    def test_the_count_counts_token_records_only(self):
        make_user(email="runbook@example.com")
        tokens = []
        for _ in range(3):
            pair = self.api.post("/api/auth/login", {"email": "runbook@example.com", "password": PASSWORD}).json()
            self.assertEqual(self.api.bearer(pair["accessToken"]).get("/api/auth/me").status_code, 200)
            tokens.append(pair["accessToken"])
        # A logout writes its token's generation key; a fill in progress holds a lock key.
        self.api.bearer(tokens[0]).post("/api/auth/logout")
        records = [key for key in self.redis_keys() if re.fullmatch(r"AuthService_auth:token:[0-9a-f]{64}", key)]
        self.redis.set(f"{records[0]}:lock", "1", ex=60)
        suffixed = [key for key in self.redis_keys() if re.fullmatch(r"AuthService_auth:token:[0-9a-f]{64}:\w+", key)]
        self.assertTrue(any(key.endswith(":gen") for key in suffixed), suffixed)
        self.assertTrue(any(key.endswith(":lock") for key in suffixed), suffixed)

        # The documented command as written, with redis-cli pointed at this test's Redis.
        command = runbook_line("live token records")
        self.assertTrue(command.startswith("redis-cli "), command)
        command = command.replace("redis-cli ", f"redis-cli -p {test_redis().port} ", 1)
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10, check=True)
        self.assertEqual(int(out.stdout.strip()), len(records))
        self.assertGreaterEqual(len(records), 2)
