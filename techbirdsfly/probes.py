"""Probes the tests and the benchmark share: Redis round trips counted in-process, a flood of logins.

Free of Django imports, as servers.py is, so the benchmark can use them before it sets Django up;
the tests import them from techbirdsfly.testing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from faults.load import Reply, request


@contextlib.contextmanager
def count_round_trips() -> Iterator[list[int]]:
    """Count every write of a command (or a pipeline) to a Redis socket: one per round trip.

    A write to a Redis that is down counts too (the connect is tried inside it), so a count of 0
    means Redis was not even tried.
    """
    from redis.connection import AbstractConnection

    counter = [0]
    lock = threading.Lock()
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> Any:
        with lock:
            counter[0] += 1
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


@dataclass
class FloodResult:
    logins: Counter  # status -> count (None: no answer)
    refusals: Counter  # "address", "email", "busy" -> count of 429s
    health: list[Reply]
    seconds: float

    @property
    def share_429(self) -> float:
        return self.logins[429] / max(sum(self.logins.values()), 1)

    @property
    def health_max(self) -> float:
        return max((reply.latency for reply in self.health), default=0.0)

    def summary(self) -> str:
        ok = sum(1 for reply in self.health if reply.status == 200)
        return (
            f"logins {dict(self.logins)}, 429 share {self.share_429:.0%} ({dict(self.refusals)}), "
            f"{self.seconds:.1f} s; health {ok}/{len(self.health)} answered 200, max {self.health_max * 1000:.0f} ms"
        )


def _reason(reply: Reply) -> str:
    detail = reply.body.get("detail", "") if isinstance(reply.body, dict) else ""
    for reason in ("address", "email", "at once"):
        if reason in detail:
            return "busy" if reason == "at once" else reason
    return "other"


def flood(
    base: str, *, logins: int = 48, concurrency: int = 8, forwarded: bool = False, probe_every: float = 0.1
) -> FloodResult:
    """Send ``logins`` logins with unknown emails, ``concurrency`` at a time, probing /api/health meanwhile.

    With ``forwarded`` each login claims another client address in X-Forwarded-For (meaningful only
    to a server that trusts one proxy).
    """
    run = f"{time.time_ns():x}"
    done = threading.Event()
    health: list[Reply] = []

    def probe() -> None:
        while not done.is_set():
            health.append(request(base, "GET", "/api/health", timeout=10))
            done.wait(probe_every)

    def login(i: int) -> Reply:
        headers = {"X-Forwarded-For": f"10.{i // 250}.{i % 250}.7"} if forwarded else None
        body = {"email": f"flood-{run}-{i}@bench.example", "password": "not a password of anyone"}
        return request(base, "POST", "/api/auth/login", body=body, headers=headers, timeout=30)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(login, range(logins)))
    seconds = time.monotonic() - started
    done.set()
    prober.join(15)
    return FloodResult(
        Counter(reply.status for reply in replies),
        Counter(_reason(reply) for reply in replies if reply.status == 429),
        health,
        seconds,
    )
