"""A django-redis serializer that cannot run code on load, refuses values over 1 MB, and signs.

django-redis pickles by default, so anyone able to write to Redis could run code in the app
(django-redis #424). Cached values here are JSON-ready data, stored with orjson.

Values are also signed (HMAC-SHA256 with a key derived from SECRET_KEY): the auth app caches
token records, and without a signature anyone able to write to Redis could forge one and log in
as any user, staff included. A value whose tag does not match is never used: it is a miss.
Stored form: 32 hex characters of tag, a dot, the JSON.

The tag is Django's ``salted_hmac(SALT, payload, algorithm="sha256")``, cut to 32 hex characters.
New values are signed with SECRET_KEY; a value signed with one of SECRET_KEY_FALLBACKS still
verifies, as Django's signing does, so rotating the key does not empty the cache at once.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.utils.encoding import force_bytes
from django_redis.serializers.base import BaseSerializer

from .policy import MAX_VALUE_BYTES

SALT = "techbirdsfly.cache.v1"
_TAG_HEX = 32
# Stored forms whose signature ``loads`` verified, remembered once per process and set of accepted
# keys (every thread's instance of every alias shares it): at most this many (then it starts again),
# each at most this long, Keyed by every key accepted, not only the signing
# one: a form verified under a fallback must not be taken as verified once that fallback is dropped.
_REMEMBERED = 1024
_REMEMBERED_BYTES = 2048
_VERIFIED: dict[tuple[bytes, ...], dict[bytes, Any]] = {}  # accepted keys -> stored form -> what it holds
_IMMUTABLE = (str, int, float, type(None))  # bool is an int
_SIGNED = object()  # remembered: the signature is right, the value is parsed again
_UNKNOWN = object()


class ValueTooLarge(ValueError):
    """The serialized value exceeds MAX_VALUE_BYTES; it is served but not cached."""

    def __init__(self, size: int) -> None:
        super().__init__(f"serialized value is {size} bytes, over the {MAX_VALUE_BYTES}-byte limit")
        self.size = size


class CorruptValue(ValueError):
    """What Redis returned is not a value this serializer wrote (or its signature is wrong): a miss."""


def derived_key(secret: str | bytes) -> bytes:
    """The HMAC key ``salted_hmac(SALT, ..., secret=secret, algorithm="sha256")`` uses.

    Derived once per secret rather than by calling salted_hmac for each value, so each tag is
    ``hmac.digest``'s one-shot C path (bench/RESULTS.md); test_cache_layer checks the tags match.
    """
    return hashlib.sha256(force_bytes(SALT) + force_bytes(secret)).digest()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class SafeJSONSerializer(BaseSerializer):
    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options=options)
        self._key = derived_key(settings.SECRET_KEY)
        self._fallbacks = tuple(
            key for key in dict.fromkeys(map(derived_key, settings.SECRET_KEY_FALLBACKS)) if key != self._key
        )
        self._verified = _VERIFIED.setdefault((self._key, *self._fallbacks), {})

    def _tag(self, payload: bytes, key: bytes | None = None) -> bytes:
        # hmac.digest is the one-shot C path, cheaper than hmac.new(...) (bench/RESULTS.md compares them).
        return hmac.digest(key or self._key, payload, "sha256").hex()[:_TAG_HEX].encode()

    def _signed_before_rotation(self, tag: bytes, payload: bytes) -> bool:
        """Signed with a key SECRET_KEY replaced, which is still among SECRET_KEY_FALLBACKS."""
        return any(hmac.compare_digest(tag, self._tag(payload, key)) for key in self._fallbacks)

    # The payload's format; the signature and the size limit do not depend on it (bench/ compares
    # other formats by overriding these two).
    def encode(self, value: Any) -> bytes:
        return orjson.dumps(value, default=_default)

    def decode(self, payload: bytes) -> Any:
        return orjson.loads(payload)

    def dumps(self, value: Any) -> bytes:
        payload = self.encode(value)
        size = len(payload) + _TAG_HEX + 1
        if size > MAX_VALUE_BYTES:
            raise ValueTooLarge(size)
        return self._tag(payload) + b"." + payload

    def loads(self, value: bytes) -> Any:
        # A warm hit reads the same few small values again and again (a token's record, its
        # generation, a profile): each stored form whose signature was verified is remembered by its
        # exact bytes, so reading it again costs a dict lookup instead of an HMAC. Bytes
        # that differ in any way are verified as if new. Immutable values are remembered decoded;
        # others are parsed again, so no caller can change what the next one gets.
        small = len(value) <= _REMEMBERED_BYTES
        if small:
            known = self._verified.get(value, _UNKNOWN)
            if known is not _UNKNOWN:
                return self._parse(value[_TAG_HEX + 1 :]) if known is _SIGNED else known
        decoded = self.verify_and_parse(value)
        if small:
            if len(self._verified) >= _REMEMBERED:
                self._verified.clear()
            self._verified[value] = decoded if isinstance(decoded, _IMMUTABLE) else _SIGNED
        return decoded

    def verify_and_parse(self, value: bytes) -> Any:
        """``loads`` without the memory: what the first read of a stored form costs."""
        tag, payload = value[:_TAG_HEX], value[_TAG_HEX + 1 :]
        if value[_TAG_HEX : _TAG_HEX + 1] != b"." or not (
            hmac.compare_digest(tag, self._tag(payload)) or self._signed_before_rotation(tag, payload)
        ):
            raise CorruptValue("missing or wrong signature")
        return self._parse(payload)

    def _parse(self, payload: bytes) -> Any:
        try:
            return self.decode(payload)
        except ValueError as exc:  # orjson's JSONDecodeError is one
            raise CorruptValue(str(exc)) from None
