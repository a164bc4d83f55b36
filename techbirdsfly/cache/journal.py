"""The invalidation journal: every invalidation is a row in the database, and every process reads them all.

Redis alone cannot keep the promise that a write ends what it replaced. Redis can come back *older*
than it was (an RDB save point, AOF everysec, a replica promoted before it got the last writes, a
restore from backup), one process can be cut off from Redis while the others are not, and whoever
can write to Redis can put an old entry and its old generation back. In each case the generation
keys in Redis say an entry is current when it is not.

So ``invalidate`` also writes a ``CacheJournal`` row, in the same transaction as the write that causes
it: the row is durable exactly when the write is. Its id is the scope's new *generation number*. Each
process keeps an in-memory index of the newest row per scope, filled when the process first reads
the cache and kept current by a follower thread (CACHE_JOURNAL_POLL) and by a catch-up before any
read over a new Redis connection is trusted. A cached entry records the generation it was computed
under, and the read path refuses every entry whose number is below the index's: whatever Redis holds
or comes back with, an entry older than an acknowledged write is not served by a process that has
seen the write's row — the writer at once, every other process within one poll, and any process at
once after it reconnects.

**What has committed, not what has the larger id.** Ids are drawn when a row is inserted and commit
in any order: a transaction that drew id 7 may commit seconds after thousands of larger ids were
read. On PostgreSQL every row carries its transaction's id (``xid``), and each read returns the
rows committed since the previous read's snapshot (``pg_visible_in_snapshot``): a row is read once
its transaction commits, however long it ran and however many ids went past it. (On SQLite writes
take the database lock in turn, so ids commit in order and ``id >`` the largest read is exact.)

**Histories.** A restore, a point-in-time recovery, a failover to a lagging standby, a truncation of
the table or ``manage.py flush`` rewind the id sequence: new numbers are lower than generations Redis
already holds. The rows of app ``HISTORY_APP`` name the database's current history together with
the server it belongs to (system identifier, timeline, database oid). When they are gone (truncated,
flushed) or name another server (a restored copy, a promoted standby), a process starts a new
history; every generation carries the label of its history (generations.py), and an entry of another
history is never served, so everything cached before the rewind is stale at once in every process
that has read the journal since.

Rows are pruned once older than the longest TTL (``WINDOW``): by then every entry computed before
them has expired, and entries carry their signed expiry, so Redis cannot keep one alive longer. Ages
are the database's clock (clock.py), the one every process shares.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models.functions import Now

from . import clock
from .identity import ConnectEpoch
from .policy import KINDS

logger = logging.getLogger("techbirdsfly.cache")

# Every entry computed before a row older than this has expired (TTL) by the time the row goes.
WINDOW = max(kind.ttl for kind in KINDS.values()) + 60
# How often the follower deletes rows older than WINDOW (and forgets them).
PRUNE_EVERY = 60.0

# The ``app`` of the rows that name the database's history: never an app's name, never pruned, and
# their removal (a truncation, ``flush``) is itself a new history. Spelled out in the SQL below.
HISTORY_APP = "*history"
# A lock of the journal's own, so that two processes that find no history do not both start one.
_HISTORY_LOCK = 0x74626668  # "tbfh"

# One statement, so one snapshot: the rows it returns are exactly those committed before that
# snapshot and not before the previous read's (all of them within the window, at the first read).
_READ_POSTGRESQL = """
WITH s AS MATERIALIZED (
  SELECT pg_current_snapshot() AS snap,
         extract(epoch FROM clock_timestamp())::float8 AS now,
         concat_ws('/', (SELECT system_identifier FROM pg_control_system()),
                   CASE WHEN pg_is_in_recovery() THEN ''
                        ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END,
                   (SELECT oid FROM pg_database WHERE datname = current_database())) AS server,
         (SELECT string_agg(h.id || ' ' || h.scope, ',' ORDER BY h.id)
            FROM techbirdsfly_cachejournal h WHERE h.app = '*history') AS history
)
SELECT s.snap::text, s.now, s.server, s.history, j.id, j.app, j.scope, extract(epoch FROM j.created_at)::float8
FROM s LEFT JOIN techbirdsfly_cachejournal j ON j.app <> '*history' AND (
  CASE WHEN %(after)s::text IS NULL THEN j.created_at >= to_timestamp(s.now - %(window)s)
  ELSE j.xid >= pg_snapshot_xmin(%(after)s::pg_snapshot)::text::bigint
       AND NOT pg_visible_in_snapshot(j.xid::text::xid8, %(after)s::pg_snapshot) END)
