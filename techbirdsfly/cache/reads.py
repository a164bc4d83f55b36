"""The read path: ``get_or_compute``, cache-aside over one entry and its scope's generation.

Reads answer from Redis when they can and from ``compute`` (the database) otherwise, and say which.
Redis being down, slow or full is never an error for the caller: the breaker skips Redis after one
failure and the value is computed.

An entry is ``{"k": its own Redis key, "v": value, "g": generation, "x": expiry, "d": compute time}``,
signed as a whole (serializers.py). It is a hit only under the key it names, before its signed expiry,
with the scope's current generation, and not older than the newest journal row this process knows
for the scope (generations.py, journal.py). So an entry copied, moved or replayed to another key is
never served, and neither is one that a Redis come back older still holds.
Hit or miss, a scoped read is a single MGET.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from django.conf import settings

from . import clock, cluster, fills, hot, journal, readahead, stamps, stats
from .calls import CacheUnavailable, cache_for, kind_of, redis_call
from .follower import follower
from .generations import WRITING, claim, entry_keys, in_scope, in_transaction, is_current
from .identity import ConnectEpoch
from .policy import Kind
from .serializers import CorruptValue, ValueTooLarge

logger = logging.getLogger("techbirdsfly.cache")

T = TypeVar("T")

# XFetch's beta: above 1 refreshes earlier, below 1 later.
EARLY_REFRESH_BETA = 1.0
# A waiter for a peer's fill polls after FILL_POLL_FIRST seconds, then doubles its pause up to
# FILL_POLL_LONGEST: a quick fill is seen at once, a slow one costs Redis few reads.
FILL_POLL_FIRST = 0.005
FILL_POLL_LONGEST = 0.05


class Cached[T](NamedTuple):
    value: T
    from_cache: bool


class EntryRead:
    """One cache entry of one app: its key, its scope's generation key, and the ways to fill it."""

    __slots__ = (
        "app", "cache", "distrusted", "floor", "fresh", "full_key", "gen_key", "generation", "history", "key",
        "keys", "policy", "raw_generation", "scope",
    )  # fmt: skip

    def __init__(self, policy: Kind, key: str, scope: str | None, fresh: Callable[[Any], bool] | None = None) -> None:
        self.policy = policy
        self.app = policy.app
        self.cache = cache_for(policy.app)
        self.key = key
        self.scope = scope
        self.keys = entry_keys(self.cache, key, scope)
        self.full_key: str = self.keys[0]
        self.gen_key: str | None = self.keys[1] if scope else None
        self.raw_generation: bytes | None = None  # the generation key as read, signed
        self.generation: str | None = None
        self.floor = 0  # the journal's newest number for the scope, when read
        self.history = ""  # the journal's history, when read
        self.fresh = fresh  # the caller's own check of a cached value (get_or_compute's ``fresh``)
        self.distrusted = False  # the journal could not be checked (database unavailable)

    def read(self) -> dict[str, Any] | None:
        """The current entry, or None on a miss; raises CacheUnavailable."""
        keys = self.keys
        ahead = readahead.take(keys)
        if ahead is not None:
            raws, start = ahead
        else:
            start = ConnectEpoch.servers_seen
            raws = redis_call(self.app, self._mget, keys)
        self.distrusted = not journal.trusted(start)
        if self.distrusted:
            self.generation = None
            return None
        return self.accept(raws)

    def _mget(self, keys: Sequence[str]) -> list[bytes | None]:
        # The client inside the call: on Redis Cluster, getting it connects, and may fail.
        return cluster.mget(self.cache.client.get_client(write=False), keys)

    def accept(self, raws: list[bytes | None]) -> dict[str, Any] | None:
        """Check what Redis answered for [entry, generation]: the entry if it may be served."""
        if self.gen_key:
            self.raw_generation = raws[1]
            self.generation = stamps.decode(raws[1])
            self.floor = journal.floor(self.app, self.scope)  # type: ignore[arg-type]
            self.history = journal.history()
            if self.being_written:
                return None
        entry = self._decode(raws[0])
        if not isinstance(entry, dict) or entry.get("k") != self.full_key or "v" not in entry:
            return None
        if not entry.get("x", 0) > clock.now():
            return None  # past its signed expiry: Redis was told to keep it longer (PERSIST, a restore)
        if self.gen_key:
            generation = entry.get("g")
            if generation != self.generation or not is_current(generation, self.floor, self.history):
                return None
        if self.fresh is not None and not self.fresh(entry["v"]):
            return None
        return entry

    def _decode(self, raw: bytes | None) -> Any:
        if raw is None:
            return None
        try:
            return self.cache.client._serializer.loads(raw)
        except CorruptValue as exc:
            logger.warning("ignoring an unreadable cache value under %s: %s", self.full_key, exc)
            return None

    @property
    def being_written(self) -> bool:
        """A transaction that changes this scope has not finished: use the database, store nothing."""
        return isinstance(self.generation, str) and self.generation.startswith(WRITING)

    def wait_for_peer(self) -> dict[str, Any] | None:
        """Poll for the entry another caller is computing; None when it does not come in time.

        Also None as soon as the fill lock holds no live lease of this app's (fills.held): the peer's
        value is one that is not cached (TTL 0, such as an unknown id or a revoked token; over 1 MB),
        its compute failed, or its lease ran out (it died, or its store was lost), and nothing will
        come. Waiting out CACHE_FILL_WAIT then made every concurrent request for such a key take 5 s
        (found by faults/tests/test_fill_waits.py); a lock a Redis writer planted would do the same.
        """
        lock_key = self.cache.make_key(in_scope(self.cache, f"{self.key}:lock", self.scope))
        # The entry, its generation and the lock in one MGET: a peer stores its entry before it
        # unlocks, so a read that finds neither the entry nor the lock saw the peer give up.
        keys = (*self.keys, lock_key)
        deadline = time.monotonic() + settings.CACHE_FILL_WAIT
        pause = FILL_POLL_FIRST
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, FILL_POLL_LONGEST)
            stats.fill_poll(self.app).inc()
            try:
                start = ConnectEpoch.servers_seen
                raws = redis_call(self.app, self._mget, keys)
            except CacheUnavailable:
                return None
            self.distrusted = not journal.trusted(start)
            if self.distrusted:
                return None
            entry = self.accept(raws[:-1])
            if entry is not None:
                return entry
            if self.being_written or not fills.held(self.cache, lock_key, raws[-1]):
                return None
        return None

    def compute_and_store(self, compute: Callable[[], T], ttl_of: Callable[[T], int] | None) -> T:
        if self.being_written or self.distrusted:
            return compute()
        began = time.monotonic()
        result = compute()
        stats.compute(self.app).inc()
        delta = time.monotonic() - began
        timeout = self.policy.ttl if ttl_of is None else min(ttl_of(result), self.policy.ttl)
        if timeout <= 0:
            return result
        generation = self.generation
        if self.gen_key and not is_current(generation, self.floor, self.history):
            # No generation yet, or one from before the journal's newest row or of an earlier history
            # (Redis lost it, or the database rewound): start the next one, unless a write changed the
            # key while we computed.
            generation = claim(self.app, self.gen_key, self.raw_generation, self.floor, self.history)
            if generation is None:
                return result
        entry = {"k": self.full_key, "v": result, "g": generation, "x": clock.now() + timeout, "d": round(delta, 6)}
        try:
            payload = self.cache.client._serializer.dumps(entry)
            redis_call(
                self.app, lambda: self.cache.client.get_client(write=True).set(self.full_key, payload, ex=timeout)
            )
        except ValueTooLarge as exc:
            logger.warning("not caching %s (%s.%s): %s", self.key, self.app, self.policy.name, exc)
        except CacheUnavailable:
            pass
        return result


