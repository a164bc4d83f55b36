"""In-process comparisons: serializers (with and without the HMAC signature) and Redis parsers."""

from __future__ import annotations

import json
import pickle
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson


@dataclass
class CodecFigure:
    payload: str
    codec: str
    bytes: int
    dumps_us: float
    loads_us: float
    safe: bool

    @property
    def total_us(self) -> float:
        return self.dumps_us + self.loads_us


def _per_call_us(fn: Callable[[], Any], budget_seconds: float) -> float:
    """Best of five timeit rounds that together take about ``budget_seconds``."""
    began = time.perf_counter()
    fn()
    once = max(time.perf_counter() - began, 1e-7)
    number = max(1, int(budget_seconds / 5 / once))
    timer = timeit.Timer(fn)
    return min(timer.timeit(number) / number for _ in range(5)) * 1e6


def codecs() -> dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any], bool]]:
    from techbirdsfly.cache.serializers import SafeJSONSerializer

    from .serializers import SignedMsgpack, SignedStdlibJSON

    signed_orjson, signed_json, signed_msgpack = SafeJSONSerializer({}), SignedStdlibJSON({}), SignedMsgpack({})
    # verify_and_parse: a first read, signature checked. ``loads`` would answer a blob it has verified
    # before from memory (serializers.py), so the loop below would time a dict lookup, not the format.
    return {
        "orjson + HMAC (production)": (signed_orjson.dumps, signed_orjson.verify_and_parse, True),
        "stdlib json + HMAC": (signed_json.dumps, signed_json.verify_and_parse, True),
        "msgpack + HMAC": (signed_msgpack.dumps, signed_msgpack.verify_and_parse, True),
        "orjson, unsigned": (orjson.dumps, orjson.loads, False),
        "stdlib json, unsigned": (lambda v: json.dumps(v, separators=(",", ":")).encode(), json.loads, False),
        "msgpack, unsigned": (msgpack.packb, msgpack.unpackb, False),
        "pickle (UNSAFE: runs code on load)": (pickle.dumps, pickle.loads, False),
    }


def compare_codecs(payloads: dict[str, Any], *, min_seconds: float = 0.2) -> list[CodecFigure]:
    figures = []
    for payload_name, value in payloads.items():
        for codec_name, (dumps, loads, _) in codecs().items():
            blob = dumps(value)
            figures.append(
                CodecFigure(
                    payload=payload_name,
                    codec=codec_name,
                    bytes=len(blob),
                    dumps_us=_per_call_us(lambda dumps=dumps, value=value: dumps(value), min_seconds),
                    loads_us=_per_call_us(lambda loads=loads, blob=blob: loads(blob), min_seconds),
                    safe=not codec_name.startswith("pickle"),
                )
            )
    return figures


def hmac_cost_us(value: Any, *, min_seconds: float = 0.2) -> float:
    """The signature's share of one store plus one read: sign once, verify once."""
    from techbirdsfly.cache.serializers import SafeJSONSerializer

    serializer = SafeJSONSerializer({})
    payload = orjson.dumps(value)
    return 2 * _per_call_us(lambda: serializer._tag(payload), min_seconds)


@dataclass
class ParserFigure:
    parser: str
    operation: str
    us_per_call: float


def compare_parsers(redis_url: str, entries: dict[str, bytes], *, calls: int = 2000) -> list[ParserFigure]:
    """One MGET of two keys (a scoped hit) and one GET of a large value, with hiredis and without."""
    import redis
    from redis._parsers import _HiredisParser, _RESP2Parser

    figures = []
    setup = redis.Redis.from_url(redis_url)
    keys = []
    for name, blob in entries.items():
        key = f"TechBirdsFly_bench:parser:{name}"
        setup.set(key, blob, ex=600)
        keys.append(key)
    many = [f"TechBirdsFly_bench:parser:many:{i}" for i in range(100)]
    setup.mset(dict.fromkeys(many, entries["token"]))
    for key in many:
        setup.expire(key, 600)
    for label, parser in (("hiredis", _HiredisParser), ("pure Python (_RESP2Parser)", _RESP2Parser)):
        client = redis.Redis.from_url(redis_url, parser_class=parser)
        for operation, fn in (
            ("MGET of 2 small keys (a scoped hit)", lambda client=client: client.mget(keys[0], keys[1])),
            (f"GET of a {len(entries['large']) // 1024} KB value", lambda client=client: client.get(keys[-1])),
            ("MGET of 100 small keys", lambda client=client: client.mget(many)),
        ):
            fn()
            best = float("inf")
            for _ in range(3):
                began = time.perf_counter()
                for _ in range(calls):
                    fn()
                best = min(best, (time.perf_counter() - began) / calls)
            figures.append(ParserFigure(parser=label, operation=operation, us_per_call=best * 1e6))
        client.close()
    setup.delete(*keys, *many)
    setup.close()
    return figures
