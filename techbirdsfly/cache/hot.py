"""On Redis Cluster, a short-lived copy in each process of the few entries it reads most.

A key lives on one shard, so one hot entry (the dashboard; a popular account's summary) sends every
read of it to the same shard, however many shards there are. Here a process that read an entry
HOT_READS times within a HOT_WINDOW keeps what Redis last answered for up to
CACHE_HOT_COPY_SECONDS, and serves it without asking Redis; at most HOT_COPIES entries at once. The
first read from Redis after a copy expires renews it: a hot entry costs its shard one read per
CACHE_HOT_COPY_SECONDS per process, and the shards are left to the reads that spread by key.

Staleness, bounded:
- in the process that writes: none. ``invalidate`` drops the copies of its scopes before the
  transaction commits, and a copy is refused once the journal knows a newer number for its scope
  (journal.note_committed notes the writer's rows the moment they commit);
- in every other process: at most CACHE_HOT_COPY_SECONDS after the write commits (the copy's life),
  sooner when the journal follower reads the write's row (CACHE_JOURNAL_POLL).
Entries of the auth app are never copied: a logout or a password change is final everywhere at
once (SECURITY.md). Nor is an entry read with a caller's own ``fresh`` check. A single Redis has no
shard to relieve, and keeps no copies.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

from django.conf import settings

from . import cluster, journal
from .policy import Kind

HOT_READS = 20  # reads of one entry within HOT_WINDOW that make it hot
HOT_WINDOW = 1.0
HOT_COPIES = 8
NEVER = frozenset({"auth"})  # apps whose entries are never copied


class _Copy(NamedTuple):
    value: Any
    number: int  # the generation's number (0: no scope)
    history: str
    until: float  # time.monotonic()


_copies: dict[tuple[str, str, str | None], _Copy] = {}
_reads: dict[tuple[str, str, str | None], int] = {}
_lock = threading.Lock()


class _Window:
    ends = 0.0


taken = 0  # copies taken or renewed by this process (each one cost the Redis read that took it)


def eligible(policy: Kind, cache: Any, fresh: Any) -> bool:
    return (
        fresh is None and policy.app not in NEVER and settings.CACHE_HOT_COPY_SECONDS > 0 and cluster.on_cluster(cache)
    )


def get(app: str, key: str, scope: str | None) -> _Copy | None:
    """The live copy of the entry, if this process keeps one that no write it knows has made stale."""
    copy = _copies.get((app, key, scope))
    if copy is None or time.monotonic() >= copy.until:
        return None  # an expired copy stays, as a mark that the entry is hot: the next hit renews it
    if scope is not None and (journal.floor(app, scope) > copy.number or journal.history() != copy.history):
        return None
    return copy


def offer(app: str, key: str, scope: str | None, value: Any, generation: str | None) -> None:
    """A read answered ``value`` from Redis (under ``generation``): keep a copy if the entry is hot."""
    global taken
    now = time.monotonic()
    name = (app, key, scope)
    with _lock:
        if now >= _Window.ends:
            _reads.clear()
            _Window.ends = now + HOT_WINDOW
        reads = _reads[name] = _reads.get(name, 0) + 1
        if reads < HOT_READS and name not in _copies:
            return
        if name not in _copies and len(_copies) >= HOT_COPIES:
            for other, copy in list(_copies.items()):
                if copy.until <= now:
                    del _copies[other]
            if len(_copies) >= HOT_COPIES:
                return
        number, history = 0, ""
        if scope is not None:
            parts = (generation or "").split(".")
            if len(parts) != 3 or not parts[0].isdigit():
                return
            number, history = int(parts[0]), parts[1]
        _copies[name] = _Copy(value, number, history, now + settings.CACHE_HOT_COPY_SECONDS)
        taken += 1


def forget(app: str, scopes: list[str]) -> None:
    """Drop this process's copies of entries of ``scopes`` (a write to them is under way)."""
    if not _copies:
        return
    gone = set(scopes)
    with _lock:
        for name in [name for name in _copies if name[0] == app and name[2] in gone]:
            del _copies[name]


def clear() -> None:
    global taken
    with _lock:
        _copies.clear()
        _reads.clear()
        _Window.ends = 0.0
        taken = 0
