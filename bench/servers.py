"""The processes a benchmark run starts: redis-servers of its own and gunicorn with bench.wsgi."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchServer:
    """The app under gunicorn (infra/gunicorn.conf.py) on loopback, serving bench.wsgi."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        workers: int,
        threads: int,
        worker_class: str = "gthread",
        name: str = "server",
    ) -> None:
        self.name = name
        self.port = free_port()
        self.workers, self.threads, self.worker_class = workers, threads, worker_class
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env = {
            **inherited,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_WORKER_CLASS": worker_class,
            "GUNICORN_ACCESS_LOG": "",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="tbf-bench-metrics-"),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_LOG_LEVEL": "WARNING",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"tbf-bench-{name}-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The gunicorn master's; its children are the workers."""
        assert self.process is not None
        return self.process.pid

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.worker_class}, {self.workers} workers{threads}"

    def start(self, timeout: float = 60.0) -> BenchServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", str(ROOT / "infra" / "gunicorn.conf.py"), "bench.wsgi:application"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/bench/floor", timeout=2):  # noqa: S310 (loopback)
                    # Every worker must have loaded the app before load starts, not only the first.
                    time.sleep(min(0.3 * self.workers, 3.0))
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn ({self.name}) did not answer within {timeout}s: {self.log.read_text()[-3000:]}")

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
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        if self.log.exists() and "Traceback" in self.log.read_text(errors="replace"):
            print(f"gunicorn ({self.name}) logged errors; kept {self.log}", file=sys.stderr)
        else:
            self.log.unlink(missing_ok=True)
