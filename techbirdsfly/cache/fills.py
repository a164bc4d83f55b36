"""Fill locks: on a miss only one caller (across all processes) computes; the others wait for it.

A fill lock is a lease: the holder's process renews it every FILL_LOCK_TTL / 4 for as long as the
holder computes (``_Leases``), so waiters wait for a live holder, however slow, up to CACHE_FILL_WAIT,
while a lock whose holder died, or whose store was lost with its connection (a paused or partitioned
Redis), frees the entry within FILL_LOCK_TTL. A fixed 10 s lock made every request for such a key
wait CACHE_FILL_WAIT (5 s) (found by faults/tests/test_redis_faults.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import LockError

from . import cluster, replies
from .calls import CacheUnavailable, call

FILL_LOCK_TTL = 0.4

# try_lock's answer when Redis is unavailable: there is nothing to coordinate, every caller computes.
NO_LOCK = object()


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


def try_lock(app: str, cache: Any, key: str, read: Sequence[str]) -> tuple[Any | None, list[bytes | None] | None]:
    """Take ``key``'s fill lock and read the keys ``read`` again, in one round trip.

    Returns the lock (None when another caller holds it, NO_LOCK when Redis is out) and what the keys
    hold now (None when they could not be read with the lock). The second read closes a race that
    made a burst write one entry twice: between a caller's miss and its lock, the caller that held
    the lock may have stored the entry and released the lock; taking the lock then, the late caller
    computed and stored it again.
    """
    token = uuid.uuid1().hex.encode()

    def acquire_and_read() -> tuple[Any, bool, list[bytes | None] | None]:
        # Inside the call: getting the client connects on Redis Cluster, and may fail.
        # Not thread-local: the renewing thread extends it with the holder's token.
        lock = cache.lock(f"{key}:lock", timeout=FILL_LOCK_TTL, blocking=False, thread_local=False)
        client, ttl_ms = lock.redis, int(FILL_LOCK_TTL * 1000)
        if cluster.is_cluster(client):  # the lock and the entry may be on different shards
            return lock, bool(client.set(lock.name, token, nx=True, px=ttl_ms)), None
        pipe = client.pipeline(transaction=False)
        pipe.set(lock.name, token, nx=True, px=ttl_ms)
        pipe.mget(read)
        acquired, values = pipe.execute()
        return lock, bool(acquired), replies.values(values, len(read))

    try:
        lock, acquired, values = call(app, acquire_and_read)
    except CacheUnavailable:
        return NO_LOCK, None
    if not acquired:
        return None, values
    lock.local.token = token
    _leases.hold(app, lock)
    return lock, values


def unlock(app: str, lock: Any) -> None:
    if lock is NO_LOCK:
        return
    _leases.drop(lock)
    with contextlib.suppress(CacheUnavailable):
        call(app, _lock_call, lock.release)
