"""Waiting for a server process a test started to listen on its port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable


def wait_listening(
    process: subprocess.Popen, port: int, *, timeout: float, name: str, log: Callable[[], str], stop: Callable[[], None]
) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; RuntimeError (with the log's tail) if
    ``process`` exits first or ``timeout`` passes, after calling ``stop``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    stop()
    raise RuntimeError(f"{name} did not listen within {timeout}s: {log()[-3000:]}")
