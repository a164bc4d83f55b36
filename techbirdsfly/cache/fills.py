"""Fill locks: on a miss only one caller (across all processes) computes; the others wait for it.

A fill lock is a lease: the holder's process renews it every FILL_LOCK_TTL / 4 for as long as the
holder computes (``_Leases``), so waiters wait for a live holder, however slow, up to CACHE_FILL_WAIT,
while a lock whose holder died, or whose store was lost with its connection (a paused or partitioned
Redis), frees the entry within FILL_LOCK_TTL. A fixed 10 s lock made every request for such a key
wait CACHE_FILL_WAIT (5 s) (found by faults/tests/test_redis_faults.py).

A lock is waited for only if this app granted it (``held``): its value is signed like a cache entry
(serializers.py) and names its own key and the end of its lease, written anew at every renewal.
Anyone who can write the app's keys can put something at ``<key>:lock``: a string with no TTL, a
list, a lease copied from another key or kept past its end. Waiting on whatever exists there would
hold every request for the key CACHE_FILL_WAIT, for as long as it stays; such a lock is no peer at
all, and the waiter computes from the database at once. A lease copied back after its holder let it
go is waited for at most until its signed end, FILL_LOCK_TTL after its last renewal.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import LockError

from . import cluster, replies
from .calls import CacheUnavailable, redis_call
from .generations import in_scope
from .serializers import CorruptValue

FILL_LOCK_TTL = 0.4

# try_lock's answer when Redis is unavailable: there is nothing to coordinate, every caller computes.
NO_LOCK = object()


# Replace the lease at KEYS[1] by ARGV[2] (PX ARGV[3]) if it still holds ARGV[1], the holder's.
_RENEW = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


def _lease(cache: Any, name: str) -> bytes:
    """A fill lock's value: signed, naming its key and the end of its lease (wall clock, for every
    process), with a nonce so that no two leases of one key are equal."""
    lease = {"k": name, "x": round(time.time() + FILL_LOCK_TTL, 3), "n": secrets.token_hex(4)}
    return cache.client._serializer.dumps(lease)


def held(cache: Any, name: str, raw: bytes | None) -> bool:
    """Does ``raw``, read at the fill lock ``name``, say that a caller of this app holds it now?

    Only a lease this app signed for this very key, before its signed end. Anything else there (no
    value, or a list: MGET reads nil; text; a lease of another key or one that ended) is nobody's.
    """
    if raw is None:
        return False
    try:
        # Not ``loads``: leases are each read a few times, and would crowd out the values it remembers.
        lease = cache.client._serializer.verify_and_parse(raw)
    except CorruptValue:
        return False
    if type(lease) is not dict or lease.get("k") != name:
        return False
    end = lease.get("x")
    return type(end) in (int, float) and end > time.time()


class _Leases:
    """The fill locks this process holds, renewed by one daemon thread while their holders compute."""

    def __init__(self) -> None:
        self._held: dict[int, tuple[str, Any, Any, threading.Lock]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, app: str, cache: Any, lock: Any) -> None:
        with self._lock:
            # Its own mutex: a renewal changes the lease's value, which the release must then use.
            self._held[id(lock)] = (app, cache, lock, threading.Lock())
            if self._thread is None or not self._thread.is_alive():  # none yet, or lost in a fork
                self._thread = threading.Thread(target=self._renew, name="cache-fill-leases", daemon=True)
                self._thread.start()
        self._wake.set()

    def drop(self, lock: Any) -> threading.Lock | None:
        """Stop renewing ``lock``; its mutex, held by a renewal in flight, if any."""
        with self._lock:
            found = self._held.pop(id(lock), None)
        return found[3] if found else None

    def _renew(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(FILL_LOCK_TTL / 4)
            with self._lock:
                held = list(self._held.values())
                if not held:
                    self._wake.clear()
            for app, cache, lock, mutex in held:
                with mutex:
                    current = self._held.get(id(lock))
                    if current is None or current[2] is not lock:
                        continue  # released meanwhile
                    # A Redis gone: the lock expires by itself, and the holder's store fails anyway.
                    with contextlib.suppress(CacheUnavailable):
                        _renew_lease(app, cache, lock)


def _renew_lease(app: str, cache: Any, lock: Any) -> None:
    renewed = _lease(cache, lock.name)
    ttl_ms = int(FILL_LOCK_TTL * 1000)
    if redis_call(app, lambda: lock.redis.eval(_RENEW, 1, lock.name, lock.local.token, renewed, ttl_ms)):
        lock.local.token = renewed


def _lock_call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Release a fill lock; a lock no longer ours (it expired, or was released meanwhile) is not a
    Redis failure: LockError subclasses RedisError, and the breaker would open on it."""
    try:
        return method(*args, **kwargs)
    except LockError:
        return False


_leases = _Leases()


def try_lock(
    app: str, cache: Any, key: str, read: Sequence[str], scope: str | None = None
) -> tuple[Any | None, list[bytes | None] | None]:
    """Take ``key``'s fill lock and read the keys ``read`` again, in one round trip.

    Returns the lock (None when another caller holds it, NO_LOCK when Redis is out) and what the keys
    hold now (None when they could not be read with the lock). The second read closes a race that
    made a burst write one entry twice: between a caller's miss and its lock, the caller that held
    the lock may have stored the entry and released the lock; taking the lock then, the late caller
    computed and stored it again. ``scope``: the entry's, whose hash tag the lock shares on a cluster.
    """
    name = in_scope(cache, f"{key}:lock", scope)

    def acquire_and_read() -> tuple[Any, bytes, bool, list[bytes | None] | None]:
        # Inside the call: getting the client connects on Redis Cluster, and may fail.
        # Not thread-local: the renewing thread renews it, and changes its token.
        lock = cache.lock(name, timeout=FILL_LOCK_TTL, blocking=False, thread_local=False)
        client, ttl_ms, token = lock.redis, int(FILL_LOCK_TTL * 1000), _lease(cache, lock.name)
        if cluster.is_cluster(client) and len({client.keyslot(k) for k in (lock.name, *read)}) > 1:
            # An unscoped entry's lock is in another slot, maybe on another shard: no MGET across them.
            return lock, token, bool(client.set(lock.name, token, nx=True, px=ttl_ms)), None
        pipe = client.pipeline(transaction=False)
        pipe.set(lock.name, token, nx=True, px=ttl_ms)
        pipe.execute_command("MGET", *read)  # what pipe.mget sends; a ClusterPipeline blocks that name
        acquired, values = pipe.execute()
        return lock, token, bool(acquired), replies.values(values, len(read))

    try:
        lock, token, acquired, values = redis_call(app, acquire_and_read)
    except CacheUnavailable:
        return NO_LOCK, None
    if not acquired:
        return None, values
    lock.local.token = token
    _leases.hold(app, cache, lock)
    return lock, values


def unlock(app: str, lock: Any) -> None:
    if lock is NO_LOCK:
        return
    mutex = _leases.drop(lock) or contextlib.nullcontext()
    with mutex, contextlib.suppress(CacheUnavailable):
        redis_call(app, _lock_call, lock.release)
