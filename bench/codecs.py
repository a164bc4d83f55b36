"""Serializers and Redis parsers compared in this process on the endpoints' real entries."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from .endpoints import request_once
from .load import Endpoint
from .plan import Plan
from .servers import BenchServer


def measure_codecs(plan: Plan, cached: BenchServer, eps: dict[str, Endpoint], fx: Any) -> dict:
    from auth_app import cache as auth_cache
    from auth_app.tokens import token_hash
    from techbirdsfly.cache.calls import cache_for
    from techbirdsfly.cache.serializers import SafeJSONSerializer

    from . import options

    for name in ("validate", "summary_largest", "invoices", "dashboard"):
        request_once(cached, eps[name])
    entries = {
        "token record": cache_for("auth").get(auth_cache.token_key(token_hash(fx.token))),
        "billing summary": cache_for("billing").get(f"billing:summary:{fx.largest_account}"),
        "invoice list": cache_for("billing").get(f"billing:invoices:{fx.largest_account}"),
        "dashboard": cache_for("admin").get("admin:dashboard"),
    }
    missing = [name for name, value in entries.items() if value is None]
    if missing:
        raise RuntimeError(f"entries not in Redis after a request: {missing}")
    invoices = entries["invoice list"]["v"]["data"] or [{"id": 1, "number": "INV-1", "amount": "1.00"}]
    # Distinct objects (pickle would otherwise store one shared dict 1,000 times by reference).
    many = [{**invoices[i % len(invoices)], "id": i, "number": f"INV-{i:06d}"} for i in range(1000)]
    large = {**entries["invoice list"], "v": {"ownerId": 1, "data": many}}
    payloads = {**entries, "1,000 invoices (synthetic)": large}
    codecs = options.compare_codecs(payloads, min_seconds=plan.codec_seconds)
    serializer = SafeJSONSerializer({})
    blobs = {
        "token": serializer.dumps(entries["token record"]),
        "summary": serializer.dumps(entries["billing summary"]),
    }
    blobs["large"] = serializer.dumps(large)
    parsers = options.compare_parsers(os.environ["REDIS_URL"], blobs, calls=plan.parser_calls)
    return {
        "codecs": [asdict(c) | {"total_us": c.total_us} for c in codecs],
        "hmac_us": {
            name: options.hmac_cost_us(value, min_seconds=plan.codec_seconds) for name, value in payloads.items()
        },
        "parsers": [asdict(p) for p in parsers],
    }
