"""The invalidation journal: every invalidation is a row in PostgreSQL, and every process reads them all.

Redis alone cannot keep the promise that a write ends what it replaced. Redis can come back *older*
than it was (an RDB save point, AOF everysec, a replica promoted before it got the last writes, a
restore from backup), one process can be cut off from Redis while the others are not, and whoever
can write to Redis can put an old entry and its old generation back. In each case the generation
keys in Redis say an entry is current when it is not.

So ``invalidate`` also writes a ``CacheJournal`` row, in the same transaction as the write that causes
it: the row is durable exactly when the write is. Its id, from one database sequence, is the scope's
new *generation number*. Each process keeps an in-memory index of the newest row per scope, filled
when the process first reads the cache and kept current by a follower thread (CACHE_JOURNAL_POLL,
0.25 s) and by a catch-up before any read over a new Redis connection is trusted. A cached entry
records the generation it was computed under, and the read path refuses every entry whose generation
number is below the index's: whatever Redis holds or comes back with, an entry older than an
acknowledged write is not served by a process that has seen the write's row — the writer at once,
every other process within one poll, and any process at once after it reconnects.

Rows are pruned once older than the longest TTL (``WINDOW``): by then every entry computed before
them has expired, and entries carry their signed expiry, so Redis cannot keep one alive longer.

Ids are not committed in order: a transaction that took id 7 may commit after one that took id 8 was
read. Ids skipped by a read are kept as *gaps* and asked for again for GAP_WAIT seconds (a rolled-back
transaction's ids never come).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from .connection import ConnectEpoch
from .policy import KINDS

logger = logging.getLogger("techbirdsfly.cache")

# Every entry computed before a row older than this has expired (TTL) by the time the row goes.
WINDOW = max(kind.ttl for kind in KINDS.values()) + 60
# How long an id skipped by a read is asked for again (the longest transaction we wait for).
GAP_WAIT = 60.0
# How often the follower deletes rows older than WINDOW (and forgets them).
PRUNE_EVERY = 60.0
# Only ids this close below the largest seen are watched for (far more than writes in flight at once).
MAX_GAPS = 1_000


class _Index:
    """The newest journal id of every scope invalidated within WINDOW, as this process knows it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latest: dict[tuple[str, str], tuple[int, float]] = {}
        self.max_id = 0
        self.gaps: dict[int, float] = {}
        self.loaded = False
        self.synced_connects = -1  # ConnectEpoch.connects when the last catch-up began

    def note(self, rows: Iterable[tuple[int, str, str]], now: float) -> None:
        latest = self.latest
        for row_id, app, scope in rows:
            current = latest.get((app, scope))
            if current is None or current[0] < row_id:
                latest[(app, scope)] = (row_id, now)

    def reset(self) -> None:
        with self.lock:
            self.__init__()


_index = _Index()


def floor(app: str, scope: str) -> int:
    """The newest generation number of ``scope`` this process knows; 0 when none within WINDOW."""
    found = _index.latest.get((app, scope))
    return found[0] if found else 0


def record(app: str, scopes: list[str]) -> list[int]:
    """Write one row per scope in the current transaction; their ids are the scopes' new generations."""
    from techbirdsfly.models import CacheJournal

    rows = CacheJournal.objects.bulk_create([CacheJournal(app=app, scope=scope) for scope in scopes])
    return [row.pk for row in rows]


def note_committed(app: str, scopes: list[str], ids: list[int]) -> None:
    """The writer's own rows, known to this process the moment they commit."""
    with _index.lock:
        _index.note(zip(ids, [app] * len(scopes), scopes, strict=True), time.monotonic())


def trusted(start: int) -> bool:
    """May a read begun at connect count ``start`` be checked against the index as it stands?

    No when the index was never loaded, or when this process has connected to a Redis server it had
    not seen (connection.ConnectEpoch: a restart, a promoted replica) since its last catch-up: that
    server may hold entries older than rows the follower has not read yet, and the index must hold
    every row committed before the read for the check to be exact. Then catch up now; False when
    that fails.
    """
    end = ConnectEpoch.connects
    if end == start and _index.loaded and _index.synced_connects >= end:
        return True
    return catch_up(after_connects=end)


def catch_up(*, after_connects: int | None = None) -> bool:
    """Read the rows this process has not seen. False when the database fails.

    With ``after_connects``, a catch-up that another thread began once that many connections were
    made is enough: concurrent readers of a new connection wait for one query instead of each making one.
    """
    from techbirdsfly.models import CacheJournal

    with _index.lock:
        connects = ConnectEpoch.connects
        if after_connects is not None and _index.loaded and _index.synced_connects >= after_connects:
            return True
        now = time.monotonic()
        try:
            if not _index.loaded:
                since = timezone.now() - timedelta(seconds=WINDOW)
                rows = list(
                    CacheJournal.objects.filter(created_at__gte=since).order_by("id").values_list("id", "app", "scope")
                )
            else:
                query = CacheJournal.objects.filter(id__gt=_index.max_id)
                if _index.gaps:
                    query = query | CacheJournal.objects.filter(id__in=list(_index.gaps))
                rows = list(query.order_by("id").values_list("id", "app", "scope"))
        except DatabaseError:
            logger.warning("could not read the cache invalidation journal", exc_info=True)
            return False
        _index.note(rows, now)
        _track_gaps(rows, now)
        _index.loaded = True
        _index.synced_connects = max(_index.synced_connects, connects)
        return True


def _track_gaps(rows: list[tuple[int, str, str]], now: float) -> None:
    index = _index
    seen = {row[0] for row in rows}
    if not index.loaded:
        # The first load reads by time: an id below the largest it saw that it did not see belongs to
        # a transaction still open (or rolled back), a gap like any other.
        if rows:
            index.max_id = rows[-1][0]
            for missing in range(max(1, index.max_id - MAX_GAPS), index.max_id):
                if missing not in seen:
                    index.gaps[missing] = now
        return
    for row_id in seen:
        index.gaps.pop(row_id, None)
    top = max(seen, default=index.max_id)
    for missing in range(max(index.max_id + 1, top - MAX_GAPS), top):
        if missing not in seen:
            index.gaps[missing] = now
    index.max_id = max(index.max_id, top)
    for row_id, since in list(index.gaps.items()):
        if now - since > GAP_WAIT:
            del index.gaps[row_id]


def forget_old() -> None:
    """Drop from the index what no entry can still depend on (noted more than WINDOW ago)."""
    stale = time.monotonic() - WINDOW
    with _index.lock:
        _index.latest = {scope: found for scope, found in _index.latest.items() if found[1] >= stale}


def prune() -> int:
    """Delete rows older than WINDOW; any process may, any number of times."""
    from techbirdsfly.models import CacheJournal

    deleted, _ = CacheJournal.objects.filter(created_at__lt=timezone.now() - timedelta(seconds=WINDOW)).delete()
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
