"""A small RESP2 server on loopback that answers what the test says: replies no real Redis sends.

It answers the connect's handshake as Redis does (INFO with a ``run_id`` and ``master_replid`` of its
own, PING); every other command goes to ``answer(command)``, which returns the reply (``resp``
encodes it) or None to stall: the command is read and never answered.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any, BinaryIO


class Error(str):
    """An error reply: ``-<text>``."""


def resp(value: Any) -> bytes:
    """``value`` as a RESP2 reply: None is nil, bytes a bulk string, int an integer, list an array."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, Error):
        return b"-" + value.encode() + b"\r\n"
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, list):
        return b"*%d\r\n" % len(value) + b"".join(resp(item) for item in value)
    raise TypeError(f"no RESP form for {type(value).__name__}")


OK = b"+OK\r\n"


def nils(command: list[bytes]) -> bytes:
    """What Redis answers an MGET of keys that do not exist."""
    return resp([None] * (len(command) - 1))


def _read_command(stream: BinaryIO) -> list[bytes] | None:
    header = stream.readline()
    if not header.startswith(b"*"):
        return None  # closed (or not a client of ours)
    command = []
    for _ in range(int(header[1:])):
        length = int(stream.readline()[1:])
        command.append(stream.read(length + 2)[:length])
    return command


class FakeRedis:
    """One listening socket, one thread per connection; ``commands`` lists every command received."""

    def __init__(self, answer: Callable[[list[bytes]], bytes | None]) -> None:
        self.answer = answer
        self.commands: list[list[bytes]] = []
        self.identity = secrets.token_hex(20).encode()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, name="fake-redis", daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError), connection, connection.makefile("rb") as stream:
            while (command := _read_command(stream)) is not None:
                self.commands.append(command)
                reply = self._reply(command)
                if reply is not None:
                    connection.sendall(reply)

    def _reply(self, command: list[bytes]) -> bytes | None:
        name = command[0].upper()
        if name == b"INFO":
            return resp(
                b"# Server\r\nrun_id:%s\r\n# Replication\r\nmaster_replid:%s\r\n" % (self.identity, self.identity)
            )
        if name == b"PING":
            return b"+PONG\r\n"
        return self.answer(command)

    def close(self) -> None:
        self._listener.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
