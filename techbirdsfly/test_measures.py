"""What tests measure instead of wall time: a breaker clock they move, fill polls, the Redis wait.

A test on a busy machine may not bound how long something took; it may bound what the code controls.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from techbirdsfly.cache.calls import set_breaker_clock


class ManualClock:
    """A monotonic clock that moves only when told to: ``advance(seconds)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@contextlib.contextmanager
def breaker_clock() -> Iterator[ManualClock]:
    """Every cache breaker of this process reads a :class:`ManualClock` inside the block.

    A test moves the clock past the cooldown (``clock.advance(...)``) instead of sleeping through it,
    and an open breaker stays open, however slow the machine, until the test advances the clock.
    """
    clock = ManualClock()
    previous = set_breaker_clock(clock)
    try:
        yield clock
    finally:
        set_breaker_clock(previous)


def fill_polls(app: str) -> float:
    """How many times this process has polled for an entry another caller was filling (``app``'s)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("techbirdsfly_cache_fill_polls_total", {"app": app}) or 0.0


def polls_within(seconds: float) -> int:
    """The most polls one waiter for a peer's fill can make in ``seconds`` (techbirdsfly/cache/reads.py).

    Each poll follows a sleep of at least its pause, so a busy machine only makes fewer: a bound on
    polls holds where a bound on wall time would not.
    """
    from techbirdsfly.cache.reads import FILL_POLL_FIRST, FILL_POLL_LONGEST

    polls, slept, pause = 0, 0.0, FILL_POLL_FIRST
    while slept < seconds:
        polls += 1
        slept += pause
        pause = min(pause * 2, FILL_POLL_LONGEST)
    return polls


def cache_wait(response: Any) -> float:
    """Seconds the layer measured the request waiting on Redis: its ``Server-Timing: cache;dur=<ms>``.

    What the request budget counts (techbirdsfly/cache/calls.py): Redis's answers, not the time a
    thread waited for a CPU, so a test may bound it on a busy machine where it may not bound wall
    time. ``response``: a test client's response, or a faults.load Reply.
    """
    timing = response.headers.get("server-timing", "")
    for metric in timing.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "cache" and params.startswith("dur="):
            return float(params[4:]) / 1000
    raise AssertionError(f"no cache duration in Server-Timing: {timing!r}")
