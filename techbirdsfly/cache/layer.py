"""The cache layer every app uses, and the only code that talks to django-redis.

Reads are cache-aside: ``get_or_compute`` answers from Redis when it can and from ``compute``
(the database) otherwise, and says which. Redis being down, slow or full is never an error for
the caller: the breaker skips Redis after one failure and the value is computed.

Entries that writes can make stale belong to a *scope* (an account, a user, a token). Each scope
has a generation key holding a random token; an entry is stored with the generation it was
computed under and is a hit only while that generation is current. Invalidating a scope writes a
new generation after the transaction commits. Because readers take the generation *before* they
read the database, a read racing a write stores its (possibly pre-write) result under the old
generation, where nobody will accept it, rather than putting stale data back for a full TTL.
Hit or miss, a scoped read is a single MGET.

When Redis cannot be told about an invalidation, it is written to the database
(``PendingInvalidation``) and replayed before this or any other process trusts a new connection:
a Redis restarted from an old dump, or a promoted replica, cannot resurrect revoked tokens.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.core.signals import request_finished, request_started
from django.db import DatabaseError, transaction
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import LockError, ReadOnlyError, RedisError, ResponseError

from . import cluster
from .breaker import CircuitBreaker
from .connection import ConnectEpoch
from .policy import APPS, GENERATION_TTL, KINDS, Kind
from .serializers import CorruptValue, ValueTooLarge
from .stats import COMPUTES, ERRORS, HITS, MISSES

logger = logging.getLogger("techbirdsfly.cache")

T = TypeVar("T")


class Cached[T](NamedTuple):
    value: T
    from_cache: bool


class CacheUnavailable(Exception):
    """Redis could not be used for this call (down, slow, full, or the breaker is open)."""


# --- plumbing -------------------------------------------------------------------------------

_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()
_sync_lock = threading.Lock()
_UNAVAILABLE = (RedisError, ConnectionInterrupted, OSError)

# A fill lock is a lease: the holder's process renews it every FILL_LOCK_TTL / 4 for as long as the
# holder computes (_Leases), so waiters wait for a live holder, however slow, up to CACHE_FILL_WAIT,
# while a lock whose holder died, or whose store was lost with its connection (a paused or
# partitioned Redis), frees the entry within FILL_LOCK_TTL. A fixed 10 s lock made every request
# for such a key wait CACHE_FILL_WAIT (5 s) (found by faults/tests/test_redis_faults.py).
FILL_LOCK_TTL = 0.4
# A generation starting with WRITING marks a scope whose transaction has not committed yet
# (see ``invalidate``); the mark outlives any sane transaction and expires after a rollback.
WRITING = "w:"
WRITING_TTL = 30
# XFetch's beta: above 1 refreshes earlier, below 1 later.
EARLY_REFRESH_BETA = 1.0


def kind_of(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown cache kind {kind!r}; add it to techbirdsfly.cache.policy.KINDS") from None


def cache_for(app: str) -> Any:
    if app not in APPS:
        raise ValueError(f"unknown cache app {app!r}")
    return caches[app]


def breaker_for(app: str) -> CircuitBreaker:
    """One breaker per Redis location, shared by the aliases that use it."""
    location = str(settings.CACHES[app]["LOCATION"])
    breaker = _breakers.get(location)
    if breaker is None:
        with _breakers_lock:
            breaker = _breakers.setdefault(
                location, CircuitBreaker(_redact(location), lambda: settings.CACHE_BREAKER_COOLDOWN)
            )
    return breaker


def reset_breakers() -> None:
    for breaker in list(_breakers.values()):
        breaker.reset()


def _redact(location: str) -> str:
    # Never log a password that is part of the URL.
    if "@" in location:
        scheme, _, rest = location.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return location


def call[T](app: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one Redis operation for ``app`` behind the breaker; raise CacheUnavailable on failure."""
    return _call(app, False, fn, *args, **kwargs)


