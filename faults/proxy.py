"""A loopback TCP relay that a test can break: refuse connections, cut them, slow or black-hole the traffic.

Put between the server and PostgreSQL or Redis, it makes the network faults that a process signal
cannot: a database whose connections all drop at once and that refuses new ones for a while, or a
partition in which connections stay open but nothing gets through either way (commands sent then
are lost, not merely delayed as with CLIENT PAUSE or SIGSTOP).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

from techbirdsfly.testing import free_port


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close with a RST, as a dead peer or a dropped NAT entry looks to the client.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Relays 127.0.0.1:``port`` to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.blackhole = False
        self.delay = 0.0  # seconds added before each chunk is relayed towards the target: a slow server
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    # --- control ---------------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listener = listener
        self._closed.clear()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> int:
        """Reset every relayed connection; new ones are still accepted. Returns how many were cut."""
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)
        return len(pairs)

    def refuse(self) -> None:
        """Cut every connection and stop listening: connecting is refused until ``start``."""
        self._closed.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        self.cut()

    def stop(self) -> None:
        self.refuse()

    # --- relaying ----------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._relay, args=(pair,), daemon=True).start()

    def _relay(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        peers = {client: upstream, upstream: client}
        try:
            while pair in self._pairs:
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.blackhole:  # a partition: the bytes are lost, the connection stays
                        continue
                    if self.delay and sock is client:
                        time.sleep(self.delay)
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._pairs.discard(pair)
            _reset(client)
            _reset(upstream)
