"""A small threaded TCP forwarder on 127.0.0.1 for the database fault-injection tests.

``FaultProxy(port)`` listens on a free local port and forwards to ``127.0.0.1:port``. Its mode
decides what happens to the bytes:

- ``pass``: forwarded both ways;
- ``stall``: nothing is forwarded any more, in either direction, on any connection (new
  connections are accepted and then ignored): a database that stops answering;
- ``drop``: every connection is closed at once (with a reset), new ones too: a database (or a
  network) that goes away.

``trigger=b"..."`` switches to ``fault`` (``"stall"`` or ``"drop"``) the first time a client
sends bytes containing it (e.g. the text of the schema-check or extraction query), so a test
can fault a given stage of a run it does not otherwise control. Everything is bounded: sockets
poll every 0.1 s, ``stop()`` (or leaving the ``with`` block) closes every socket and joins the
threads within a second.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "stall", "drop"]
_POLL_S = 0.1


class FaultProxy:
    """Forward 127.0.0.1:``self.port`` to 127.0.0.1:``target_port`` (see the module docstring)."""

    def __init__(self, target_port: int, *, mode: Mode = "pass", trigger: bytes | None = None,
                 fault: Mode = "stall", target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.mode: Mode = mode
        self.trigger, self.fault = trigger, fault
        self.triggered = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(_POLL_S)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.n_connections = 0

    # -- control ---------------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "drop":
            self._reset_all()

    def url_for(self, url: str) -> str:
        """``url`` (a SQLAlchemy URL) pointed at the proxy."""
        import sqlalchemy as sa

        return sa.make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False)

    def start(self) -> FaultProxy:
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._reset_all()
        with contextlib.suppress(OSError):
            self._server.close()
        for t in self._threads:
            t.join(timeout=1.0)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- plumbing --------------------------------------------------------------------------

    def _spawn(self, fn, *args) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _reset_all(self) -> None:
        with self._lock:
            socks, self._sockets = list(self._sockets), set()
        for s in socks:
            _reset(s)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            self.n_connections += 1
            if self.mode == "drop":
                _reset(client)
                continue
            self._track(client)
            if self.mode == "stall":
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=2.0)
            except OSError:
                _reset(client)
                continue
            self._track(upstream)
            self._spawn(self._pump, client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                if self.mode == "drop":
                    break
                readable, _, _ = select.select(list(peers), [], [], _POLL_S)
                if self.mode != "pass":
                    continue  # stalled: leave the bytes in the kernel buffers
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is client and self.trigger and self.trigger in data:
                        self.triggered.set()
                        self.set_mode(self.fault)
                        if self.fault != "pass":
                            return  # the triggering request never reaches the database
                    peers[src].sendall(data)
        except OSError:
            return
        finally:
            if self.mode != "stall" or self._stop.is_set():
                _reset(client)
                _reset(upstream)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a dropped connection looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