def get_or_compute[T](
    kind: str,
    key: str,
    compute: Callable[[], T],
    *,
    scope: str | None = None,
    ttl_of: Callable[[T], int] | None = None,
    fresh: Callable[[T], bool] | None = None,
) -> Cached[T]:
    """Return the cached value of ``key`` or compute, cache and return it.

    ``kind`` names a row of the TTL table (policy.KINDS); ``ttl_of(value)`` may shorten that TTL
    for one value, never lengthen it (0 or less: not cached). ``scope`` ties the entry to a
    generation that ``invalidate`` bumps. ``fresh(value)``, when given, may refuse a cached value
    that every other check accepted: it is then a miss, computed and stored again. ``compute`` must
    return JSON-ready data (dicts, lists, str, int, float, bool, None).

    On a miss only one caller (across all processes) computes; the others wait for its result
    (single flight). Shortly before an entry expires, one caller refreshes it while the others are
    still served the cached value (probabilistic early expiration), so a hot key has no cliff.
    """
    policy = kind_of(kind)
    follower.ensure_running()
    slot = EntryRead(policy, key, scope, fresh)
    copying = hot.eligible(policy, slot.cache, fresh)
    if copying:
        copy = hot.get(policy.app, key, scope)
        # Not inside a transaction: one that wrote the scope reads its own write from the database (a
        # copy another thread took just before the write would not have it).
        if copy is not None and not in_transaction():
            stats.hit(policy.app).inc()
            return Cached(copy.value, True)
    try:
        entry = slot.read()
    except CacheUnavailable:
        return Cached(compute(), False)

    if entry is not None:
        if not _refresh_early(entry):
            stats.hit(policy.app).inc()
            if copying:
                hot.offer(policy.app, key, scope, entry["v"], slot.generation)
            return Cached(entry["v"], True)
        lock, _ = fills.try_lock(policy.app, slot.cache, key, slot.keys, scope)
        if lock is None:  # another caller is refreshing it: keep serving this one
            stats.hit(policy.app).inc()
            return Cached(entry["v"], True)
    elif slot.being_written or slot.distrusted:
        stats.miss(policy.app).inc()
        return Cached(compute(), False)
    else:
        lock, now = fills.try_lock(policy.app, slot.cache, key, slot.keys, scope)
        entry = slot.accept(now) if now is not None else None
        if entry is not None:  # stored by a peer since our read
            if lock is not None:
                fills.unlock(policy.app, lock)
            stats.hit(policy.app).inc()
            return Cached(entry["v"], True)
        if lock is None:
            entry = slot.wait_for_peer()
            if entry is not None:
                stats.hit(policy.app).inc()  # served from Redis, filled by the peer
                return Cached(entry["v"], True)
        stats.miss(policy.app).inc()
    try:
        return Cached(slot.compute_and_store(compute, ttl_of), False)
    finally:
        if lock is not None:
            fills.unlock(policy.app, lock)


def _refresh_early(entry: dict[str, Any]) -> bool:
    """XFetch (Vattani et al., VLDB 2015): refresh with a probability that rises as expiry nears,
    scaled by how long the value took to compute, so one caller recomputes before all would."""
    delta = entry.get("d") or 0.0
    expires = entry.get("x") or 0.0
    return delta > 0 and clock.now() - delta * EARLY_REFRESH_BETA * math.log(1.0 - random.random()) >= expires
