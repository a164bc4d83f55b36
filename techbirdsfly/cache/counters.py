"""Window counters (the login throttle): a count that expires its kind's TTL after the first increment.

They are not cache entries: nothing is computed from them, and they are not signed. They skip the
request's Redis budget (``unbudgeted``): a skipped count would be a free try.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from . import replies
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
        return replies.integer(pipe.execute()[0])

    try:
        with unbudgeted():
            count = call(policy.app, incr)
    except CacheUnavailable:  # down, or the key holds what INCR refuses (a Redis writer's list or text)
        return None
    # Below 1 after an increment: not a count of ours (a Redis writer's negative number); the caller
    # counts in the database instead, so no value planted here can lift a limit.
    return count if count >= 1 else None


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

    def read() -> tuple[Any, int]:
        pipe = cache.client.get_client(write=False).pipeline(transaction=False)
        pipe.get(full_key)
        pipe.ttl(full_key)
        value, ttl = pipe.execute()
        return value, max(replies.integer(ttl), 0)

    try:
        with unbudgeted():
            value, ttl = call(policy.app, read)
    except CacheUnavailable:  # down, or the key is not a string (a Redis writer's list): WRONGTYPE
        return None
    count = _count(value)
    return None if count is None else (count, ttl)


def _count(value: Any) -> int | None:
    """A counter's value as read; None when it is not a count this layer could have left (a Redis
    writer's text): like Redis unavailable, the caller then counts in the database."""
    if value is None:
        return 0
    if type(value) is not bytes or not _COUNT.fullmatch(value):
        return None
    # Below 0 only briefly (a decrement that outlived its window meets the next one's increment).
    return max(int(value), 0)


_COUNT = re.compile(rb"-?[0-9]{1,18}")
