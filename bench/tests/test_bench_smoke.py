"""The benchmark still runs end to end (``python -m bench.run --smoke``), so it cannot rot.

Its speed figures mean nothing on tiny data and are not checked here; what is checked are the
facts the benchmark relies on and reports: every endpoint answers 200, the cached server answers
from Redis and the bypassed one never does, a hit costs no SQL and one Redis round trip, an expired
hot key under a burst of 64 requests is computed and stored once, the plain django-redis views answer
the same bytes as the endpoints they stand beside, and the report keeps every section.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.test import SimpleTestCase, tag


def smoke_database_url() -> str:
    """A database of its own next to the tests' one, created and dropped by the run."""
    db = settings.DATABASES["default"]
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}_benchsmoke"


@tag("live")
class BenchSmokeTest(SimpleTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            raise cls.failureException(
                "the benchmark seeds PostgreSQL (COPY); run the tests with DATABASE_URL=postgres://..."
            )
        cls.dir = Path(tempfile.mkdtemp(prefix="tbf-bench-smoke-"))
        report, raw = cls.dir / "RESULTS.md", cls.dir / "results.json"
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        done = subprocess.run(
            [
                *(sys.executable, "-m", "bench.run", "--smoke", "--drop-database"),
                *("--database-url", smoke_database_url(), "--output", str(report), "--json", str(raw)),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise cls.failureException(f"bench.run --smoke failed ({done.returncode}):\n{done.stderr[-4000:]}")
        cls.report = report.read_text()
        cls.results = json.loads(raw.read_text())
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_every_endpoint_answered_on_both_servers(self) -> None:
        self.assertEqual(len(self.results["endpoints"]), 9)
        for name, row in self.results["endpoints"].items():
            for server in ("cached", "bypass", "floor"):
                run = row[server]
                with self.subTest(endpoint=name, server=server):
                    self.assertGreater(run["requests"], 0)
                    self.assertEqual(run["not_ok"], 0)
                    self.assertEqual(sum(run["errors"].values()), 0)

    def test_cached_server_hits_and_bypassed_server_never_does(self) -> None:
        for name, row in self.results["endpoints"].items():
            with self.subTest(endpoint=name):
                # A worker's first read over each new Redis connection is a miss by design (pending
                # invalidations are replayed before a new connection is trusted): a few, never many.
                misses = row["cached"]["requests"] - row["cached"]["from_cache"]
                self.assertLessEqual(misses, max(3, row["cached"]["requests"] // 100))
                self.assertEqual(row["bypass"]["from_cache"], 0)
        reads = {"get", "mget"} & set(self.results["bypass_redis_commands"])
        self.assertFalse(reads, "the bypassed server read from Redis")

    def test_a_hit_costs_no_sql_and_one_round_trip(self) -> None:
        for name, row in self.results["endpoints"].items():
            with self.subTest(endpoint=name):
                self.assertEqual(row["hit_cost"]["statuses"], [200])
                self.assertEqual(row["hit_cost"]["hits"], row["hit_cost"]["requests"])
                self.assertEqual(row["hit_cost"]["sql_per_request"], 0)
                self.assertEqual(row["hit_cost"]["round_trips_per_request"], 1)
                # INFO commandstats also counts the commands a script runs: /me's script (EVALSHA, or EVAL
                # the first time a server sees it) runs two MGETs.
                scripts = row["redis_commands"].get("eval", 0) + row["redis_commands"].get("evalsha", 0)
                commands = sum(row["redis_commands"].values()) - 2 * scripts
                self.assertLess(commands / row["cached"]["requests"], 1.2)  # a few fills, never 2 per request

    def test_plain_views_answer_the_same_bytes_in_as_many_round_trips(self) -> None:
        probe = self.results["hit_cpu"]
        for layer, pair in probe["pairs"].items():
            with self.subTest(layer):
                self.assertTrue(pair["same_bytes"])
                self.assertEqual(probe["figures"][layer]["round_trips"], 1)
                self.assertEqual(probe["figures"][pair["plain"]]["round_trips"], 1)
                self.assertGreater(probe["figures"][layer]["us"], 0)

    def test_network_scenario_answers_from_cache(self) -> None:
        network = self.results["network"]
        self.assertGreater(network["round_trip_ms"], network["delay_ms"])
        for name, row in network["endpoints"].items():
            for run in ("cached", "cached_1", "plain", "plain_1"):  # plain: django-redis alone, same bytes
                with self.subTest(endpoint=name, run=run):
                    self.assertGreater(row[run]["requests"], 0)
                    self.assertEqual(row[run]["not_ok"], 0)
                    self.assertGreaterEqual(row[run]["from_cache"], row[run]["requests"] - 3)

    def test_expired_hot_key_is_computed_once_per_burst(self) -> None:
        bursts = self.results["stampede"]["bursts"]
        self.assertTrue(bursts)
        for burst in bursts:
            with self.subTest(endpoint=burst["endpoint"]):
                self.assertEqual(burst["concurrency"], 64)
                self.assertEqual(burst["statuses"], [200])
                self.assertEqual(burst["computes"], 1)
                self.assertEqual(burst["writes"], 1)
                self.assertEqual(burst["from_cache"], 63)

    def test_options_and_report(self) -> None:
        self.assertTrue(
            all(run["requests"] > 0 for v in self.results["variants"].values() for run in v["runs"].values())
        )
        codecs = {c["codec"] for c in self.results["codecs"]["codecs"]}
        self.assertIn("orjson + HMAC (production)", codecs)
        headings = ["## Targets (issues 7 and 15)", "## What a hit costs", "## Stampede", "## Serializers", "hiredis"]
        headings += ["## CPU per hit", "## Redis across a network", "## Invalidation journal (issue 13)"]
        for heading in [*headings, "## Logins (issue 14)"]:
            self.assertIn(heading, self.report)
        self.assertEqual(len(self.results["journal"]["lines"]), 3)
        for row in self.results["endpoints"].values():
            self.assertIn(row["label"], self.report)
