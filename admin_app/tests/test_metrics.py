"""GET /metrics: Prometheus text with cache counters and request latency, summed over gunicorn workers."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.test import tag
from prometheus_client.parser import text_string_to_metric_families

from admin_app.metrics import route_of
from techbirdsfly.testing import GunicornServer, LiveTestCase, http_json, server_env

from .factories import make_token, make_user
from .test_cache_api import AdminTestCase

LATENCY = "techbirdsfly_http_request_duration_seconds"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text document, keyed by name and labels (parsing fails on bad text)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


def latency_count(parsed: dict, route: str, method: str = "GET", status: str = "200") -> float:
    return value(parsed, f"{LATENCY}_count", method=method, route=route, status=status)


class MetricsTests(AdminTestCase):
    def scrape(self) -> dict:
        self.api.bearer(None)
        response = self.api.get("/metrics")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/plain"))
        return samples(response.content.decode())

    def test_needs_no_token_and_has_the_cache_counters(self):
        parsed = self.scrape()
        names = {name for name, _ in parsed}
        for counter in ("hits", "misses", "errors"):
            self.assertIn(f"techbirdsfly_cache_{counter}_total", names)

    def test_latency_is_labelled_by_route_pattern_not_path(self):
        route = "api/admin/cache/<str:app>/keys"
        before = self.scrape()
        self.api.bearer(self.staff_token)
        self.api.get("/api/admin/cache/billing/keys")
        self.api.get("/api/admin/cache/image/keys")
        self.api.get("/api/admin/cache/image/keys", {"count": "0"})
        self.api.get("/api/admin/cache/unknown/keys")
        after = self.scrape()
        self.assertEqual(latency_count(after, route) - latency_count(before, route), 2)
        self.assertEqual(latency_count(after, route, status="400") - latency_count(before, route, status="400"), 1)
        self.assertEqual(latency_count(after, route, status="404") - latency_count(before, route, status="404"), 1)
        routes = {dict(labels).get("route") for name, labels in after if name.startswith(LATENCY)}
        self.assertFalse({r for r in routes if r and "cache/billing" in r})  # a raw path, not a pattern

    def test_unmatched_paths_share_one_series(self):
        before = self.scrape()
        for n in range(3):
            self.api.get(f"/no/such/page/{n}")
        after = self.scrape()
        self.assertEqual(
            latency_count(after, "<unmatched>", status="404") - latency_count(before, "<unmatched>", status="404"), 3
        )

    def test_unknown_methods_are_one_label(self):
        before = self.scrape()
        self.api.generic("BREW", "/api/health")
        after = self.scrape()
        self.assertEqual(
            latency_count(after, "api/health", method="other", status="405")
            - latency_count(before, "api/health", method="other", status="405"),
            1,
        )

    def test_route_of_a_request_that_never_resolved(self):
        request = self.client.get("/static/admin_app/dashboard.js").wsgi_request
        self.assertEqual(route_of(request), "<static>")


@tag("live")
class GunicornMetricsTests(LiveTestCase):
    """Two gunicorn workers: the API's stats and /metrics count what both served, exactly."""

    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.server = GunicornServer(env=server_env(), workers=2).start()
        self.addCleanup(self.server.stop)
        self.token = make_token(make_user(staff=True))

    def get(self, path: str) -> tuple[int, object]:
        return http_json(self.server.url, "GET", path, token=self.token)

    def validate(self) -> int:
        return http_json(self.server.url, "POST", "/api/auth/validate-token", token=self.token)[0]

    def worker_pids(self) -> set[str]:
        # prometheus_client's multiprocess mode keeps one file per metric type and process.
        directory = Path(self.server.env["PROMETHEUS_MULTIPROC_DIR"])
        return {m.group(1) for f in os.listdir(directory) if (m := re.fullmatch(r"histogram_(\d+)\.db", f))}

    def test_stats_and_metrics_sum_both_workers(self):
        # Until both workers have served: concurrent requests are accepted by whichever worker is free.
        # Token validation is a cache read, and a worker's first read after it opens a Redis connection
        # is a miss by design (it replays pending invalidations first, see the cache layer): after
        # this warm-up both workers are past that, so the counts below are exact.
        warmup = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(50):
                statuses = list(pool.map(lambda _: self.validate(), range(16)))
                warmup += len(statuses)
                self.assertEqual(set(statuses), {200})
                if len(self.worker_pids()) == 2:
                    break
        self.assertEqual(len(self.worker_pids()), 2, "one worker served every request")

        status, before = self.get("/api/admin/cache/stats")
        self.assertEqual(status, 200)
        reads = 9
        for _ in range(reads):
            self.assertEqual(self.get("/api/admin/analytics/dashboard")[0], 200)
        status, after = self.get("/api/admin/cache/stats")

        def moved(app: str, field: str) -> int:
            return after["apps"][app][field] - before["apps"][app][field]

        # The dashboard: one miss, then hits from whichever worker answered.
        self.assertEqual((moved("admin", "misses"), moved("admin", "hits")), (1, reads - 1))
        # Every request validated its token: all hits (the first stats request cached it),
        # including the second stats request, which counts before it reads the counters.
        self.assertEqual((moved("auth", "misses"), moved("auth", "hits")), (0, reads + 1))
        self.assertEqual(moved("billing", "hits") + moved("billing", "misses"), 0)

        status, text = http_json(self.server.url, "GET", "/metrics")
        self.assertEqual(status, 200)
        parsed = samples(text)
        self.assertEqual(value(parsed, "techbirdsfly_cache_hits_total", app="admin"), after["apps"]["admin"]["hits"])
        self.assertEqual(value(parsed, "techbirdsfly_cache_misses_total", app="admin"), 1)
        # Both workers validated tokens; either one's /metrics reports all of them.
        self.assertEqual(latency_count(parsed, "api/auth/validate-token", method="POST"), warmup)
        self.assertEqual(latency_count(parsed, "api/admin/analytics/dashboard"), reads)
        self.assertEqual(latency_count(parsed, "api/admin/cache/stats"), 2)
        route = ("route", "api/auth/validate-token")
        buckets = [v for (name, labels), v in parsed.items() if name == f"{LATENCY}_bucket" and route in labels]
        self.assertIn(float(warmup), buckets)  # the +Inf bucket
