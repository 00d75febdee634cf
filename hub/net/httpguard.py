"""Limits on what a client may send to, and hold open on, a uvicorn server (the hub API, the node RPC).

uvicorn accepts any number of connections, waits forever for a request's head (a client sending one
header byte a minute holds a socket and a file descriptor indefinitely: slowloris), lets httptools
buffer an unbounded request line and headers, and waits forever for a body that stops arriving.
:class:`GuardedHttpToolsProtocol` adds what is missing; :func:`uvicorn_limits` returns the
``uvicorn.Config`` keywords that apply it with the WebSocket and keep-alive limits. The hub API
(hub/api/server.py) and the chain node's RPC (hub/chain/p2p/service.py) both pass them.

The values are constants rather than settings: they bound misbehaving clients, and no legitimate
client of a hub or a node (CLI, dashboard, a light client, a few scripts) comes near them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("hub.net.httpguard")

#: Open connections (HTTP and WebSocket together); more are answered 503 and closed at once.
MAX_CONNECTIONS = 256
#: A request's line and headers must arrive within this many seconds of the connection (or of
#: the request's first byte on a kept-alive connection).
HEAD_TIMEOUT = 10.0
#: A request's line and headers together; more is answered 431.
MAX_HEAD_BYTES = 64 * 1024
#: Seconds a body may pause between two reads before the request is answered 408.
BODY_IDLE_TIMEOUT = 10.0
#: Seconds an idle kept-alive connection stays open (uvicorn's own default, stated here).
KEEP_ALIVE_TIMEOUT = 5
#: One WebSocket message (after decompression); the server closes with 1009 beyond it.
MAX_WS_MESSAGE_BYTES = 1024 * 1024
#: Received WebSocket messages buffered before the server stops reading the socket.
MAX_WS_QUEUE = 8

_LOG_EVERY = 10.0  # seconds between two warnings about refused connections
#: After an error answer, seconds to go on reading (and dropping) what the client still sends.
_LINGER = 2.0


def _response(status: int, reason: str, error: str, message: str) -> bytes:
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection cap, a deadline for the request head, a cap
    on its size and an idle timeout for the body. One timer per connection, re-armed per phase."""

    max_connections = MAX_CONNECTIONS
    head_timeout = HEAD_TIMEOUT
    max_head_bytes = MAX_HEAD_BYTES
    body_idle_timeout = BODY_IDLE_TIMEOUT
    _last_refusal_log = 0.0
    _refused_since_log = 0

    _refused = False
    _timer: Any = None
    _reading_head = False
    _request_started = False
    _lingering = False
    _head_bytes = 0

    # -- connection -------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._start_head()

    def _refuse(self, transport) -> None:
        self._refused = True
        self.transport = transport
        transport.write(
            _response(503, "Service Unavailable", "too_many_connections",
                      f"the server holds {self.max_connections} connections, its limit; try again later")
        )
        transport.close()
        cls = GuardedHttpToolsProtocol
        cls._refused_since_log += 1
        now = time.monotonic()
        if now - cls._last_refusal_log >= _LOG_EVERY:
            log.warning("refused %d connection(s): %d open, the limit", cls._refused_since_log, self.max_connections)
            cls._last_refusal_log, cls._refused_since_log = now, 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._lingering:
            return
        super().data_received(data)
        if self._reading_head and self.parser is not None and not self.transport.is_closing():
            # Counted after parsing, so a chunk that completes the head (and carries body bytes
            # with it) never counts: only a head still incomplete can exceed the cap.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._reject(431, "Request Header Fields Too Large", "request_too_large",
                             f"request line and headers: more than {self.max_head_bytes} bytes")

    def handle_websocket_upgrade(self) -> None:
        self._cancel_timer()  # the WebSocket protocol takes the transport over, with its own pings
        self._reading_head = False
        super().handle_websocket_upgrade()

    # -- parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:
            self._start_head()
        self._request_started = True

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._arm(self.body_idle_timeout)  # cancelled at once by on_message_complete when no body
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._arm(self.body_idle_timeout)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_timer()
        super().on_message_complete()

    # -- timers -----------------------------------------------------------------------------------

    def _start_head(self) -> None:
        self._reading_head = True
        self._request_started = False
        self._head_bytes = 0
        self._arm(self.head_timeout)

    def _arm(self, seconds: float) -> None:
        self._cancel_timer()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self._reading_head and not self._request_started:
            self.transport.close()  # nothing asked, nothing to answer (a browser's preconnect)
            return
        if self._reading_head:
            message = f"request line and headers not received within {self.head_timeout:g} s"
        else:
            message = f"request body: nothing received for {self.body_idle_timeout:g} s"
        self._reject(408, "Request Timeout", "request_timeout", message)

    def _reject(self, status: int, reason: str, error: str, message: str) -> None:
        """Answer (unless the application already started its answer) and close. Closing a socket
        with unread data makes the kernel send a reset, which can destroy the answer before the
        client reads it: so the write side is shut first and what still arrives is read and dropped
        for a moment (a "lingering close", as Apache and nginx do)."""
        self._cancel_timer()
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_response(status, reason, error, message))
        self._reading_head = False
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._timer = self.loop.call_later(_LINGER, self.transport.close)
        else:
            self.transport.close()


def connection_cap(default: int = MAX_CONNECTIONS) -> int:
    """``default``, or an eighth of the process's file descriptors when that is less: a server
    that accepts until ``accept()`` fails with EMFILE stops answering everyone (and asyncio logs
    every failed accept), and the rest of the process (peers, SQLite, logs) needs descriptors too."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return default
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return default
    return max(8, min(default, soft // 8))


def uvicorn_limits(*, max_connections: int | None = None, **overrides: Any) -> dict[str, Any]:
    """Keywords for ``uvicorn.Config`` that apply this module's limits; ``max_connections`` other
    than :data:`MAX_CONNECTIONS` gets a protocol class of its own (the cap is per class)."""
    protocol = GuardedHttpToolsProtocol
    if max_connections is not None and max_connections != protocol.max_connections:
        protocol = type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"max_connections": max_connections})
    return {
        "http": protocol,
        # The listen backlog is also how many connections asyncio accepts in one go, before the
        # refused ones among them are closed (two or three loop iterations after their accept, and
        # every iteration may accept another batch). uvicorn's 2,048 let a burst of idle sockets
        # take every descriptor of a node with a 1,024-file limit ("accept() out of system
        # resource") despite the cap. Equal to the cap, open sockets stay under about four times
        # it; with the cap at an eighth of the file limit (connection_cap) that is half of it. A
        # quarter, as first chosen, ran out on a loaded machine (the full test suite on 2 cores).
        "backlog": protocol.max_connections,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
        "ws_max_size": MAX_WS_MESSAGE_BYTES,
        "ws_max_queue": MAX_WS_QUEUE,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        **overrides,
    }


__all__ = ["GuardedHttpToolsProtocol", "MAX_CONNECTIONS", "MAX_HEAD_BYTES", "connection_cap", "uvicorn_limits"]
