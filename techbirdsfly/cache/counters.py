"""Window counters (the login throttle): a count that expires its kind's TTL after the first increment.

They are not cache entries: nothing is computed from them, and they are not signed. They skip the
request's Redis budget (``unbudgeted``): a skipped count would be a free try.
"""

from __future__ import annotations

import contextlib

from .calls import CacheUnavailable, cache_for, call, kind_of, unbudgeted


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
        with unbudgeted():
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
    with contextlib.suppress(CacheUnavailable), unbudgeted():
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
        with unbudgeted():
            return call(policy.app, read)
    except CacheUnavailable:
        return None
