"""Operations on one app's keys: list, count, clear; and the server's health and memory figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import cluster
from .calls import CacheUnavailable, call, client_for
from .policy import APPS


def app_pattern(app: str, match: str = "*") -> str:
    return f"{APPS[app]}_{match}"


def scan_keys(app: str, *, match: str = "*", count: int = 100, cursor: int = 0) -> tuple[int, list[tuple[str, int]]]:
    """One SCAN step over ``app``'s keys: the next cursor and (key, ttl) pairs.

    On Redis Cluster the cursor walks every primary in turn (cluster.scan_page), so it can be larger
    than a single server's cursor; 0 still starts and ends the walk.
    """

    def step() -> tuple[int, list[tuple[str, int]]]:
        client = client_for(app)
        next_cursor, keys = cluster.scan_page(client, cursor=cursor, match=app_pattern(app, match), count=count)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        ttls = pipe.execute() if keys else []
        return int(next_cursor), [(k.decode(), int(t)) for k, t in zip(keys, ttls, strict=True) if t != -2]

    return call(app, step)


def iter_keys(app: str, match: str = "*", batch: int = 1000) -> Iterator[bytes]:
    # On Redis Cluster, scan_iter walks every primary.
    yield from call(app, lambda: list(client_for(app).scan_iter(match=app_pattern(app, match), count=batch)))


def count_keys(app: str) -> int:
    return sum(1 for _ in iter_keys(app))


def clear_app(app: str) -> int:
    """Remove ``app``'s keys with SCAN + UNLINK; other apps' keys stay. Never FLUSHDB.

    On Redis Cluster the SCAN walks every primary and UNLINK is split by slot.
    """

    def clear() -> int:
        client = client_for(app)
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=app_pattern(app), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
        return deleted

    return call(app, clear)


def ping(app: str = "auth") -> bool:
    try:
        return call(app, lambda: cluster.ping_all(client_for(app)))
    except CacheUnavailable:
        return False


def server_info(app: str = "auth") -> dict[str, Any] | None:
    """Redis version and memory settings, or None when Redis is unavailable.

    On Redis Cluster, memory figures are summed over the primaries.
    """

    def info() -> dict[str, Any]:
        client = client_for(app)
        servers, memories = cluster.info_all(client, "server"), cluster.info_all(client, "memory")
        return {
            "version": servers[0].get("redis_version"),
            "usedMemory": sum(memory.get("used_memory", 0) for memory in memories),
            "maxmemory": sum(memory.get("maxmemory", 0) for memory in memories),
            "maxmemoryPolicy": memories[0].get("maxmemory_policy"),
        }

    try:
        return call(app, info)
    except CacheUnavailable:
        return None
