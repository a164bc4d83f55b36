"""The journal follower: one thread per process that keeps the journal's index current.

Pushed, then guaranteed. On PostgreSQL every write's rows arrive as a ``NOTIFY`` when its transaction
commits (journal_sql.py), on a connection of the follower's own that ``LISTEN``s, and are noted at
once. A notification can be lost (the listening connection drops, a payload too large to carry its
rows, the process forked), so every CACHE_JOURNAL_POLL seconds the follower also reads what has
committed since its last read: that read, not the push, is the guarantee. Idle, the thread sleeps in
the listening connection's socket; a poll costs one prepared statement on that same connection.

That connection is the process's one database session outside the pool: ``LISTEN`` and prepared
statements need a session, which PgBouncer's transaction mode does not keep, so it goes to
``DATABASE_DIRECT_URL`` (techbirdsfly/db.py). Whatever else the follower reads (the first read, a new
history) borrows a pooled connection and gives it back after each round.

At most one follower per process: it starts with the first cached read, and again in a forked child
(a gunicorn worker), whose copy of the parent's thread does not run.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, connections

from techbirdsfly.db import direct_connection

from . import journal, journal_sql

logger = logging.getLogger("techbirdsfly.cache")

# How often the follower deletes rows older than the window (and forgets them).
PRUNE_EVERY = 60.0


class _Follower:
    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        # True from the thread's start to its end, and False in a forked child, where the parent's
        # thread does not run: the check every cached read makes, one attribute instead of is_alive().
        self._running = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.listening = False  # listening for pushed rows, after a first poll
        self.pushed = 0  # rows noted from notifications

    def ensure_running(self) -> None:
        if self._running:
            return
        interval = settings.CACHE_JOURNAL_POLL
        if interval <= 0:
            return
        with self._lock:
            if not self._running:  # none yet, ended, or lost in a fork
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, args=(interval,), name="cache-journal-follower", daemon=True
                )
                self._running = True  # before the start: a thread that ends at once says so itself
                try:
                    self._thread.start()
                except BaseException:
                    self._running = False
                    raise

    def _forked(self) -> None:
        self._running = False
        self._lock = threading.Lock()  # the parent's may have been held by another of its threads

    def stop(self) -> None:
        """Stop the thread and close its connections (tests; a process that ends)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, interval: float) -> None:
        listener: psycopg.Connection[Any] | None = None
        next_poll = next_prune = time.monotonic()
        try:
            while not self._stop.is_set():
                if listener is None or listener.closed:
                    listener = _listen()
                # Short waits, so that stop() is prompt; a wait costs one wake-up, not a query.
                wait = min(max(next_poll - time.monotonic(), 0.001), 1.0)
                if listener is None:
                    self._stop.wait(wait)
                else:
                    try:
                        self._wait_for_pushes(listener, wait)
                    except psycopg.Error:
                        logger.warning("cache journal: lost the connection that listens for pushes", exc_info=True)
                        listener.close()
                if time.monotonic() < next_poll:
                    continue
                next_poll = time.monotonic() + interval
                caught_up = journal.catch_up(session=_usable(listener))
                _release()
                if not caught_up:
                    continue
                self.listening = listener is not None and not listener.closed
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY
                    try:
                        journal.forget_old()
                        journal.prune()
                    except DatabaseError:
                        logger.warning("could not prune the cache invalidation journal", exc_info=True)
                    finally:
                        _release()
        finally:
            self.listening = False
            self._running = False
            if listener is not None:
                listener.close()
            connections.close_all()

    def _wait_for_pushes(self, listener: psycopg.Connection[Any], wait: float) -> None:
        """Take what has arrived, then sleep in the socket until more does or ``wait`` runs out.

        The socket is waited on here rather than by ``notifies(timeout=...)``, which wakes every few
        milliseconds while it waits: an idle follower must cost next to nothing. Notifications that
        arrived during the poll's query are already read off the socket, hence the first take.
        """
        for notice in listener.notifies(timeout=0):
            self.take(notice.payload)
        readable, _, _ = select.select([listener.pgconn.socket], [], [], wait)
        if readable:
            for notice in listener.notifies(timeout=0):
                self.take(notice.payload)

    def take(self, payload: str) -> None:
        """Note the rows of one notification (or read now, when it could not carry them)."""
        pushed = journal_sql.parse_push(payload)
        if pushed is None:
            return
        app, history, rows = pushed
        if not rows:
            journal.catch_up()
            _release()
            return
        journal.note_committed(app, [scope for _, scope in rows], [row_id for row_id, _ in rows], history)
        self.pushed += len(rows)


_warned = threading.Event()  # a database that will not listen is said once, not at every poll


def _listen() -> psycopg.Connection[Any] | None:
    """A connection of the follower's own that listens for pushed rows; None where there is no push."""
    if connection.vendor != "postgresql":
        return None
    try:
        listener = direct_connection(application_name="techbirdsfly-journal")
        listener.execute(f"LISTEN {journal_sql.CHANNEL}")
    except psycopg.Error:
        if not _warned.is_set():
            _warned.set()
            logger.warning("cache journal: cannot listen for pushed rows; polling only", exc_info=True)
        return None
    _warned.clear()
    return listener


def _release() -> None:
    """Give a pooled connection this thread borrowed back (without a pool: a fresh one next time)."""
    if connection.connection is not None:
        connections.close_all()


def _usable(listener: psycopg.Connection[Any] | None) -> psycopg.Connection[Any] | None:
    return listener if listener is not None and not listener.closed else None


follower = _Follower()
os.register_at_fork(after_in_child=follower._forked)
