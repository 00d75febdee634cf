"""Frames and messages of the key-holding device's protocol, over a real loopback socket."""

from __future__ import annotations

import asyncio

import pytest

from hub.crypto.encoding import encode

from hub_lightnode import protocol

HELLO = {"t": "hello", "v": 1, "device": bytes(32), "model": "keyplug", "flash": 1,
         "entities": [{"key": "relay", "capability": "switch", "unit": None, "device_class": "outlet"}]}


async def pair(frames: bytes):
    """A server that writes ``frames`` and keeps the line open; returns the client's reader."""
    async def serve(reader, writer):
        writer.write(frames)
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return server, reader, writer


async def test_messages_round_trip_through_frames():
    state = {"t": "state", "entity": "power", "value": 1500.0}
    server, reader, writer = await pair(protocol.pack(HELLO) + protocol.pack(state))
    async with server:
        assert await protocol.read_frame(reader, 2) == HELLO
        assert await protocol.read_frame(reader, 2) == state
        with pytest.raises(TimeoutError):  # the line is open but silent
            await protocol.read_frame(reader, 0.2)
        writer.close()


async def test_a_frame_above_the_limit_is_refused_before_it_is_read():
    server, reader, writer = await pair((protocol.MAX_FRAME + 1).to_bytes(4, "big"))
    async with server:
        with pytest.raises(protocol.ProtocolError, match="limit is 65536"):
            await protocol.read_frame(reader, 2)
        writer.close()
    with pytest.raises(protocol.ProtocolError, match="above 65536"):
        protocol.pack({"t": "busy", "message": "x" * protocol.MAX_FRAME})


async def test_not_deterministic_cbor_is_refused():
    body = bytes([0xA2, 0x62]) + b"id" + bytes([0x01, 0x61]) + b"t" + bytes([0x64]) + b"ping"  # "id" before "t"
    server, reader, writer = await pair(len(body).to_bytes(4, "big") + body)
    async with server:
        with pytest.raises(protocol.ProtocolError, match="deterministic CBOR"):
            await protocol.read_frame(reader, 2)
        writer.close()


@pytest.mark.parametrize("message, error", [
    ([1, 2], "a message is a map"),
    ({"t": "launch"}, "t: 'launch' is not one of"),
    ({"t": "ping"}, "ping.id: missing"),
    ({"t": "ping", "id": -1}, "ping.id: a non-negative integer expected"),
    ({"t": "ping", "id": 1, "extra": 2}, r"ping: unknown field\(s\) extra"),
    ({**HELLO, "device": b"short"}, "hello.device: 32 bytes expected"),
    ({**HELLO, "entities": []}, "hello.entities: a list of 1 to 32"),
    ({**HELLO, "entities": [{"key": "relay"}]}, r"hello.entities\[0\]: an entity is"),
    ({"t": "answer", "id": 1, "ok": False, "reason": "forged"}, "answer.message: missing"),
    ({"t": "answer", "id": 1, "ok": True}, "answer.result: missing"),
])
def test_each_malformed_message_names_its_field(message, error):
    with pytest.raises(protocol.ProtocolError, match=error):
        protocol.check(message)
    assert encode(HELLO)  # the good one encodes, deterministically
