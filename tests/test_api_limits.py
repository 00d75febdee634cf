"""Limits of the API against a real ``hub run``: revoked tokens end WebSocket sessions, oversized and
slow input is refused, a flood of half-sent requests cannot keep the hub's sockets, and bad numbers,
deep nesting and non-JSON constants are a 4xx or a clear WebSocket error, never a 500 or a dropped
socket."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.parse

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from hub.api.limits import MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_HEAD_BYTES
from tests.hubproc import run_cli

def ws_connect(hub, token: str | None = None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(f"ws://127.0.0.1:{hub.port}/api/ws", additional_headers=headers, **kw)


def closed_code(ws, timeout: float = 15.0) -> int:
    """Read until the server closes the connection; its close code."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=deadline - time.monotonic())
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else -1
    except TimeoutError:
        pass
    raise AssertionError(f"the server did not close the WebSocket within {timeout} s")


def result_of(ws, msg_id, timeout: float = 10.0) -> dict:
    while True:
        msg = json.loads(ws.recv(timeout=timeout))
        if msg.get("id") == msg_id and msg.get("type") in ("result", "pong"):
            return msg


def raw_request(port: int, data: bytes, *, read: bool = True, timeout: float = 30.0) -> tuple[bytes, socket.socket]:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    return (read_all(s) if read else b""), s


