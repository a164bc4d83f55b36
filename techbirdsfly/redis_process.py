"""A redis-server process of a test's own on loopback, which the test may stop, kill and restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from techbirdsfly.servers import free_port


class RedisServer:
    """A redis-server process of our own on loopback, which tests may stop, kill and restart."""

    def __init__(self, port: int | None = None, *, args: list[str] | None = None, conf: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not on PATH; the tests need it (Debian: apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tbf-redis-"))
        self.conf = conf
        self.args = args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)

    def start(self) -> RedisServer:
        if self.process is not None and self.process.poll() is None:
            return self  # already running (a second server could not bind the port anyway)
        command = [self.binary]
        if self.conf:
            command.append(str(self.conf))
        command += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        if not self.conf:
            command += ["--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"]
        command += self.args
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10.0, **client_kwargs: Any) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client(**client_kwargs).ping():
                    return
            except redis.exceptions.AuthenticationError:
                return
            except redis.exceptions.RedisError:
                if self.process and self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}") from None
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def stop(self, *, save: bool = False) -> None:
        """Shut down; with ``save`` the dataset is written to dump.rdb first."""
        if not self.process or self.process.poll() is not None:
            return
        # Without retries: redis-py 8 would otherwise retry the dropped connection with backoff, which
        # makes every stop wait out the whole backoff.
        with contextlib.suppress(redis.exceptions.ConnectionError):
            self.client(retry=Retry(NoBackoff(), 0)).shutdown(save=save, nosave=not save)
        self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def pause(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def restart(self, *, from_dump: bool = False) -> RedisServer:
        self.stop(save=from_dump)
        if not from_dump:
            (self.dir / "dump.rdb").unlink(missing_ok=True)
        return self.start()

    def ensure_running(self) -> None:
        """Resume it if paused, start it if stopped or killed."""
        self.resume()
        if self.process is None or self.process.poll() is not None:
            self.start()

    def cleanup(self) -> None:
        self.resume()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
