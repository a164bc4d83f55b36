"""The invalidation journal: every invalidation is a row in the database, and every process knows them.

Redis alone cannot keep the promise that a write ends what it replaced. Redis can come back *older*
than it was (an RDB save point, AOF everysec, a replica promoted before it got the last writes, a
restore from backup), one process can be cut off from Redis while the others are not, and whoever
can write to Redis can put an old entry and its old generation back. In each case the generation
keys in Redis say an entry is current when it is not.

So ``invalidate`` also writes a ``CacheJournal`` row, in the same transaction as the write that causes
it: the row is durable exactly when the write is. Its id is the scope's new *generation number*. Each
process keeps an index of the newest number per scope, filled when the process first reads the cache
and kept current by the follower (follower.py: rows pushed on commit, and a poll that guarantees
them) and by a catch-up before any read over a new Redis connection is trusted. A cached entry
records the generation it was computed under, and the read path refuses every entry whose number is
below the index's: whatever Redis holds or comes back with, an entry older than an acknowledged write
is not served by a process that has seen the write's row — the writer at once, every other process
when the push arrives or at its next poll, and any process at once after it reconnects. Rows are read
by what has committed, not by id, which commits out of order (journal_sql.py).

**Histories.** A restore, a point-in-time recovery, a failover to a lagging standby, a truncation of
the table or ``manage.py flush`` rewind the id sequence: new numbers are lower than generations Redis
already holds. The history rows name the database's current history together with the server it
belongs to (system identifier, timeline, database oid). When they are gone (truncated, flushed) or
name another server (a restored copy, a promoted standby), a process starts a new history; every
generation carries the label of its history (generations.py), and an entry of another history is
never served, so everything cached before the rewind is stale in every process that has read the
journal since.

**Size.** The index holds one number per scope, not per row, keyed by the hash of the scope: two
scopes that share a hash share the larger number, which can only refuse more entries, never serve a
stale one. Rows are pruned once older than the longest TTL (``WINDOW``), and forgotten then: every
entry computed before them has expired, and entries carry their signed expiry, so Redis cannot keep
one alive longer. Ages are the database's clock (clock.py), the one every process shares.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import psycopg
from django.db import DatabaseError, connection

from . import clock, journal_sql
from .identity import ConnectEpoch
from .journal_sql import HISTORY_APP, label
from .policy import KINDS
from .scope_numbers import ScopeNumbers

__all__ = ["HISTORY_APP", "label"]

logger = logging.getLogger("techbirdsfly.cache")

# Every entry computed before a row older than this has expired (TTL) by the time the row goes.
WINDOW = max(kind.ttl for kind in KINDS.values()) + 60
# An index entry is two small ints (under 2**60, CPython's 32-byte size): the scope's hash, cut to
# 60 bits, and its newest id shifted over 24 bits of when it was noted (``notes``, wrapping).
_KEY = (1 << 60) - 1
_NOTED_BITS = 24
_NOTED = (1 << _NOTED_BITS) - 1


class _Index:
    """The newest journal number of every scope invalidated within WINDOW, as this process knows it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held only to change the index, never across a database read
        self.reading = threading.Lock()  # one read of the journal at a time
        # scope's key -> newest id << _NOTED_BITS | ``notes`` when it was noted
        self.latest = ScopeNumbers()
        self.notes = 0  # batches of rows noted so far
        self.history = ""  # the label of the history the numbers belong to (generations carry it)
        self.position: Any = None
        self.loaded = False
        self.synced_connects = -1  # ConnectEpoch.servers_seen when the last catch-up began

    def note(self, rows: Iterable[tuple[int, str, str]], *, first: bool = False) -> None:
        """Call with ``lock`` held. ``first``: a first read, one row per scope, into an empty index."""
        latest = self.latest
        self.notes += 1
        mark = self.notes & _NOTED
        if first:
            latest.load((_key(app, scope), row_id << _NOTED_BITS | mark) for row_id, app, scope in rows)
            return
        for row_id, app, scope in rows:
            key = _key(app, scope)
            current = latest.get(key)
            if current is None or current >> _NOTED_BITS < row_id:
                latest.set(key, row_id << _NOTED_BITS | mark)

    def reset(self) -> None:
        with self.lock:
            self.__init__()


_index = _Index()


def _key(app: str, scope: str) -> int:
    return hash((app, scope)) & _KEY


def floor(app: str, scope: str) -> int:
    """The newest generation number of ``scope`` this process knows; 0 when none within WINDOW."""
    found = _index.latest.get(_key(app, scope))
    return found >> _NOTED_BITS if found is not None else 0


def notes() -> int:
    """A mark of what this process knows now, for ``floor_as_of``."""
    return _index.notes


