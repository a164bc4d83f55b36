"""Serializer variants for the comparison in RESULTS.md, signed exactly like SafeJSONSerializer.

Not for production: the app uses techbirdsfly.cache.serializers.SafeJSONSerializer (orjson).
pickle is deliberately absent: loading a pickle runs code, so anyone able to write to Redis could
run code in the app (django-redis #424).
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from techbirdsfly.cache.serializers import SafeJSONSerializer, _default


class SignedStdlibJSON(SafeJSONSerializer):
    def encode(self, value: Any) -> bytes:
        return json.dumps(value, default=_default, separators=(",", ":")).encode()

    def decode(self, payload: bytes) -> Any:
        return json.loads(payload)


class SignedMsgpack(SafeJSONSerializer):
    def encode(self, value: Any) -> bytes:
        return msgpack.packb(value, default=_default)

    def decode(self, payload: bytes) -> Any:
        return msgpack.unpackb(payload)
