"""Operations on one app's keys: list, count, clear; and the server's health and memory figures."""

from __future__ import annotations

from typing import Any

from . import cluster
from .calls import CacheUnavailable, cache_for, client_for, redis_call
from .policy import APPS

_BATCH = 1000  # keys a SCAN step asks for, and an UNLINK removes at a time


def app_pattern(app: str, match: str = "*") -> str:
    return f"{APPS[app]}_{match}"


def scan_keys(app: str, *, match: str = "*", count: int = 100, cursor: int = 0) -> tuple[int, list[tuple[str, int]]]:
    """One SCAN step over ``app``'s keys: the next cursor and (key, ttl) pairs.

    On Redis Cluster the cursor walks every primary in turn (cluster.scan_page), so it can be larger
    than a single server's cursor; 0 still starts and ends the walk.
    """
    # Not django-redis's iter_keys: a listing is paged across requests, and iter_keys keeps its SCAN
    # cursor inside a generator, so it cannot hand one out or start from one a client sends back.

    def step() -> tuple[int, list[tuple[str, int]]]:
        client = client_for(app)
        next_cursor, keys = cluster.scan_page(client, cursor=cursor, match=app_pattern(app, match), count=count)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        ttls = pipe.execute() if keys else []
        return int(next_cursor), [(k.decode(), int(t)) for k, t in zip(keys, ttls, strict=True) if t != -2]

    return redis_call(app, step)


def count_keys(app: str) -> int:
    """How many keys ``app`` has: django-redis's ``iter_keys`` (SCAN over the alias's prefix, never KEYS).

    On Redis Cluster the alias's client is a RedisCluster, whose SCAN walks every primary.
    """
    return redis_call(app, lambda: sum(1 for _ in cache_for(app).iter_keys("*", itersize=_BATCH)))


def clear_app(app: str) -> int:
    """Remove ``app``'s keys with SCAN + UNLINK; other apps' keys stay. Never FLUSHDB.

    On Redis Cluster the SCAN walks every primary and UNLINK is split by slot.
    """
    # Not django-redis's delete_pattern: it queues a DEL for every key the whole SCAN finds in one
    # pipeline, a MULTI/EXEC transaction on a single Redis, so clearing a large app holds every key
    # name in this process and then blocks the Redis every app shares until the last DEL is done. It
    # also counts the keys SCAN returned (one may be returned twice), not the keys removed. Here each
    # batch is one UNLINK, which frees the values off Redis's main thread and says how many it removed.

    def clear() -> int:
        client = client_for(app)
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=app_pattern(app), count=_BATCH):
            batch.append(key)
            if len(batch) >= _BATCH:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
        return deleted

    return redis_call(app, clear)


def ping(app: str = "auth") -> bool:
    try:
        return redis_call(app, lambda: cluster.ping_all(client_for(app)))
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
        return redis_call(app, info)
    except CacheUnavailable:
        return None
