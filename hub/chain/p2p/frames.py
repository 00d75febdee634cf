"""Frames: a 4-byte big-endian length, then the deterministic-CBOR map of one message.

The payload goes through the strict decoder (:func:`hub.crypto.encoding.decode`) so whatever a peer
sends ends in exactly one exception type, :class:`FrameError`; ``fatal`` tells the caller whether
the stream is still in step (a bad payload of the announced length) or must be closed (oversized
length, truncated frame).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hub.chain.p2p.limits import LENGTH_PREFIX, MAX_FRAME_BYTES
from hub.crypto.encoding import DecodeError, decode, encode


class FrameError(ValueError):
    """A frame that is not a deterministic-CBOR message map within the size limit."""

    def __init__(self, message: str, *, fatal: bool) -> None:
        self.fatal = fatal
        super().__init__(message)


def encode_frame(message: dict[str, Any], max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("a message is a map with a text 'type'")
    payload = encode(message)
    if len(payload) > max_bytes:
        raise ValueError(f"message {message['type']!r} is {len(payload)} bytes, the frame limit is {max_bytes}")
    return len(payload).to_bytes(LENGTH_PREFIX, "big") + payload


def decode_payload(payload: bytes) -> dict[str, Any]:
    try:
        message = decode(payload)
    except DecodeError as exc:
        raise FrameError(f"bad frame payload: {exc}", fatal=False) from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("a frame must hold a map with a text 'type'", fatal=False)
    return message


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any] | None:
    """The next message, or None at a clean end of stream (between frames)."""
    try:
        prefix = await reader.readexactly(LENGTH_PREFIX)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("stream ended inside a length prefix", fatal=True) from None
    length = int.from_bytes(prefix, "big")
    if length > max_bytes:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_bytes}", fatal=True)
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"stream ended after {len(exc.partial)} of {length} frame bytes", fatal=True) from None
    return decode_payload(payload)
