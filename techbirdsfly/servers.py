"""Server processes that tests and the benchmark start on loopback: gunicorn serving one WSGI app.

Free of Django imports, so the benchmark can start servers before it sets Django up; the tests use
it through ``techbirdsfly.testing`` and the benchmark through ``bench.servers.BenchServer``.
"""

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


class GunicornServer:
    """``app`` under gunicorn (infra/gunicorn.conf.py) on a free loopback port.

    ``start`` returns once ``ready_path`` answers (any HTTP status: health may be degraded on purpose),
    then waits ``settle`` seconds more (for every worker to load the app, not only the first).
    """

    def __init__(
        self,
        *,
        env: dict[str, str],
        workers: int = 2,
        threads: int = 4,
        worker_class: str = "gthread",
        app: str = "techbirdsfly.wsgi:application",
        ready_path: str = "/api/health",
        settle: float = 0.0,
        name: str = "test",
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.workers, self.threads, self.worker_class = workers, threads, worker_class
        self.app, self.ready_path, self.settle, self.name = app, ready_path, settle, name
        self.env = {
            **os.environ,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_WORKER_CLASS": worker_class,
            "GUNICORN_ACCESS_LOG": "",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="tbf-metrics-"),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"tbf-gunicorn-{name}-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The gunicorn master's; its children are the workers."""
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> GunicornServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own gunicorn and arguments)
                [str(gunicorn), "-c", str(ROOT / "infra" / "gunicorn.conf.py"), self.app],
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
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2):  # noqa: S310 (loopback)
                    pass
            except urllib.error.HTTPError:
                pass  # it answers
            except OSError:
                time.sleep(0.1)
                continue
            time.sleep(self.settle)
            return self
        self.stop()
        raise RuntimeError(f"gunicorn ({self.name}) did not answer within {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
