"""Raw send and receive of one read-only command on a pooled connection, without redis-py's wrapping."""

from __future__ import annotations

from typing import Any, NamedTuple

from redis.exceptions import ResponseError


def read(client: Any, *args: Any) -> Any:
    """One read-only command (MGET, a read-only script) on a connection of ``client``'s pool.

    What ``client.execute_command(*args)`` does for such a command, less redis-py's per-command
    machinery around it (its observability hooks, a retry closure, a check for HIMPORT), which costs
    a warm hit a noticeable share of its time (bench/hitcpu.py measures it). Nothing it does applies:
    retries are off (connection.ConnectionFactory), no reply callback parses these commands, and a
    read is never refused as READONLY, the one error the Sentinel pool retries
    (connection.DemotionAwareConnection). As there, a connection that failed is dropped, and one
    whose server answered with an error is kept.
    """
    sent = send(client, *args)
    if sent is None:  # a single-connection client: its own lock and connection
        return client.execute_command(*args)
    return receive(sent)


class Sent(NamedTuple):
    """A command sent on a connection taken from ``pool``, whose answer is still to be read."""

    pool: Any
    connection: Any


def send(client: Any, *args: Any) -> Sent | None:
    """``read``'s first half: send the command and return at once; ``receive`` must follow.

    Between the two the connection is out of the pool and Redis answers while the caller works.
    None for a single-connection client, whose connection is not this thread's to hold.
    """
    if client.connection is not None:
        return None
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command(*args)
    except BaseException:
        connection.disconnect()
        pool.release(connection)
        raise
    return Sent(pool, connection)


def receive(sent: Sent) -> Any:
    """The answer to ``sent``'s command; its connection goes back to the pool (dropped if it failed)."""
    connection = sent.connection
    try:
        return connection.read_response()
    except ResponseError:
        raise
    except BaseException:
        connection.disconnect()
        raise
    finally:
        sent.pool.release(connection)