def _call[T](app: str, force: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call``; with ``force``, try even while the breaker is open or the request's budget is spent
    (one bounded attempt)."""
    breaker = breaker_for(app)
    if not force and not breaker.allow():
        ERRORS.labels(app).inc()
        raise CacheUnavailable("circuit open")
    if not force and _budget_spent():
        ERRORS.labels(app).inc()
        raise CacheUnavailable("this request has spent its time on Redis")
    began = time.monotonic()
    try:
        return _attempt(app, breaker, fn, *args, **kwargs)
    finally:
        _charge(time.monotonic() - began)


def _attempt[T](app: str, breaker: CircuitBreaker, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        result = fn(*args, **kwargs)
    except (ValueTooLarge, CorruptValue):
        breaker.success()
        raise
    except ResponseError as exc:
        ERRORS.labels(app).inc()
        if isinstance(exc, ReadOnlyError):
            # Talking to a demoted master (django-redis #616): back off and reconnect later.
            breaker.failure(exc)
        else:
            # e.g. OOM at maxmemory: the server answers, so the connection is fine.
            breaker.success()
            logger.warning("Redis refused an operation for %s: %s", app, exc)
        raise CacheUnavailable(str(exc)) from exc
    except _UNAVAILABLE as exc:
        ERRORS.labels(app).inc()
        breaker.failure(exc)
        raise CacheUnavailable(str(exc)) from exc
    breaker.success()
    return result


def generation_key(scope: str) -> str:
    return f"{scope}:gen"


# --- the request's budget -------------------------------------------------------------------
# Socket timeouts bound one call and the breaker skips Redis after a failure, but a Redis that is
# slow without failing was waited on call after call: a miss makes five or six, and each answered
# just under the timeout took a request past a second (faults/tests/test_slow_redis.py). Within an
# HTTP request Redis gets CACHE_REQUEST_BUDGET seconds (0.2) in all; then the request goes on
# without it. The call under way may take a socket timeout more. Invalidations are exempt (forced):
# they are tried once whatever the budget, since skipping one could let another process serve a
# revoked token from a Redis that is slow but answering.
_request = threading.local()


def _start_budget(**kwargs: Any) -> None:
    _request.spent = 0.0


def _end_budget(**kwargs: Any) -> None:
    _request.spent = None


request_started.connect(_start_budget, dispatch_uid="techbirdsfly.cache.layer.start_budget")
request_finished.connect(_end_budget, dispatch_uid="techbirdsfly.cache.layer.end_budget")


def _budget_spent() -> bool:
    if getattr(_request, "unbudgeted", False):
        return False
    spent = getattr(_request, "spent", None)
    return spent is not None and spent >= settings.CACHE_REQUEST_BUDGET


@contextlib.contextmanager
def _unbudgeted() -> Iterator[None]:
    """Calls the budget must not skip (still behind the breaker): the login throttle's counters, whose
    Redis share a skipped call would leave uncounted (a CPU-bound burst of logins then tried 12
    passwords instead of 10: faults/tests/test_login_throttle.py)."""
    previous = getattr(_request, "unbudgeted", False)
    _request.unbudgeted = True
    try:
        yield
    finally:
        _request.unbudgeted = previous


def _charge(seconds: float) -> None:
    # Outside a request (commands, workers, tests calling the layer directly) there is no budget.
    if getattr(_request, "spent", None) is not None:
        _request.spent += seconds


# --- pending invalidations --------------------------------------------------------------------


def _distrust_read(start: int) -> bool:
    """After a read begun at connect count ``start``: was a connection made that is not yet synced?

    If so, replay pending invalidations (once, for all threads) and report the read as untrusted.
    """
    end = ConnectEpoch.connects
    if end == start and ConnectEpoch.synced >= end:
        return False
    with _sync_lock:
        if ConnectEpoch.synced < end:
            target = ConnectEpoch.connects
            if replay_pending_invalidations():
                ConnectEpoch.synced = target
    return True


def replay_pending_invalidations() -> bool:
    """Apply invalidations that could not reach Redis when they were made. True when none is left."""
    from techbirdsfly.models import PendingInvalidation

    try:
        pending = list(PendingInvalidation.objects.order_by("id")[:5000])
    except DatabaseError:
        logger.exception("could not read pending cache invalidations")
        return False
    if not pending:
        return True
    by_app: dict[str, set[str]] = {}
    for row in pending:
        by_app.setdefault(row.app, set()).add(row.scope)
    try:
        for app, scopes in by_app.items():
            _write_generations(app, scopes)
    except CacheUnavailable:
        return False
    PendingInvalidation.objects.filter(id__in=[row.id for row in pending]).delete()
    logger.warning("replayed %d cache invalidation(s) made while Redis was unreachable", len(pending))
    return len(pending) < 5000 or replay_pending_invalidations()


def _write_generations(
    app: str, scopes: Iterable[str], *, prefix: str = "", ttl: int = GENERATION_TTL, force: bool = False
) -> None:
    cache = cache_for(app)
    values = {generation_key(scope): prefix + secrets.token_hex(8) for scope in scopes}
    if not values:
        return
    try:
        _call(app, force, cache.set_many, values, timeout=ttl)
    except CacheUnavailable as exc:
        if not isinstance(exc.__cause__, ResponseError) or isinstance(exc.__cause__, ReadOnlyError):
            raise
        # Redis answers but refuses writes (OOM at maxmemory under noeviction): DEL needs no memory,
        # and a scope without a generation has no valid entry, in every process at once. Parked in
        # the database instead, the invalidation would wait for a reconnect that never comes while
        # every process served the stale entries (found by faults/tests/test_redis_faults.py).
        _call(app, force, cache.delete_many, list(values))


# --- the public API ---------------------------------------------------------------------------


def get_or_compute[T](
    kind: str,
    key: str,
    compute: Callable[[], T],
    *,
    scope: str | None = None,
    ttl_of: Callable[[T], int] | None = None,
) -> Cached[T]:
    """Return the cached value of ``key`` or compute, cache and return it.

    ``kind`` names a row of the TTL table (policy.KINDS); ``ttl_of(value)`` may shorten that TTL
    for one value, never lengthen it (0 or less: not cached). ``scope`` ties the entry to a
    generation that ``invalidate`` bumps. ``compute`` must return JSON-ready data
    (dicts, lists, str, int, float, bool, None).

    On a miss only one caller (across all processes) computes; the others wait for its result
    (single flight). Shortly before an entry expires, one caller refreshes it while the others are
    still served the cached value (probabilistic early expiration), so a hot key has no cliff.
    """
    policy = kind_of(kind)
    slot = _Slot(policy, key, generation_key(scope) if scope else None)
    try:
        entry = slot.read()
    except CacheUnavailable:
        return Cached(compute(), False)

    if entry is not None:
        if not _refresh_early(entry):
            HITS.labels(policy.app).inc()
            return Cached(entry["v"], True)
        lock = slot.try_lock()
        if lock is None:  # another caller is refreshing it: keep serving this one
            HITS.labels(policy.app).inc()
            return Cached(entry["v"], True)
    elif slot.being_written:
        MISSES.labels(policy.app).inc()
        return Cached(compute(), False)
    else:
        lock = slot.try_lock()
        if lock is None:
            entry = slot.wait_for_peer()
            if entry is not None:
                HITS.labels(policy.app).inc()  # served from Redis, filled by the peer
                return Cached(entry["v"], True)
        MISSES.labels(policy.app).inc()
    try:
        return Cached(slot.compute_and_store(compute, ttl_of), False)
    finally:
        if lock is not None:
            slot.unlock(lock)


def _refresh_early(entry: dict[str, Any]) -> bool:
    """XFetch (Vattani et al., VLDB 2015): refresh with a probability that rises as expiry nears,
    scaled by how long the value took to compute, so one caller recomputes before all would."""
    delta = entry.get("d") or 0.0
    expires = entry.get("x") or 0.0
    return delta > 0 and time.time() - delta * EARLY_REFRESH_BETA * math.log(1.0 - random.random()) >= expires


_NO_LOCK = object()


class _Leases:
    """The fill locks this process holds, renewed by one daemon thread while their holders compute."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[str, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, app: str, lock: Any) -> None:
        with self._lock:
            self._held[id(lock)] = (app, lock)
            if self._thread is None or not self._thread.is_alive():  # none yet, or lost in a fork
                self._thread = threading.Thread(target=self._renew, name="cache-fill-leases", daemon=True)
                self._thread.start()
        self._wake.set()

    def drop(self, lock: Any) -> None:
        with self._lock:
            self._held.pop(id(lock), None)

    def _renew(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(FILL_LOCK_TTL / 4)
            with self._lock:
                held = list(self._held.values())
                if not held:
                    self._wake.clear()
            for app, lock in held:
                # A Redis gone: the lock expires by itself, and the holder's store fails anyway.
                with contextlib.suppress(CacheUnavailable):
                    call(app, _lock_call, lock.extend, FILL_LOCK_TTL, replace_ttl=True)


def _lock_call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Release or extend a fill lock; a lock no longer ours (it expired, or was released meanwhile)
    is not a Redis failure: LockError subclasses RedisError, and the breaker would open on it."""
    try:
        return method(*args, **kwargs)
    except LockError:
        return False


_leases = _Leases()


class _Slot:
    """One cache entry of one app: its key, its generation key, and the ways to fill it."""

    def __init__(self, policy: Kind, key: str, gen_key: str | None) -> None:
        self.policy = policy
        self.app = policy.app
        self.cache = cache_for(policy.app)
        self.key = key
        self.gen_key = gen_key
        self.generation: str | None = None
        self.distrusted = False  # the last read came over a new connection, before the sync

    def read(self) -> dict[str, Any] | None:
        """The current entry, or None on a miss; raises CacheUnavailable."""
        start = ConnectEpoch.connects
        try:
            if self.gen_key:
                found = call(self.app, self.cache.get_many, [self.key, self.gen_key])
                entry, self.generation = found.get(self.key), found.get(self.gen_key)
            else:
                entry = call(self.app, self.cache.get, self.key)
        except CorruptValue as exc:
            logger.warning("ignoring an unreadable cache entry %s: %s", self.key, exc)
            entry, self.generation = None, None
        self.distrusted = _distrust_read(start)
        if self.distrusted:
            self.generation = None
            return None
        if self.being_written:
            return None
        if not isinstance(entry, dict) or "v" not in entry or entry.get("g") != self.generation:
            return None
        return entry

    @property
    def being_written(self) -> bool:
        """A transaction that changes this scope has not finished: use the database, store nothing."""
        return isinstance(self.generation, str) and self.generation.startswith(WRITING)

    def try_lock(self) -> Any | None:
        """Take this entry's fill lock, or None when another caller holds it.

        The lock is a lease this process renews while it computes (_Leases), so a holder that dies
        cannot block the entry for long. When Redis is unavailable there is nothing to coordinate
        and every caller computes.
        """
        # Not thread-local: the renewing thread extends it with the holder's token.
        lock = self.cache.lock(f"{self.key}:lock", timeout=FILL_LOCK_TTL, blocking=False, thread_local=False)
        try:
            acquired = call(self.app, lock.acquire, blocking=False)
        except CacheUnavailable:
            return _NO_LOCK
        if not acquired:
            return None
        _leases.hold(self.app, lock)
        return lock

    def unlock(self, lock: Any) -> None:
        if lock is _NO_LOCK:
            return
        _leases.drop(lock)
        with contextlib.suppress(CacheUnavailable):
            call(self.app, _lock_call, lock.release)

    def wait_for_peer(self) -> dict[str, Any] | None:
        """Poll for the entry another caller is computing; None when it does not come in time.

        Also None as soon as the peer's fill lock is gone without an entry: its value is one that is
        not cached (TTL 0, such as an unknown id or a revoked token; over 1 MB), its compute failed,
        or its lease ran out (it died, or its store was lost), and nothing will come. Waiting out
        CACHE_FILL_WAIT then made every concurrent request for such a key take 5 s (found by
        faults/tests/test_fill_waits.py).
        """
        deadline = time.monotonic() + settings.CACHE_FILL_WAIT
        pause = 0.005
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            try:
                # The lock first: a peer stores its entry before it unlocks.
                held = call(self.app, self.cache.has_key, f"{self.key}:lock")
                entry = self.read()
            except CacheUnavailable:
                return None
            if entry is not None:
                return entry
            if self.being_written or (not held and not self.distrusted):
                return None
        return None

    def compute_and_store(self, compute: Callable[[], T], ttl_of: Callable[[T], int] | None) -> T:
        try:
            if self.gen_key and self.generation is None:
                self.generation = _ensure_generation(self.app, self.cache, self.gen_key)
        except CacheUnavailable:
            return compute()
        if self.being_written:
            return compute()
        began = time.monotonic()
        result = compute()
        COMPUTES.labels(self.app).inc()
        delta = time.monotonic() - began
        timeout = self.policy.ttl if ttl_of is None else min(ttl_of(result), self.policy.ttl)
        if timeout > 0:
            entry = {"v": result, "g": self.generation, "x": time.time() + timeout, "d": round(delta, 6)}
            try:
                call(self.app, self.cache.set, self.key, entry, timeout=timeout)
            except ValueTooLarge as exc:
                logger.warning("not caching %s (%s.%s): %s", self.key, self.app, self.policy.name, exc)
            except CacheUnavailable:
                pass
        return result


def _ensure_generation(app: str, cache: Any, gen_key: str) -> str:
    candidate = secrets.token_hex(8)
    try:
        if call(app, cache.set, gen_key, candidate, timeout=GENERATION_TTL, nx=True):
            return candidate
        current = call(app, cache.get, gen_key)
    except CorruptValue:
        current = None
    if isinstance(current, str):
        return current
    # Expired or unreadable since the SET NX: write ours.
    call(app, cache.set, gen_key, candidate, timeout=GENERATION_TTL)
    return candidate


def invalidate(app: str, *scopes: str) -> None:
    """Make every entry of ``scopes`` stale, once the current transaction commits (now if none).

    Inside a transaction the scopes are first marked *being written*: until the new generation is
    written after the commit, reads of those scopes go to the database and store nothing. So no
    read that starts after the commit is served pre-write data, not even in the instant between
    the commit and the invalidation (a logout, say, is final the moment it commits). If the
    transaction rolls back, the mark expires by itself within WRITING_TTL.

    If Redis cannot be reached the invalidation is kept in the database and replayed later, so it
    is never lost (see the module docstring).
    """
    if not scopes:
        return
    cache_for(app)  # fail fast on an unknown app
    if _in_transaction():
        with contextlib.suppress(CacheUnavailable):
            _write_generations(app, scopes, prefix=WRITING, ttl=WRITING_TTL)
    transaction.on_commit(lambda: _invalidate_now(app, scopes), robust=True)


def _in_transaction() -> bool:
    """Inside a transaction that will commit later: an atomic block other than a TestCase's own.

    Django's TestCase wraps each test in atomic blocks it flags ``_from_testcase``; a write made
    directly in a test body behaves as in autocommit, as in production outside ``atomic``.
    """
    blocks = transaction.get_connection().atomic_blocks
    return any(not getattr(block, "_from_testcase", False) for block in blocks)


def _invalidate_now(app: str, scopes: Iterable[str]) -> None:
    from techbirdsfly.models import PendingInvalidation

    scopes = list(scopes)
    try:
        # Tried even while this process's breaker is open: Redis may be back for the other
        # processes, which would serve the stale entries until this one replays the parked
        # invalidation. One attempt costs a socket timeout at most.
        _write_generations(app, scopes, force=True)
    except CacheUnavailable:
        PendingInvalidation.objects.bulk_create([PendingInvalidation(app=app, scope=scope) for scope in scopes])
        logger.info("Redis unavailable: kept %d invalidation(s) of %s for replay", len(scopes), app)
        # Replay before this process trusts Redis again, even if no connection of its pool broke (the
        # breaker may have opened on another connection's timeout): its next read replays.
        with ConnectEpoch.lock:
            ConnectEpoch.synced = min(ConnectEpoch.synced, ConnectEpoch.connects - 1)


def window_increment(kind: str, key: str) -> int | None:
    """Increment a counter that expires the kind's TTL after its first increment.

    Returns the new count, or None when Redis is unavailable (the caller must fall back).
    """
    policy = kind_of(kind)
    cache = cache_for(policy.app)
    full_key = cache.make_key(key)

    def incr() -> int:
        pipe = cache.client.get_client(write=True).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, policy.ttl, nx=True)
        return int(pipe.execute()[0])

    try:
        with _unbudgeted():
            return call(policy.app, incr)
    except CacheUnavailable:
        return None


# Never creates the key: a DECR after the window expired would leave a -1 without a TTL.
_DECREMENT_IF_EXISTS = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"


def window_decrement(kind: str, key: str) -> None:
    """Take back one increment of a window counter (a reservation that turned out not to count).

    Does nothing once the window has expired, or when Redis is unavailable.
    """
    policy = kind_of(kind)
    cache = cache_for(policy.app)
    full_key = cache.make_key(key)
    with contextlib.suppress(CacheUnavailable), _unbudgeted():
        call(policy.app, lambda: cache.client.get_client(write=True).eval(_DECREMENT_IF_EXISTS, 1, full_key))


def window_read(kind: str, key: str) -> tuple[int, int] | None:
    """The counter's value and seconds left in its window; None when Redis is unavailable."""
    policy = kind_of(kind)
    cache = cache_for(policy.app)
    full_key = cache.make_key(key)

    def read() -> tuple[int, int]:
        pipe = cache.client.get_client(write=False).pipeline(transaction=False)
        pipe.get(full_key)
        pipe.ttl(full_key)
        value, ttl = pipe.execute()
        return (int(value) if value is not None else 0), max(int(ttl), 0)

    try:
        with _unbudgeted():
            return call(policy.app, read)
    except CacheUnavailable:
        return None


# --- operations: inspect and clear one app's keys ----------------------------------------------


def _raw(app: str) -> Any:
    return cache_for(app).client.get_client(write=True)


def app_pattern(app: str, match: str = "*") -> str:
    return f"{APPS[app]}_{match}"


def scan_keys(app: str, *, match: str = "*", count: int = 100, cursor: int = 0) -> tuple[int, list[tuple[str, int]]]:
    """One SCAN step over ``app``'s keys: the next cursor and (key, ttl) pairs.

    On Redis Cluster the cursor walks every primary in turn (cluster.scan_page), so it can be larger
    than a single server's cursor; 0 still starts and ends the walk.
    """

    def step() -> tuple[int, list[tuple[str, int]]]:
        client = _raw(app)
        next_cursor, keys = cluster.scan_page(client, cursor=cursor, match=app_pattern(app, match), count=count)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        ttls = pipe.execute() if keys else []
        return int(next_cursor), [(k.decode(), int(t)) for k, t in zip(keys, ttls, strict=True) if t != -2]

    return call(app, step)


def iter_keys(app: str, match: str = "*", batch: int = 1000) -> Iterator[bytes]:
    # On Redis Cluster, scan_iter walks every primary.
    client = _raw(app)
    yield from call(app, lambda: list(client.scan_iter(match=app_pattern(app, match), count=batch)))


def count_keys(app: str) -> int:
    return sum(1 for _ in iter_keys(app))


def clear_app(app: str) -> int:
    """Remove ``app``'s keys with SCAN + UNLINK; other apps' keys stay. Never FLUSHDB.

    On Redis Cluster the SCAN walks every primary and UNLINK is split by slot.
    """

    def clear() -> int:
        client = _raw(app)
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=app_pattern(app), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
        return deleted

    return call(app, clear)


def ping(app: str = "auth") -> bool:
    try:
        return call(app, lambda: cluster.ping_all(_raw(app)))
    except CacheUnavailable:
        return False


def server_info(app: str = "auth") -> dict[str, Any] | None:
    """Redis version and memory settings, or None when Redis is unavailable.

    On Redis Cluster, memory figures are summed over the primaries.
    """

    def info() -> dict[str, Any]:
        client = _raw(app)
        servers, memories = cluster.info_all(client, "server"), cluster.info_all(client, "memory")
        return {
            "version": servers[0].get("redis_version"),
            "usedMemory": sum(memory.get("used_memory", 0) for memory in memories),
            "maxmemory": sum(memory.get("maxmemory", 0) for memory in memories),
            "maxmemoryPolicy": memories[0].get("maxmemory_policy"),
        }

    try:
        return call(app, info)
    except CacheUnavailable:
        return None
