"""Reads of the admin app: cache statistics, key listings and the dashboard's analytics."""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict

from techbirdsfly.cache import APPS, cache_counts, scan_keys, server_info
from techbirdsfly.cache.layer import CacheUnavailable, app_pattern, cache_for, call

from .cache import APP

# Memory is measured on this many keys per app and scaled to the app's key count: MEMORY USAGE on
# every key would make each dashboard refresh cost as much Redis work as there are keys.
MEMORY_SAMPLE = 200


class AppStats(TypedDict):
    hits: int
    misses: int
    errors: int
    hitRatio: float
    keys: int | None
    memoryBytes: int | None


class Footprint(NamedTuple):
    keys: int
    memory_bytes: int
    sampled: int


def app_footprint(*, app: str, sample: int = MEMORY_SAMPLE) -> Footprint:
    """Count ``app``'s keys with SCAN and estimate their memory from the first ``sample`` of them.

    Raises CacheUnavailable when Redis cannot be reached.
    """

    def walk() -> Footprint:
        client = cache_for(app).client.get_client(write=False)
        keys, sampled, sampled_bytes = 0, 0, 0
        cursor = 0
        while True:
            cursor, batch = client.scan(cursor=cursor, match=app_pattern(app), count=1000)
            keys += len(batch)
            measure = batch[: max(sample - sampled, 0)]
            if measure:
                pipe = client.pipeline(transaction=False)
                for key in measure:
                    pipe.memory_usage(key)
                # A key that expired between SCAN and MEMORY USAGE answers None.
                sizes = [size for size in pipe.execute() if size is not None]
                sampled += len(sizes)
                sampled_bytes += sum(sizes)
            if int(cursor) == 0:
                break
        estimate = round(sampled_bytes / sampled * keys) if sampled else 0
        return Footprint(keys, estimate, sampled)

    return call(app, walk)


def cache_stats() -> dict[str, Any]:
    """Per-app counters (summed over every server process), key counts and the Redis server's memory."""
    counts = cache_counts()
    # server_info spends one call on a dead Redis; the breaker then skips the footprints instead of
    # each of them failing (and counting an error) again.
    info = server_info(APP)
    apps: dict[str, AppStats] = {}
    for app in APPS:
        hits, misses = counts[app]["hits"], counts[app]["misses"]
        footprint = None
        if info is not None:
            try:
                footprint = app_footprint(app=app)
            except CacheUnavailable:
                info = None
        apps[app] = AppStats(
            hits=hits,
            misses=misses,
            errors=counts[app]["errors"],
            hitRatio=round(hits / (hits + misses), 4) if hits + misses else 0.0,
            keys=footprint.keys if footprint else None,
            memoryBytes=footprint.memory_bytes if footprint else None,
        )
    redis: dict[str, Any] = {"status": "up" if info is not None else "down"}
    redis.update(info or {"version": None, "usedMemory": None, "maxmemory": None, "maxmemoryPolicy": None})
    return {"apps": apps, "redis": redis}


def cache_keys_page(*, app: str, match: str = "*", count: int = 100, cursor: int = 0) -> dict[str, Any]:
    """One SCAN step over ``app``'s keys, in the shape of the key listing endpoint.

    Raises CacheUnavailable when Redis cannot be reached.
    """
    next_cursor, keys = scan_keys(app, match=match, count=count, cursor=cursor)
    return {"app": app, "keys": [{"key": key, "ttl": ttl} for key, ttl in keys], "cursor": str(next_cursor)}


def dashboard_snapshot() -> dict[str, Any]:
    """Everything the /dashboard/ page shows, in one JSON document."""
    return {"cache": cache_stats()}
