"""A TCP forwarder in front of the fault suite's Kafka broker, so the broker can "go down" for the
workers without losing its in-memory topics (tansu keeps nothing across a restart).

The broker advertises the proxy's port, so every connection a client opens (bootstrap and the
partition leader alike) passes through here. :meth:`TcpProxy.outage` closes every live connection
and stops listening: clients see connection resets and then refused connections, as with a
crashed broker, until the proxy listens again.
"""

from __future__ import annotations

import socket
import threading
import time


class TcpProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1"):
        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._server: socket.socket | None = None
        self.outages = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.listen_port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _close(conn)

    def outage(self, seconds: float) -> None:
        """The broker is unreachable for ``seconds``: connections cut, new ones refused."""
        self.outages += 1
        self.stop()
        time.sleep(seconds)
        self.start()

    # -- forwarding -----------------------------------------------------------------------------

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:  # closed by stop()
                return
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            # The timeout was for connecting only: a broker silent for a while (a group join, a
            # long fetch, a loaded machine) must not have its connections cut by the proxy.
            upstream.settimeout(None)
            with self._lock:
                if self._server is not server:  # an outage began meanwhile
                    _close(client), _close(upstream)
                    return
                self._conns.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _close(s)
                with self._lock:
                    self._conns.discard(s)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
