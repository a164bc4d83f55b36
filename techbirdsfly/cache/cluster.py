"""Redis Cluster behind the same cache layer: a django-redis client on redis-py's ``RedisCluster``.

django-redis has no cluster client (django-redis #208, #710). ``ClusterClient`` is its
``DefaultClient`` with one ``RedisCluster`` per process underneath, which routes every key to the
shard that owns its slot. Settings select it when ``REDIS_CLUSTER_NODES`` is set; LOCATION lists
some of the nodes (``redis://h1:6379,redis://h2:6379``), and the rest are discovered.

Reads. On a cluster an entry, its fill lock and its scope's generation key carry the scope as a
hash tag (generations.in_scope), so they share a slot: a scoped read is one MGET to one shard. A
request's read-ahead (the token record, then the view's entries) may still span slots and shards;
``mget`` sends one command to each shard involved, all sent before any answer is read: an MGET when
the shard's keys share a slot, else a read-only script that may read several of the shard's slots
(``allow-cross-slot-keys``; a cluster refuses an MGET across slots, CROSSSLOT). The keys are routed
by the client's slot map; a shard that answers MOVED, ASK or "non local key" (a resharding, a
failover) sends this read, and the next ones until one succeeds, through redis-py's own routing
(``mget_nonatomic``), which follows redirections and refreshes the map. Reads of several shards are
not atomic and need not be: a hit needs the generation recorded in the entry to equal the
generation key's, which is in the entry's own slot, read by the same command.

Listing and clearing one app's keys walk every primary: ``scan_page`` gives the layer one cursor
over all shards, and ``RedisCluster.scan_iter`` and ``unlink`` (split by slot) do the rest.

Failures: redis-py raises ``RedisClusterException``, which is not a ``RedisError``, when no node
can be reached or a slot has no node. Those become ``ClusterUnavailable`` (a ``ConnectionError``)
so that the layer's breaker treats them like any other outage, and retries are off as they are for
a single Redis (connection.py): the breaker decides when to try again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from django_redis.client.default import DefaultClient, _main_exceptions
from django_redis.exceptions import ConnectionInterrupted
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError
from redis.retry import Retry

from . import replies
from .identity import ConnectEpoch, server_identity
from .rawio import Sent, read, receive, send

SLOTS = 16384


class ClusterUnavailable(RedisConnectionError):
    """The cluster, or the shard owning a key, cannot be used right now."""


def _count_connection(connection: Any) -> None:
    # RedisCluster has already authenticated the connection (its own on_connect); a node not seen
    # before is counted, so the layer catches up with the journal before trusting it.
    ConnectEpoch.seen(server_identity(connection))


class _SafeClusterPipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return super().execute(raise_on_error)
        except RedisClusterException as exc:
            raise ClusterUnavailable(str(exc)) from exc


class SafeRedisCluster(RedisCluster):
    """A RedisCluster whose failures are all ``RedisError``s."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterUnavailable(str(exc)) from exc

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        # Same object, one overridden method: avoids copying RedisCluster.pipeline's constructor call.
        pipe.__class__ = _SafeClusterPipeline
        return pipe


_clusters: dict[tuple[Any, ...], SafeRedisCluster] = {}
_clusters_lock = threading.Lock()