def floor_as_of(app: str, scope: str, mark: int) -> int:
    """``floor(app, scope)`` if this process knew it at ``mark`` (``notes()``), else -1.

    For a value read from the database between ``mark`` and now whose scope is only known after the
    read: a row known at the mark committed before the read, so the value includes it; a row learned
    since may or may not be in it, and -1 is below every number, so that value is stale.
    """
    found = _index.latest.get(_key(app, scope))
    if found is None:
        return 0
    learned_since = 0 < ((found & _NOTED) - mark) & _NOTED < 1 << (_NOTED_BITS - 1)
    return -1 if learned_since else found >> _NOTED_BITS


def history() -> str:
    """The label of the database history this process is in ('' before it has read the journal)."""
    return _index.history


def record(app: str, scopes: list[str]) -> tuple[list[int], str]:
    """Write one row per scope in the current transaction: the scopes' new generation numbers, in order,
    and the label of the history they belong to ('' when the database has none yet)."""
    ids, history_rows = journal_sql.record(connection, app, scopes)
    return ids, label(history_rows)


def note_committed(app: str, scopes: list[str], ids: list[int], history_label: str) -> None:
    """Rows known committed (the writer's own, or pushed by another process): known here at once."""
    if history_label != _index.history or not _index.loaded:
        catch_up()  # a history this process has not seen yet: learn it, and these rows with it
        return
    with _index.lock:
        _index.note((row_id, app, scope) for row_id, scope in zip(ids, scopes, strict=True))


def trusted(start: int) -> bool:
    """May a read begun at connect count ``start`` be checked against the index as it stands?

    No when the index was never loaded, or when this process has connected to a Redis server it had
    not seen (identity.ConnectEpoch: a restart, a promoted replica) since its last catch-up: that
    server may hold entries older than rows the follower has not read yet, and the index must hold
    every row committed before the read for the check to be exact. Then catch up now; False when
    that fails.
    """
    end = ConnectEpoch.servers_seen
    if end == start and _index.loaded and _index.synced_connects >= end:
        return True
    return catch_up(after_connects=end)


def catch_up(*, after_connects: int | None = None, session: Any = None) -> bool:
    """Read the rows this process has not seen. False when the database fails.

    With ``after_connects``, a catch-up that another thread began once that many connections were
    made is enough: concurrent readers of a new connection wait for one query instead of each making one.
    Writers noting their own rows meanwhile are never held up by the read, only by its short update.
    ``session``: the follower's own connection, for the reads that can use it (journal_sql.read).
    """
    if session is None:
        try:
            # Before the lock: a thread that waits for the lock while holding none of the pool's
            # connections cannot starve the thread that holds the lock of one.
            connection.ensure_connection()
        except DatabaseError:
            logger.warning("could not read the cache invalidation journal", exc_info=True)
            return False
    with _index.reading:
        connects = ConnectEpoch.servers_seen
        if after_connects is not None and _index.loaded and _index.synced_connects >= after_connects:
            return True
        try:
            position = _index.position if _index.loaded else None
            read = journal_sql.read(connection, position, WINDOW, session=session)
            if not journal_sql.names_server(read.history, read.server):
                if journal_sql.begin_history(connection, read.server):
                    logger.info("cache journal: a new database history begins (%s)", read.server)
                read = journal_sql.read(connection, None, WINDOW)
            renewed = _index.loaded and label(read.history) != _index.history
            if renewed:
                logger.warning(
                    "the database's history changed (a restore, failover, truncation or flush): every"
                    " entry cached before it is stale"
                )
                read = journal_sql.read(connection, None, WINDOW)
        except (DatabaseError, psycopg.Error):  # psycopg's own: the follower's session is no Django connection
            logger.warning("could not read the cache invalidation journal", exc_info=True)
            return False
        clock.anchor(read.now)
        with _index.lock:
            if renewed:
                _index.latest.clear()
            _index.note(read.rows, first=position is None or renewed)
            _index.history = label(read.history)
            _index.position = read.position
            _index.loaded = True
            _index.synced_connects = max(_index.synced_connects, connects)
        return True


def forget_old() -> None:
    """Drop from the index what no entry can still depend on: numbers older than every row within WINDOW.

    Ids and row times rise together (an id is drawn as its row is written, at its statement's time),
    so a number below the oldest row of the last WINDOW plus a minute is older than WINDOW.
    """
    oldest = journal_sql.oldest_id_within(WINDOW + 60)
    with _index.lock:
        if oldest is None:
            _index.latest.clear()
        else:
            _index.latest.keep(lambda value: value >> _NOTED_BITS >= oldest)


def prune() -> int:
    """Delete rows older than WINDOW, by the database's clock; any process may, any number of times."""
    return journal_sql.prune(WINDOW)


def reset() -> None:
    """Forget everything (tests that empty the database between cases)."""
    _index.reset()
