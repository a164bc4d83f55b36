"""What Redis answered, checked for shape before the layer uses it: a malformed reply is Redis unavailable.

redis-py hands back whatever the server sent. Something that is not Redis (a fake server, a proxy gone
wrong, whoever sits between the app and Redis) can answer an MGET with an integer, with fewer values
than keys, or a script with arrays of another shape. Used as they came, such replies would raise
TypeError or ValueError in the request: a 500. Raised as ``MalformedReply`` inside the layer's
``redis_call``, they are a broken server like one that does not answer: the breaker opens and the request
goes on without Redis.

Only the shape is checked here. What the values say (signature, key, expiry, generation) is the
reader's to check, as for any value.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError


class MalformedReply(RedisError):
    """Redis answered something no Redis answers to the command that was sent."""


def values(reply: Any, count: int) -> list[bytes | None]:
    """An MGET's reply: a list of exactly ``count`` values, each bytes or nil."""
    if type(reply) is not list or len(reply) != count:
        raise MalformedReply(f"expected an array of {count} values, got {_shape(reply)}")
    for value in reply:
        if value is not None and type(value) is not bytes:
            raise MalformedReply(f"expected bulk strings or nil, got {_shape(value)}")
    return reply


def array(reply: Any, count: int) -> list[Any]:
    """A reply that must be an array of ``count`` elements (a script's multi-part answer)."""
    if type(reply) is not list or len(reply) != count:
        raise MalformedReply(f"expected an array of {count} elements, got {_shape(reply)}")
    return reply


def integer(reply: Any) -> int:
    """An integer reply (INCR, TTL)."""
    if type(reply) is not int:
        raise MalformedReply(f"expected an integer, got {_shape(reply)}")
    return reply


def _shape(reply: Any) -> str:
    # Never the value itself: it may be someone's cached data.
    if isinstance(reply, list):
        return f"an array of {len(reply)}"
    return type(reply).__name__
