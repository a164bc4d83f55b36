"""Which Redis server (or dataset) a connection reached, and how many this process has seen.

Every new connection asks the server who it is (``ConnectEpoch``). A Redis that restarted from an
old dump, or a freshly promoted replica, may hold entries that later writes made stale; the cache
layer catches up with the invalidation journal before it trusts what such a server answers
(journal.py).
"""

from __future__ import annotations

import threading
from typing import Any

from redis.exceptions import ResponseError


class ConnectEpoch:
    """Counts the Redis servers (or datasets) this process has connected to, by identity.

    A server's identity is its ``run_id`` (new at every start) and its replication id (new when a
    replica is promoted, or a server starts replicating another): a Redis restarted from an old dump,
    a promoted replica, a restore, each is a new identity, whose entries the cache layer checks only
    after it has caught up with the invalidation journal (journal.py). Another connection to a server
    already seen (the pool growing, a reconnect after a network blip) is not counted.
    """

    lock = threading.Lock()
    servers_seen = 0  # identities seen, plus each connection to a server that would not say
    identities: set[bytes] = set()

    @classmethod
    def seen(cls, identity: bytes | None) -> None:
        with cls.lock:
            if identity is None or identity not in cls.identities:
                cls.servers_seen += 1
                if identity is not None:
                    cls.identities.add(identity)


def server_identity(connection: Any) -> bytes | None:
    """``run_id/master_replid`` of the server at the other end; None when it will not say."""
    connection.send_command("INFO", "server", "replication")
    try:
        info = connection.read_response()
    except ResponseError:
        return None  # refused (an ACL without INFO): counted as a server not seen
    # Timeouts and lost connections propagate: the connect fails, as it would on any handshake
    # command. Swallowed, they would leave a closed connection that every command reconnects.
    fields = dict(
        line.split(b":", 1) for line in (info if isinstance(info, bytes) else b"").splitlines() if b":" in line
    )
    run_id, replid = fields.get(b"run_id"), fields.get(b"master_replid")
    return run_id + b"/" + replid if run_id and replid else None


def on_connect(connection: Any) -> None:
    """redis-py's connect hook: the usual health check, then the server's identity counted."""
    connection.on_connect_check_health(check_health=True)
    ConnectEpoch.seen(server_identity(connection))
