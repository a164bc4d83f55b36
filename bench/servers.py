"""The gunicorn servers a benchmark run starts: techbirdsfly.servers.GunicornServer serving bench.wsgi."""

from __future__ import annotations

import os
import sys
import urllib.request

from techbirdsfly.servers import ROOT, GunicornServer, free_port

__all__ = ["ROOT", "BenchServer", "free_port", "own_environment"]


def own_environment(default_database: str, **settings: str) -> tuple[str, int]:
    """Set up this process for a benchmark run in a process of its own (bench.journal, bench.scale,
    bench.tokencpu): its database (BENCH_DATABASE_URL, else ``default_database`` on the local server),
    a free port for a redis-server of its own, no journal follower, and ``settings``.

    Returns the database URL and the Redis port.
    """
    port = free_port()
    database = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{default_database}")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="techbirdsfly.settings",
        DATABASE_URL=database,
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        CACHE_JOURNAL_POLL="0",
        **settings,
    )
    return database, port


class BenchServer(GunicornServer):
    """The app under gunicorn on loopback, serving bench.wsgi with bench.settings; ready once /bench/floor answers."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        workers: int,
        threads: int,
        worker_class: str = "gthread",
        name: str = "server",
    ) -> None:
        super().__init__(
            env={"DJANGO_SETTINGS_MODULE": "bench.settings", "DJANGO_LOG_LEVEL": "WARNING", **env},
            workers=workers,
            threads=threads,
            worker_class=worker_class,
            app="bench.wsgi:application",
            ready_path="/bench/floor",
            # Every worker must have loaded the app before load starts, not only the first.
            settle=min(0.3 * workers, 3.0),
            name=name,
        )

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.worker_class}, {self.workers} workers{threads}"

    def start(self, timeout: float = 60.0) -> BenchServer:
        super().start(timeout)
        return self

    def metrics(self) -> dict[str, dict[str, float]]:
        """The cache counters of /metrics, summed over workers: {"computes": {"admin": 3.0, ...}, ...}."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:  # noqa: S310 (loopback)
            text = response.read().decode()
        counts: dict[str, dict[str, float]] = {}
        for line in text.splitlines():
            if not line.startswith("techbirdsfly_cache_") or "_total{" not in line:
                continue
            name, _, rest = line.partition("{")
            labels, _, value = rest.partition("} ")
            app = dict(part.split("=", 1) for part in labels.split(",")).get("app", "").strip('"')
            field = name.removeprefix("techbirdsfly_cache_").removesuffix("_total")
            counts.setdefault(field, {})[app] = counts.get(field, {}).get(app, 0.0) + float(value)
        return counts

    def stop(self) -> None:
        super().stop()
        if self.log.exists() and "Traceback" in self.log.read_text(errors="replace"):
            print(f"gunicorn ({self.name}) logged errors; kept {self.log}", file=sys.stderr)
        else:
            self.log.unlink(missing_ok=True)
