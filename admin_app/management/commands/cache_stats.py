from __future__ import annotations

import json
import os

from django.core.management.base import BaseCommand

from admin_app.selectors import cache_stats

from ._common import human_bytes


class Command(BaseCommand):
    help = "Cache hits, misses, errors, hit ratio, key count and memory per app, and the Redis server's memory."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print the JSON of GET /api/admin/cache/stats")

    def handle(self, *args, **options) -> None:
        stats = cache_stats()
        if options["json"]:
            self.stdout.write(json.dumps(stats, indent=2))
            return
        row = "{:<8} {:>10} {:>10} {:>8} {:>9} {:>8} {:>12}"
        self.stdout.write(row.format("app", "hits", "misses", "errors", "hit ratio", "keys", "memory ~"))
        for app, s in stats["apps"].items():
            keys = "-" if s["keys"] is None else str(s["keys"])
            # From the counts, not hitRatio (already rounded to four places: rounding twice shows 37.2% for 19 of 51)
            ratio = f"{s['hits'] / (s['hits'] + s['misses']):.1%}" if s["hits"] + s["misses"] else "-"
            memory = human_bytes(s["memoryBytes"])
            self.stdout.write(row.format(app, s["hits"], s["misses"], s["errors"], ratio, keys, memory))
        redis = stats["redis"]
        if redis["status"] == "up":
            limit = human_bytes(redis["maxmemory"]) if redis["maxmemory"] else "no limit"
            self.stdout.write(
                f"\nRedis {redis['version']}: up, {human_bytes(redis['usedMemory'])} used of {limit}, "
                f"eviction policy {redis['maxmemoryPolicy']}"
            )
        else:
            self.stdout.write(self.style.ERROR("\nRedis: down (keys and memory unknown)"))
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Counters live in the server processes; without their directory this process sees only its own.
            self.stdout.write(
                "Hits, misses and errors are this command's own. For the server's totals set "
                "PROMETHEUS_MULTIPROC_DIR to gunicorn's directory, or GET /api/admin/cache/stats."
            )