def read_all(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_and_body(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


# -- 1. revoking a token ends its WebSocket sessions ------------------------------------------------


def test_revoking_a_token_closes_its_websocket_sessions_at_once(hub):
    with contextlib.ExitStack() as stack:
        _revoke_while_connected(hub, stack)


def _revoke_while_connected(hub, stack):
    created = run_cli(hub.data, "token", "create", "dashboard")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()

    subscriber = stack.enter_context(ws_connect(hub, token))  # authenticated by header, receiving state events
    assert json.loads(subscriber.recv(timeout=10))["type"] == "auth_ok"
    subscriber.send(json.dumps({"id": 1, "type": "subscribe_states"}))
    assert result_of(subscriber, 1)["success"] is True

    idle = stack.enter_context(ws_connect(hub))  # authenticated by first message, then silent
    assert json.loads(idle.recv(timeout=10))["type"] == "auth_required"
    idle.send(json.dumps({"type": "auth", "access_token": token}))
    assert json.loads(idle.recv(timeout=10))["type"] == "auth_ok"

    caller = stack.enter_context(ws_connect(hub, token))
    assert json.loads(caller.recv(timeout=10))["type"] == "auth_ok"

    owner = stack.enter_context(ws_connect(hub, hub.token))  # another token's session is not affected
    assert json.loads(owner.recv(timeout=10))["type"] == "auth_ok"

    revoked = run_cli(hub.data, "token", "revoke", "dashboard")  # another process writes the store
    assert revoked.returncode == 0, revoked.stderr

    # A command sent after the revocation is not carried out, whether or not the hub noticed yet.
    try:
        caller.send(json.dumps({"id": 7, "type": "call", "entity_id": "light.living_room",
                                "command": "turn_on", "args": {"brightness": 173}}))
    except ConnectionClosed:
        pass
    assert closed_code(caller) == 4001
    assert closed_code(subscriber) == 4001
    assert closed_code(idle) == 4001
    assert hub.get("/api/states/light.living_room")["attributes"].get("brightness") != 173

    owner.send(json.dumps({"id": 2, "type": "ping"}))
    assert result_of(owner, 2) == {"id": 2, "type": "pong"}
    owner.close()
    # And the token opens nothing new.
    with ws_connect(hub, token) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "auth_invalid"


# -- 2. sizes ---------------------------------------------------------------------------------------


def declared_body(hub, method: str, path: str, length: int, content_type: str = "application/json") -> bytes:
    """Declare a body of ``length`` bytes, send 64 KiB of it and read the answer: an answer that
    comes without the rest was given before the body was read whole."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hub.token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    response, s = raw_request(hub.port, head + b'{"brightness": ' + b" " * 65536)
    s.close()
    return response


def test_a_20_mb_command_body_is_refused_before_it_is_sent(hub):
    response = declared_body(hub, "POST", "/api/entities/light.living_room/commands/turn_on", 20 * 1024 * 1024)
    status, body = status_and_body(response)
    assert status == 413 and body["error"] == "payload_too_large", body
    assert b"connection: close" in response.lower()


def test_a_body_over_the_limit_is_refused_on_every_route(hub):
    for method, path, content_type in [
        ("POST", "/api/events/doorbell", "application/json"),
        ("POST", "/api/rules", "application/json"),
        ("PUT", "/api/rules/x", "text/plain"),
        ("GET", "/api/states", "application/octet-stream"),  # a route that reads no body at all
        ("POST", "/api/nowhere", "application/json"),
    ]:
        status, body = status_and_body(declared_body(hub, method, path, MAX_BODY_BYTES + 1, content_type))
        assert status == 413 and body["error"] == "payload_too_large", (path, status, body)
    # Without a Content-Length (chunked), counted as it arrives.
    chunk = b"x" * 65536
    head = (
        f"POST /api/events/doorbell HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hub.token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunks = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(MAX_BODY_BYTES // len(chunk) + 2))
    response, s = raw_request(hub.port, head + chunks)
    s.close()
    assert status_and_body(response)[0] == 413
    assert hub.get("/api/health")["status"] == "ok"


def test_event_data_and_websocket_messages_are_bounded(hub):
    status, body = hub.request("POST", "/api/events/doorbell", {"data": "x" * 70_000})
    assert status == 422 and "65536" in body["message"], body
    status, body = hub.request("POST", "/api/events/" + "e" * 200, {})
    assert status == 422, body

    with ws_connect(hub, hub.token, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "auth_ok"
        ws.send(json.dumps({"id": 1, "type": "ping", "padding": "x" * (2 * 1024 * 1024)}))
        assert closed_code(ws) == 1009  # message too big
    with ws_connect(hub, hub.token) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "auth_ok"
        # The same entity 5,000 times is one subscription, not 5,000.
        ws.send(json.dumps({"id": 1, "type": "subscribe_states", "entity_ids": ["light.living_room"] * 5000}))
        assert result_of(ws, 1)["success"] is True
        ws.send(json.dumps({"id": 2, "type": "subscribe_events", "event_type": "doorbell"}))
        assert result_of(ws, 2)["success"] is True
        ws.send(json.dumps({"id": 3, "type": "subscribe_events", "event_type": "e" * 200}))
        assert "100 characters" in result_of(ws, 3)["error"]["message"]


def test_an_oversized_request_head_is_refused(hub):
    head = f"GET /api/states?{'a' * (MAX_HEAD_BYTES + 1000)} HTTP/1.1\r\nHost: x\r\n".encode()
    response, s = raw_request(hub.port, head)  # the head is never finished
    s.close()
    assert status_and_body(response)[0] == 431
    status, body = hub.request("GET", "/api/states?x=" + "a" * 8000)  # long, but within the limit
    assert status == 200


# -- 3. connections -----------------------------------------------------------------------------------


def test_half_sent_requests_are_closed_and_cannot_exhaust_connections(hub):
    """300 clients send part of a request and stop (slowloris); one sends its head and part of a body.
    The hub answers those over its connection limit at once, times out the rest, and serves again."""
    body_head = (
        f"POST /api/events/doorbell HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hub.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":"
    ).encode()
    slow_body = socket.create_connection(("127.0.0.1", hub.port), timeout=60)
    slow_body.sendall(body_head)
    partial = b"GET /api/states HTTP/1.1\r\nHost: x\r\nX-Slow: "
    silent = socket.create_connection(("127.0.0.1", hub.port), timeout=60)  # connects, sends nothing
    socks = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", hub.port), timeout=60)
        s.sendall(partial)
        socks.append(s)

    statuses = []
    for s in socks:
        response = read_all(s)  # returns once the server closed the connection
        s.close()
        statuses.append(status_and_body(response)[0] if response else None)
    # Every one was closed by the server: over the limit at once (503, or a reset when the
    # server closed before reading what the client sent), within the limit when its head was late.
    assert set(statuses) <= {503, 408, None}, set(statuses)
    assert 0 < statuses.count(408) <= MAX_CONNECTIONS, statuses.count(408)
    assert statuses.count(503) > 0

    status, body = status_and_body(read_all(slow_body))
    slow_body.close()
    assert status == 408 and "body" in body["message"], body
    assert read_all(silent) == b""  # closed without an answer to a question never asked
    silent.close()
    assert hub.get("/api/health")["status"] == "ok"


def test_kept_alive_connections_serve_many_requests(hub):
    """The head deadline runs per request, not per connection."""
    s = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
    request = f"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    for _ in range(20):
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            data += s.recv(65536)
        assert data.startswith(b"HTTP/1.1 200")
    s.close()


# -- 4. bad numbers, deep nesting, non-JSON constants ------------------------------------------------------


@pytest.mark.parametrize("value", ["1e308", "nan", "NaN", "inf", "-inf", "Infinity", "-1", "0000-01-01",
                                   "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-12:00", "x" * 5000])
def test_history_times_out_of_range_are_a_clear_422(hub, value):
    for name in ("start", "end"):
        status, body = hub.request("GET", f"/api/history/light.living_room?{name}={urllib.parse.quote(value)}")
        assert status == 422 and body["message"].startswith(f"{name}:"), (value, status, body)
        assert len(body["message"]) < 300


def test_naive_iso_times_are_utc(hub):
    naive = hub.get("/api/history/light.living_room?start=2026-01-02T03:04:05&end=2026-01-02T04:00:00")
    assert naive["start"] == "2026-01-02T03:04:05+00:00"
    assert naive["end"] == "2026-01-02T04:00:00+00:00"
    assert hub.get("/api/history/light.living_room?end=0")["end"] == "1970-01-01T00:00:00+00:00"


@pytest.mark.parametrize("raw", [b'{"x": NaN}', b'{"x": Infinity}', b'{"x": -Infinity}', b'{"x": 1e999}',
                                 b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                 b'{"x": ' + b"[" * 65 + b"]" * 65 + b"}",
                                 b'{"x": ' + b"9" * 5000 + b"}"])
def test_non_json_numbers_and_deep_nesting_in_bodies_are_a_422(hub, raw):
    for path in ("/api/events/doorbell", "/api/entities/light.living_room/commands/turn_on", "/api/rules/check"):
        status, body = hub.request("POST", path, raw=raw)
        assert status == 422 and body["error"] == "invalid_request" and body["message"].startswith("body:"), (path, body)


def test_websocket_bad_json_is_an_error_and_the_session_goes_on(hub):
    with ws_connect(hub, hub.token) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "auth_ok"
        ws.send(json.dumps({"id": 1, "type": "subscribe_events", "event_type": "doorbell"}))
        assert result_of(ws, 1)["success"] is True
        for text in ("[" * 100_000 + "]" * 100_000, '{"id": 2, "type": "ping", "x": NaN}',
                     '{"id": 3, "type": "call", "entity_id": "light.living_room", "command": "turn_on", '
                     '"args": {"brightness": Infinity}}', '{"id": 4, "x": 1e400}'):
            ws.send(text)
            reply = json.loads(ws.recv(timeout=10))
            assert reply["success"] is False and reply["error"]["code"] == "invalid_json", reply
        # Events a subscriber receives are strict JSON: what the API refuses never reaches them.
        assert hub.request("POST", "/api/events/doorbell", raw=b'{"level": NaN}')[0] == 422
        hub.post("/api/events/doorbell", {"level": 1.5})
        msg = ws.recv(timeout=10)
        json.loads(msg, parse_constant=lambda c: pytest.fail(f"{c} sent to a subscriber"))
        assert json.loads(msg)["event"]["data"] == {"level": 1.5}
        ws.send(json.dumps({"id": 8, "type": "x" * 100_000}))
        reply = result_of(ws, 8)
        assert reply["error"]["code"] == "unknown_type" and len(reply["error"]["message"]) < 500
        ws.send(json.dumps({"id": 9, "type": "ping"}))
        assert result_of(ws, 9) == {"id": 9, "type": "pong"}


def test_websocket_auth_message_that_is_not_json_is_refused_cleanly(hub):
    for first in ("[" * 100_000, '{"type": "auth", "access_token": NaN}', b"\xff\xfe"):
        with ws_connect(hub) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "auth_required"
            ws.send(first)
            assert json.loads(ws.recv(timeout=10))["type"] == "auth_invalid"
            assert closed_code(ws) == 4001


# -- the listening socket -----------------------------------------------------------------------------


async def test_the_api_socket_answers_without_nagle_delays():
    """Connections accepted on the hub's own listening socket have Nagle's algorithm off, as asyncio
    does for TCP sockets: with it on, each kept-alive request waited 40 ms for a delayed ACK."""
    import asyncio

    from hub.api.server import _bind

    sock = _bind("127.0.0.1", 0)
    nodelay = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            nodelay.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(nodelay, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