def _node(location: str) -> tuple[str, int, str | None, str | None]:
    parts = urlsplit(location if "://" in location else f"redis://{location}")
    if not parts.hostname:
        raise ValueError(f"not a cluster node address: {location!r}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, parts.port or 6379, username, password


def cluster_client(locations: Sequence[str], options: dict[str, Any]) -> SafeRedisCluster:
    """The process's RedisCluster for these startup nodes and options (built once, thread-safe)."""
    nodes = [_node(location) for location in locations]
    username = options.get("USERNAME") or next((n[2] for n in nodes if n[2]), None)
    password = options.get("PASSWORD") or next((n[3] for n in nodes if n[3]), None)
    pool_kwargs = options.get("CONNECTION_POOL_KWARGS", {})
    kwargs = {
        "username": username,
        "password": password,
        "socket_timeout": options.get("SOCKET_TIMEOUT"),
        "socket_connect_timeout": options.get("SOCKET_CONNECT_TIMEOUT"),
        "max_connections": pool_kwargs.get("max_connections"),
    }
    key = (tuple((host, port) for host, port, _, _ in nodes), tuple(sorted(kwargs.items())))
    client = _clusters.get(key)
    if client is None:
        with _clusters_lock:
            client = _clusters.get(key)
            if client is None:
                try:
                    client = SafeRedisCluster(
                        startup_nodes=[ClusterNode(host, port) for host, port, _, _ in nodes],
                        retry=Retry(NoBackoff(), 0),
                        redis_connect_func=_count_connection,
                        **{k: v for k, v in kwargs.items() if v is not None},
                    )
                except RedisClusterException as exc:
                    raise ClusterUnavailable(str(exc)) from exc
                _clusters[key] = client
    return client


class ClusterClient(DefaultClient):
    """django-redis's client on a Redis Cluster (OPTIONS as for DefaultClient; LOCATION lists nodes)."""

    def get_next_client_index(self, write: bool = True, tried: list[int] | None = None) -> int:
        # One RedisCluster object routes every command itself; there are no separate read servers.
        return 0

    def connect(self, index: int = 0) -> Any:
        return cluster_client(self._server, self._options)

    def disconnect(self, index: int = 0, client: Any = None) -> None:
        client = client if client is not None else self._clients[index]
        if client is not None:
            client.disconnect_connection_pools()

    def get_many(self, keys: Iterable[str], version: int | None = None, client: Any = None) -> dict[str, Any]:
        """MGET split by slot (see the module docstring): one pipelined MGET per shard involved."""
        if client is None:
            client = self.get_client(write=False)
        map_keys = {self.make_key(k, version=version): k for k in keys}
        if not map_keys:
            return {}
        try:
            values = client.mget_nonatomic(list(map_keys))
        except _main_exceptions as exc:
            raise ConnectionInterrupted(connection=client) from exc
        return {
            map_keys[key]: self.decode(value) for key, value in zip(map_keys, values, strict=True) if value is not None
        }


# --- operations over every shard (the read path's; a plain Redis client passes straight through) -----


_CLUSTER_TYPES: dict[type, bool] = {}
_CLUSTER_CLIENTS: dict[type, bool] = {}


def on_cluster(cache: Any) -> bool:
    """Is this django-redis cache on Redis Cluster? Asked of its client class: no connection needed."""
    kind = type(cache.client)
    found = _CLUSTER_CLIENTS.get(kind)
    if found is None:
        found = _CLUSTER_CLIENTS[kind] = issubclass(kind, ClusterClient)
    return found


def is_cluster(client: Any) -> bool:
    # isinstance against RedisCluster goes through typing's Protocol machinery (its bases are
    # Protocols): about a microsecond on every read, here. A client's type answers once.
    kind = type(client)
    found = _CLUSTER_TYPES.get(kind)
    if found is None:
        found = _CLUSTER_TYPES[kind] = isinstance(client, RedisCluster)
    return found


def mget(client: Any, keys: Sequence[str]) -> list[bytes | None]:
    """MGET; on a cluster one command per shard, sent together (see the module docstring).

    Raises MalformedReply when the answer is not one value (or nil) per key.
    """
    reply = _mget_by_shard(client, keys) if is_cluster(client) else read(client, "MGET", *keys)
    return replies.values(reply, len(keys))


# Read ARGV, keys of several slots of this shard, as MGET would: nil for a key that is not a string.
# Keys are not declared (KEYS must share a slot); the flag lets the script read them all the same, and
# a key this shard does not serve is an error, not a nil.
_READ_SLOTS = """#!lua flags=no-writes,allow-cross-slot-keys
local values = {}
for i, key in ipairs(ARGV) do
  if redis.call('type', key).ok == 'string' then values[i] = redis.call('get', key) else values[i] = false end
end
return values
"""


class _Routing:
    direct = True  # False after a redirection: redis-py routes reads until one succeeds


def _mget_by_shard(client: RedisCluster, keys: Sequence[str]) -> list[Any]:
    if not _Routing.direct:
        values = client.mget_nonatomic(keys)
        _Routing.direct = True
        return values
    slots_cache = client.nodes_manager.slots_cache
    shards: dict[str, tuple[Any, list[int], set[int]]] = {}
    for index, key in enumerate(keys):
        slot = client.keyslot(key)
        nodes = slots_cache.get(slot)
        if not nodes:
            raise ClusterUnavailable(f"slot {slot} is not covered by the cluster")
        found = shards.get(nodes[0].name)
        if found is None:
            found = shards[nodes[0].name] = (nodes[0], [], set())
        found[1].append(index)
        found[2].add(slot)
    sent: list[tuple[list[int], Sent | None]] = []
    values: list[Any] = [None] * len(keys)
    try:
        for node, indexes, slots in shards.values():
            names = [keys[i] for i in indexes]
            command = ("MGET", *names) if len(slots) == 1 else ("EVAL", _READ_SLOTS, 0, *names)
            sent.append((indexes, send(client.get_redis_connection(node), *command)))
        for position, (indexes, one) in enumerate(sent):
            sent[position] = (indexes, None)
            reply = replies.values(receive(one), len(indexes))
            for index, value in zip(indexes, reply, strict=True):
                values[index] = value
    except ResponseError:
        # MOVED, ASK, a key not local: the slot map is out of date. redis-py follows the redirection.
        _Routing.direct = False
        values = client.mget_nonatomic(keys)
        _Routing.direct = True
        return values
    except BaseException:
        _Routing.direct = False  # a shard gone: redis-py's routing refreshes the map on its next read
        raise
    finally:
        for _, one in sent:
            if one is not None:  # sent, never read: whatever comes on it is lost
                one.connection.disconnect()
                one.pool.release(one.connection)
    return values


def primaries(client: RedisCluster) -> list[ClusterNode]:
    """The primaries in the order of the first slot each serves: stable across a failover of one."""
    first_slot: dict[str, int] = {}
    for slot, nodes in client.nodes_manager.slots_cache.items():
        name = nodes[0].name
        if slot < first_slot.get(name, SLOTS):
            first_slot[name] = slot
    return sorted(client.get_primaries(), key=lambda node: (first_slot.get(node.name, SLOTS), node.name))


def scan_page(client: Any, *, cursor: int, match: str, count: int) -> tuple[int, list[bytes]]:
    """One SCAN step. On a cluster the cursor walks the primaries one after another.

    A cluster cursor packs the primary's position and that primary's own cursor:
    ``node_cursor * len(primaries) + position``; 0 starts the walk and ends it, as in SCAN.
    """
    if not is_cluster(client):
        next_cursor, keys = client.scan(cursor=cursor, match=match, count=count)
        return int(next_cursor), keys
    nodes = primaries(client)
    position, node_cursor = cursor % len(nodes), cursor // len(nodes)
    cursors, keys = client.scan(cursor=node_cursor, match=match, count=count, target_nodes=nodes[position])
    node_next = int(cursors[nodes[position].name])
    if node_next:
        return node_next * len(nodes) + position, keys
    return (position + 1 if position + 1 < len(nodes) else 0), keys


def ping_all(client: Any) -> bool:
    """PING the server, or every primary of a cluster."""
    if is_cluster(client):
        return bool(client.ping(target_nodes=RedisCluster.PRIMARIES))
    return bool(client.ping())


def info_all(client: Any, section: str) -> list[dict[str, Any]]:
    """INFO ``section`` of the server, or of every primary of a cluster."""
    if not is_cluster(client):
        return [client.info(section)]
    nodes = client.get_primaries()
    result = client.info(section, target_nodes=nodes)
    # redis-py answers a single node's reply unwrapped, several as {node name: reply}.
    return [result] if len(nodes) == 1 else list(result.values())
