"""Cutting a byte stream into frames, and wrapping outgoing text into one.

Serial devices either end each message with a terminator (NMEA, AT commands, most Arduino sketches)
or prefix it with its length (binary-ish protocols where the payload may contain the terminator).
Both are here behind one small interface so the port layer does not care which it speaks.
"""

from __future__ import annotations

import asyncio

from hub_serial.config import PortConfig


class FrameTooLong(Exception):
    pass


class Framer:
    def __init__(self, config: PortConfig) -> None:
        self.config = config
        self.terminator = config.terminator.encode(config.encoding)

    def encode(self, text: str) -> bytes:
        payload = text.encode(self.config.encoding)
        if self.config.framing == "line":
            return payload + self.terminator
        limit = 256 ** self.config.length_bytes - 1
        if len(payload) > limit:
            raise ValueError(f"{len(payload)} bytes do not fit a {self.config.length_bytes}-byte length")
        return len(payload).to_bytes(self.config.length_bytes, self.config.length_order) + payload

    async def read(self, reader: asyncio.StreamReader) -> bytes:
        """The next frame's payload. ``asyncio.IncompleteReadError`` at end of stream (port gone)."""
        if self.config.framing == "line":
            try:
                data = await reader.readuntil(self.terminator)
            except asyncio.LimitOverrunError as exc:
                await self._skip_line(reader, exc.consumed)
                raise FrameTooLong(f"line longer than {self.config.max_frame} bytes") from None
            return data[: -len(self.terminator)]
        length = int.from_bytes(await reader.readexactly(self.config.length_bytes), self.config.length_order)
        if length > self.config.max_frame:
            raise FrameTooLong(f"frame of {length} bytes")
        return await reader.readexactly(length)

    async def _skip_line(self, reader: asyncio.StreamReader, consumed: int) -> None:
        """Drop a runaway line up to and including its terminator, so the next read starts in step."""
        while True:
            await reader.readexactly(consumed)
            try:
                await reader.readuntil(self.terminator)
                return
            except asyncio.LimitOverrunError as exc:
                consumed = exc.consumed

    def decode(self, payload: bytes) -> str:
        return payload.decode(self.config.encoding, errors="replace").strip("\r\n")