"""
# The rows' ids and the history they were written in, in the statement that writes them.
_RECORD_POSTGRESQL = """
INSERT INTO techbirdsfly_cachejournal (app, scope) SELECT %s, unnest(%s::text[])
RETURNING id, scope, (SELECT string_agg(h.id || ' ' || h.scope, ',' ORDER BY h.id)
                        FROM techbirdsfly_cachejournal h WHERE h.app = '*history')
"""


class _Read(NamedTuple):
    rows: list[tuple[int, str, str, float]]  # id, app, scope, created at (database clock)
    position: Any  # what the next read continues from: a snapshot, or the largest id read
    now: float  # the database's clock
    server: str  # the database server this history belongs to
    history: str  # the history rows, as one string ('' when there are none)


class _Index:
    """The newest journal id of every scope invalidated within WINDOW, as this process knows it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (app, scope) -> (newest id, its row's time by the database's clock, ``notes`` when noted)
        self.latest: dict[tuple[str, str], tuple[int, float, int]] = {}
        self.notes = 0  # batches of rows noted so far
        self.history = ""  # the label of the history the numbers belong to (generations carry it)
        self.position: Any = None
        self.loaded = False
        self.synced_connects = -1  # ConnectEpoch.servers_seen when the last catch-up began

    def note(self, rows: Iterable[tuple[int, str, str, float]]) -> None:
        latest = self.latest
        self.notes += 1
        for row_id, app, scope, at in rows:
            current = latest.get((app, scope))
            if current is None or current[0] < row_id:
                latest[(app, scope)] = (row_id, at, self.notes)

    def reset(self) -> None:
        with self.lock:
            self.__init__()


_index = _Index()


def floor(app: str, scope: str) -> int:
    """The newest generation number of ``scope`` this process knows; 0 when none within WINDOW."""
    found = _index.latest.get((app, scope))
    return found[0] if found else 0


def notes() -> int:
    """A mark of what this process knows now, for ``floor_as_of``."""
    return _index.notes


def floor_as_of(app: str, scope: str, mark: int) -> int:
    """``floor(app, scope)`` if this process knew it at ``mark`` (``notes()``), else -1.

    For a value read from the database between ``mark`` and now whose scope is only known after the
    read: a row known at the mark committed before the read, so the value includes it; a row learned
    since may or may not be in it, and -1 is below every number, so that value is stale.
    """
    found = _index.latest.get((app, scope))
    if found is None:
        return 0
    return found[0] if found[2] <= mark else -1


def history() -> str:
    """The label of the database history this process is in ('' before it has read the journal)."""
    return _index.history


def label(history_rows: str) -> str:
    return hashlib.sha256(history_rows.encode()).hexdigest()[:12] if history_rows else ""


def record(app: str, scopes: list[str]) -> tuple[list[int], str]:
    """Write one row per scope in the current transaction: the scopes' new generation numbers, in order,
    and the label of the history they belong to ('' when the database has none yet)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_RECORD_POSTGRESQL, [app, scopes])
            returned = cursor.fetchall()
        ids = {scope: row_id for row_id, scope, _ in returned}
        return [ids[scope] for scope in scopes], label(returned[0][2] or "")
    from techbirdsfly.models import CacheJournal

    rows = CacheJournal.objects.bulk_create([CacheJournal(app=app, scope=scope) for scope in scopes])
    return [row.pk for row in rows], label(_history_rows())


def note_committed(app: str, scopes: list[str], ids: list[int], history_label: str) -> None:
    """The writer's own rows, known to this process the moment they commit."""
    if history_label != _index.history or not _index.loaded:
        catch_up()  # a history this process has not seen yet: learn it, and these rows with it
        return
    at = clock.now()
    with _index.lock:
        _index.note((row_id, app, scope, at) for row_id, scope in zip(ids, scopes, strict=True))


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


