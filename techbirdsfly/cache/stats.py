"""Hit, miss and error counts per app, summed across every server process.

Counts are Prometheus counters. Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set (see
infra/gunicorn.conf.py) and each worker writes its counters to a file there, so any worker can
report the total of all of them; in a single process (runserver, tests) the default registry holds them.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.multiprocess import MultiProcessCollector

from .policy import APPS

HITS = Counter("techbirdsfly_cache_hits", "Cache reads answered from Redis", ["app"])
MISSES = Counter("techbirdsfly_cache_misses", "Cache reads that went to the database", ["app"])
COMPUTES = Counter("techbirdsfly_cache_computes", "Values computed from the database to fill the cache", ["app"])
ERRORS = Counter("techbirdsfly_cache_errors", "Cache operations that failed or were skipped (Redis down)", ["app"])
INVALIDATION_ERRORS = Counter(
    "techbirdsfly_cache_invalidation_errors",
    "Invalidations (generation bumps) that failed to reach Redis: first tries and retries",
    ["app"],
)
FILL_POLLS = Counter("techbirdsfly_cache_fill_polls", "Reads of an entry another caller was filling", ["app"])


class _ByApp:
    """A counter's child per app, looked up once: ``labels()`` costs a lock and a dict per call."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[str, object] = {}

    def __call__(self, app: str):
        child = self._children.get(app)
        if child is None:
            child = self._children[app] = self._counter.labels(app)
        return child


hit, miss, compute, error = _ByApp(HITS), _ByApp(MISSES), _ByApp(COMPUTES), _ByApp(ERRORS)
fill_poll = _ByApp(FILL_POLLS)
invalidation_error = _ByApp(INVALIDATION_ERRORS)

_SAMPLES = {
    "techbirdsfly_cache_hits_total": "hits",
    "techbirdsfly_cache_misses_total": "misses",
    "techbirdsfly_cache_errors_total": "errors",
    "techbirdsfly_cache_computes_total": "computes",
}


def registry() -> CollectorRegistry:
    """The registry that sees every process's metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return merged
    return REGISTRY


def cache_counts() -> dict[str, dict[str, int]]:
    counts = {app: {"hits": 0, "misses": 0, "errors": 0, "computes": 0} for app in APPS}
    for metric in registry().collect():
        for sample in metric.samples:
            field = _SAMPLES.get(sample.name)
            app = sample.labels.get("app")
            if field and app in counts:
                counts[app][field] += int(sample.value)
    return counts
