"""Bumps that did not reach Redis, retried until they land.

Other processes learn of a write from the journal (journal.py, follower.py), but Redis is what makes
it visible at once. So a failed bump (generations.py) is counted (stats.invalidation_error, on
/metrics), logged once per run of failures, its scopes are marked being written (every process then
reads them from the database and stores nothing), and it is retried here until it lands. After
journal.WINDOW every entry computed before the write has expired, and the retry has nothing left to
protect.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from . import journal, stats
from .calls import CacheUnavailable

logger = logging.getLogger("techbirdsfly.cache")

RETRY_FIRST = 0.05
RETRY_MAX = 1.0


class Retries:
    """The failed bumps of this process, retried by one daemon thread until each lands.

    ``bump(app, numbered, history)`` writes generations; ``mark(app, scopes)`` marks scopes being
    written (generations.py gives both, so that this module needs nothing of it).
    """

    def __init__(self, bump: Callable[..., None], mark: Callable[..., None]) -> None:
        self._bump, self._mark = bump, mark
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # (app, scope) -> (number, history, given up after: monotonic)
        self._pending: dict[tuple[str, str], tuple[int, str, float]] = {}
        self._failing: set[str] = set()  # apps whose failure was logged and has not landed since

    def log_once(self, app: str, exc: BaseException) -> None:
        with self._lock:
            first = app not in self._failing
            self._failing.add(app)
        if first:
            logger.warning(
                "invalidation of %s did not reach Redis (%s): its scopes are read from the database until"
                " a retry lands; other processes see it by the journal meanwhile",
                app,
                exc,
                exc_info=not isinstance(exc, CacheUnavailable),
            )

    def landed(self, app: str) -> None:
        """A bump of ``app`` landed: once none of its bumps is pending, the next failure is logged again."""
        if app not in self._failing:
            return
        with self._lock:
            if any(pending_app == app for pending_app, _ in self._pending):
                return  # another shard, say, still refuses: the run of failures goes on
            self._failing.discard(app)
        logger.warning("invalidations of %s reach Redis again", app)

    def pending(self) -> dict[tuple[str, str], tuple[int, str]]:
        with self._lock:
            return {scope: (number, history) for scope, (number, history, _) in self._pending.items()}

    def add(self, app: str, numbered: list[tuple[str, int]], history: str) -> None:
        until = time.monotonic() + journal.WINDOW
        with self._lock:
            for scope, number in numbered:
                current = self._pending.get((app, scope))
                if current is None or current[1] != history or current[0] < number:
                    self._pending[(app, scope)] = (number, history, until)
            if self._thread is None or not self._thread.is_alive():  # none yet, or lost in a fork
                self._thread = threading.Thread(target=self._run, name="cache-bump-retries", daemon=True)
                self._thread.start()
        self._wake.set()

    def clear(self) -> None:
        """Forget every pending retry (tests that empty Redis and the database between cases)."""
        with self._lock:
            self._pending.clear()
            self._failing.clear()

    def _run(self) -> None:
        pause = RETRY_FIRST
        while True:
            self._wake.wait()
            time.sleep(pause)
            pause = RETRY_FIRST if self.retry_once() else min(pause * 2, RETRY_MAX)

    def retry_once(self) -> bool:
        """Try every pending bump once; True when none is left.

        Not through ``redis_call``: a thread in the background neither opens nor closes the breaker the
        requests share, nor adds to their error counts; the socket timeout bounds each attempt.
        """
        now = time.monotonic()
        with self._lock:
            self._pending = {k: v for k, v in self._pending.items() if v[2] > now}
            batches: dict[tuple[str, str], list[tuple[str, int]]] = {}
            for (app, scope), (number, history, _) in self._pending.items():
                batches.setdefault((app, history), []).append((scope, number))
            if not batches:
                self._wake.clear()
                return True
        for (app, history), numbered in batches.items():
            try:
                self._bump(app, numbered, history)
            except Exception as exc:  # counted, logged once, retried
                stats.invalidation_error(app).inc()
                self.log_once(app, exc)
                with contextlib.suppress(Exception):
                    self._mark(app, [scope for scope, _ in numbered])
                continue
            with self._lock:
                for scope, number in numbered:
                    current = self._pending.get((app, scope))
                    if current is not None and current[:2] == (number, history):
                        del self._pending[(app, scope)]
            self.landed(app)
        with self._lock:
            return not self._pending
