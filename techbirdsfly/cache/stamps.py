"""The stored form of a scope's generation: written and read by this layer and its two scripts only.

A generation key holds ``<generation>|<tag>``: the generation (``<n>.<history>.<random>``, or
``w:<random>`` while a transaction that changes the scope is open) and a tag, 32 hex characters of
HMAC-SHA256 over it with a key derived from SECRET_KEY (``salted_hmac``'s derivation, its own salt;
a value tagged under one of SECRET_KEY_FALLBACKS still verifies). Not the cache's serializer: the
scripts below read the number and history from the front of the value, and must not depend on how
the serializer lays out what it stores (a msgpack serializer, say).

Why a tag at all: only the app may make a generation with a large number, or a Redis writer could set
one above every future write's number; ``_BUMP`` would then refuse every later invalidation. A value
whose tag is wrong is read as no generation: the next fill replaces it (``CLAIM``), and nothing
is ever served under it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.utils.encoding import force_bytes

SALT = "techbirdsfly.cache.generation"
_TAG_HEX = 32
_VERIFIED: dict[tuple[bytes, ...], dict[bytes, str]] = {}  # accepted keys -> value -> its generation
_VERIFIED_MAX = 4096  # then it starts again

# Set KEYS[1] to ARGV[1] (``<n>.<history>.<random>|<tag>``, n = ARGV[2], history = ARGV[4]) unless
# it holds a number >= n of the same history already. Anything but a string there is junk, replaced.
BUMP = """
if redis.call('type', KEYS[1]).ok == 'string' then
  local n, history = string.match(redis.call('get', KEYS[1]), '^(%d+)%.(%w*)%.')
  if n and history == ARGV[4] and tonumber(n) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""

# Set KEYS[1] to ARGV[2] only if it still holds ARGV[1] ('' for: it does not exist). Anything but a
# string there is junk (MGET read it as nothing): it is replaced, so caching resumes by itself.
CLAIM = """
local current = ''
if redis.call('type', KEYS[1]).ok == 'string' then current = redis.call('get', KEYS[1]) end
if current ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def _key(secret: Any) -> bytes:
    return hashlib.sha256(force_bytes(SALT) + force_bytes(secret)).digest()


@functools.lru_cache(maxsize=8)
def _derived(secret: Any, fallbacks: tuple[Any, ...]) -> tuple[bytes, ...]:
    return (_key(secret), *(_key(old) for old in fallbacks))


def _keys() -> tuple[bytes, ...]:
    """The keys a tag is checked against, the current one first."""
    return _derived(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def _tag(key: bytes, generation: bytes) -> bytes:
    return hmac.digest(key, generation, "sha256").hex()[:_TAG_HEX].encode()


def encode(generation: str) -> bytes:
    value = generation.encode()
    return value + b"|" + _tag(_keys()[0], value)


def decode(raw: bytes | None) -> str | None:
    """The generation a stored value holds; None for nothing, or anything this layer did not write."""
    if not isinstance(raw, bytes):
        return None
    keys = _keys()
    verified = _VERIFIED.get(keys)
    if verified is None:
        verified = _VERIFIED[keys] = {}
    found = verified.get(raw)
    if found is not None:
        return found
    value, bar, tag = raw.rpartition(b"|")
    if not bar or not any(hmac.compare_digest(tag, _tag(key, value)) for key in keys):
        return None
    try:
        generation = value.decode()
    except UnicodeDecodeError:
        return None
    if len(verified) >= _VERIFIED_MAX:
        verified.clear()
    verified[raw] = generation
    return generation
