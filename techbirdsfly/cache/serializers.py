"""A django-redis serializer that cannot run code on load and refuses values over 1 MB.

django-redis pickles by default, so anyone able to write to Redis could run code in the app
(django-redis #424). Cached values here are JSON-ready dicts and lists, stored with orjson.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from django_redis.serializers.base import BaseSerializer

from .policy import MAX_VALUE_BYTES


class ValueTooLarge(ValueError):
    """The serialized value exceeds MAX_VALUE_BYTES; it is served but not cached."""

    def __init__(self, size: int) -> None:
        super().__init__(f"serialized value is {size} bytes, over the {MAX_VALUE_BYTES}-byte limit")
        self.size = size


class CorruptValue(ValueError):
    """What Redis returned is not a value this serializer wrote; treated as a miss."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class SafeJSONSerializer(BaseSerializer):
    def dumps(self, value: Any) -> bytes:
        data = orjson.dumps(value, default=_default)
        if len(data) > MAX_VALUE_BYTES:
            raise ValueTooLarge(len(data))
        return data

    def loads(self, value: bytes) -> Any:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise CorruptValue(str(exc)) from None
