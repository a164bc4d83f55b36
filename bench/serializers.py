"""Serializer variants for the comparison in RESULTS.md, signed exactly like SafeJSONSerializer.

Not for production: the app uses techbirdsfly.cache.serializers.SafeJSONSerializer (orjson).
pickle is deliberately absent: loading a pickle runs code, so anyone able to write to Redis could
run code in the app (django-redis #424).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import msgpack

from techbirdsfly.cache.policy import MAX_VALUE_BYTES
from techbirdsfly.cache.serializers import _TAG_HEX, CorruptValue, SafeJSONSerializer, ValueTooLarge, _default


class _Signed(SafeJSONSerializer):
    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, payload: bytes) -> Any:
        raise NotImplementedError

    def dumps(self, value: Any) -> bytes:
        payload = self.encode(value)
        size = len(payload) + _TAG_HEX + 1
        if size > MAX_VALUE_BYTES:
            raise ValueTooLarge(size)
        return self._tag(payload) + b"." + payload

    def loads(self, value: bytes) -> Any:
        tag, payload = value[:_TAG_HEX], value[_TAG_HEX + 1 :]
        if value[_TAG_HEX : _TAG_HEX + 1] != b"." or not hmac.compare_digest(tag, self._tag(payload)):
            raise CorruptValue("missing or wrong signature")
        try:
            return self.decode(payload)
        except ValueError as exc:
            raise CorruptValue(str(exc)) from None


class SignedStdlibJSON(_Signed):
    def encode(self, value: Any) -> bytes:
        return json.dumps(value, default=_default, separators=(",", ":")).encode()

    def decode(self, payload: bytes) -> Any:
        return json.loads(payload)


class SignedMsgpack(_Signed):
    def encode(self, value: Any) -> bytes:
        return msgpack.packb(value, default=_default)

    def decode(self, payload: bytes) -> Any:
        return msgpack.unpackb(payload)
