"""Window counters (the login throttle): a count that expires its kind's TTL after the first increment.

They are not cache entries: nothing is computed from them, and they are not signed. They skip the
request's Redis budget (``unbudgeted``): a skipped count would be a free try.

Whoever can write to Redis can write anything to a counter. A value that is not a count this module
could have written (not a non-negative integer, or without the window's expiry, or with a longer
one) is never trusted: the next increment starts the window again from 1, and a read takes it for
0. So a tampered counter is worth exactly what deleting it is worth, never less than 0 (a negative
count would lift the throttle for as many tries) and never an error (INCR refuses ``abc``).
"""

from __future__ import annotations

import contextlib

from . import replies
from .calls import CacheUnavailable, cache_for, kind_of, redis_call
from .scope import unbudgeted

# A counter is valid when it holds at most 15 digits (exact in Lua's doubles) and expires within
# the window; anything else is dropped and the window starts again.
_INCREMENT = """
local value = redis.call('get', KEYS[1])
if value then
    local ttl = redis.call('ttl', KEYS[1])
    if not string.match(value, '^%d+$') or #value > 15 or ttl < 0 or ttl > tonumber(ARGV[1]) then
        redis.call('del', KEYS[1])
    end
end
local count = redis.call('incr', KEYS[1])
redis.call('expire', KEYS[1], ARGV[1], 'NX')
return count
"""


def window_increment(kind: str, key: str) -> int | None:
    """Increment a counter that expires the kind's TTL after its first increment.

    Returns the new count, or None when Redis is unavailable (the caller must fall back).
    """
    policy = kind_of(kind)
    cache = cache_for(policy.app)
    full_key = cache.make_key(key)

    def incr() -> int:
        return replies.integer(cache.client.get_client(write=True).eval(_INCREMENT, 1, full_key, policy.ttl))

    try:
        with unbudgeted():
            return redis_call(policy.app, incr)
    except CacheUnavailable:  # down, or the key is not a string (a Redis writer's list): WRONGTYPE
        return None


# Never creates the key: a DECR after the window expired would leave a -1 without a TTL.
# Nor decrements what is not a positive count: a tampered value is left for the next increment to drop.
_DECREMENT_IF_EXISTS = """
local value = redis.call('get', KEYS[1])
if value and string.match(value, '^%d+$') and #value <= 15 and tonumber(value) > 0 then
    return redis.call('decr', KEYS[1])
end
return 0
"""


def window_decrement(kind: str, key: str) -> None:
    """Take back one increment of a window counter (a reservation that turned out not to count).

    Does nothing once the window has expired, or when Redis is unavailable.
    """
    policy = kind_of(kind)
    cache = cache_for(policy.app)
    full_key = cache.make_key(key)
    with contextlib.suppress(CacheUnavailable), unbudgeted():
        redis_call(policy.app, lambda: cache.client.get_client(write=True).eval(_DECREMENT_IF_EXISTS, 1, full_key))


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
        ttl = replies.integer(ttl)
        return _count(value, ttl, policy.ttl), max(ttl, 0)

    try:
        with unbudgeted():
            return redis_call(policy.app, read)
    except CacheUnavailable:  # down, or the key is not a string (a Redis writer's list): WRONGTYPE
        return None


def _count(value: bytes | None, ttl: int, window: int) -> int:
    """The stored count, or 0 for a missing or tampered one (what the next increment would drop)."""
    if type(value) is not bytes or not value.isdigit() or len(value) > 15 or ttl < 0 or ttl > window:
        return 0
    return int(value)