def catch_up(*, after_connects: int | None = None) -> bool:
    """Read the rows this process has not seen. False when the database fails.

    With ``after_connects``, a catch-up that another thread began once that many connections were
    made is enough: concurrent readers of a new connection wait for one query instead of each making one.
    """
    with _index.lock:
        connects = ConnectEpoch.servers_seen
        if after_connects is not None and _index.loaded and _index.synced_connects >= after_connects:
            return True
        try:
            read = _read(_index.position if _index.loaded else None)
            if not _current_history(read):
                _begin_history(read.server)
                read = _read(None)
            if _index.loaded and label(read.history) != _index.history:
                logger.warning(
                    "the database's history changed (a restore, failover, truncation or flush): every"
                    " entry cached before it is stale"
                )
                _index.latest.clear()
                read = _read(None)
        except DatabaseError:
            logger.warning("could not read the cache invalidation journal", exc_info=True)
            return False
        clock.anchor(read.now)
        _index.note(read.rows)
        _index.history = label(read.history)
        _index.position = read.position
        _index.loaded = True
        _index.synced_connects = max(_index.synced_connects, connects)
        return True


def _read(after: Any) -> _Read:
    """Rows committed since ``after`` (None: every row within WINDOW), with the history and the time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_READ_POSTGRESQL, {"after": after, "window": WINDOW})
            result = cursor.fetchall()
        snapshot, now, server, history_rows = result[0][:4]
        rows = [(row[4], row[5], row[6], row[7]) for row in result if row[4] is not None]
        return _Read(rows, snapshot, now, server, history_rows or "")
    from techbirdsfly.models import CacheJournal

    now = time.time()  # SQLite is a file on this machine: its clock is this one
    rows = CacheJournal.objects.exclude(app=HISTORY_APP)
    if after is None:
        rows = rows.filter(created_at__gte=datetime.fromtimestamp(now - WINDOW, tz=UTC))
    else:
        rows = rows.filter(id__gt=after)
    found = [
        (i, app, scope, at.timestamp()) for i, app, scope, at in rows.values_list("id", "app", "scope", "created_at")
    ]
    position = max((row[0] for row in found), default=after or 0)
    return _Read(found, position, now, "sqlite", _history_rows())


def _history_rows() -> str:
    from techbirdsfly.models import CacheJournal

    rows = CacheJournal.objects.filter(app=HISTORY_APP).order_by("id").values_list("id", "scope")
    return ",".join(f"{row_id} {scope}" for row_id, scope in rows)


def _current_history(read: _Read) -> bool:
    """Does the database name a history of its own server (not a copy's, not gone)?"""
    return any(row.split(" ", 2)[-1] == read.server for row in read.history.split(",") if row)


def _begin_history(server: str) -> None:
    """Start a new history: every generation of the previous one is stale from now on."""
    from techbirdsfly.models import CacheJournal

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_HISTORY_LOCK])
        if _current_history(_Read([], None, 0.0, server, _history_rows())):
            return  # another process began it while this one waited
        CacheJournal.objects.filter(app=HISTORY_APP).delete()
        CacheJournal.objects.create(app=HISTORY_APP, scope=f"{uuid.uuid4().hex} {server}")
    logger.info("cache journal: a new database history begins (%s)", server)


def forget_old() -> None:
    """Drop from the index what no entry can still depend on (rows older than WINDOW)."""
    stale = clock.now() - WINDOW
    with _index.lock:
        _index.latest = {scope: found for scope, found in _index.latest.items() if found[1] >= stale}


def prune() -> int:
    """Delete rows older than WINDOW, by the database's clock; any process may, any number of times."""
    from techbirdsfly.models import CacheJournal

    old = CacheJournal.objects.exclude(app=HISTORY_APP).filter(created_at__lt=Now() - timedelta(seconds=WINDOW))
    deleted, _ = old.delete()
    return deleted


# --- the follower -------------------------------------------------------------------------------


class _Follower:
    """One daemon thread per process that reads new rows every CACHE_JOURNAL_POLL seconds.

    So an invalidation that could not reach Redis from the process that made it (cut off from Redis
    while the others are not) is refused by every other process within one poll.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        interval = settings.CACHE_JOURNAL_POLL
        if interval <= 0:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # none yet, or lost in a fork
                self._thread = threading.Thread(
                    target=self._run, args=(interval,), name="cache-journal-follower", daemon=True
                )
                self._thread.start()

    def _run(self, interval: float) -> None:
        next_prune = time.monotonic() + PRUNE_EVERY
        while True:
            time.sleep(interval)
            if not catch_up():
                connections.close_all()  # a fresh connection next time
                continue
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                forget_old()
                try:
                    prune()
                except DatabaseError:
                    logger.warning("could not prune the cache invalidation journal", exc_info=True)


follower = _Follower()


def reset() -> None:
    """Forget everything (tests that empty the database between cases)."""
    _index.reset()
