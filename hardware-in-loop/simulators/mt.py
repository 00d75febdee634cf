"""TI's Monitor and Test (MT) serial framing, as a Z-Stack coordinator speaks it over its UART.

A frame is ``0xFE | len | cmd0 | cmd1 | payload[len] | fcs`` where ``fcs`` is the XOR of every byte
from ``len`` to the end of the payload. ``cmd0`` holds the type in its top three bits (SREQ 0x20,
AREQ 0x40, SRSP 0x60) and the subsystem in the low five. Written here from TI's Z-Stack Monitor and
Test API document, not taken from zigpy-znp, so the emulator checks the library's framing instead
of sharing it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SOF = 0xFE
MAX_PAYLOAD = 250

SREQ, AREQ, SRSP = 0x20, 0x40, 0x60
# Subsystems (low five bits of cmd0)
RPC_ERROR, SYS, MAC, NWK, AF, ZDO, SAPI, UTIL, DEBUG, APP, APP_CNF, GP = (
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0F, 0x15)


@dataclass(frozen=True)
class Frame:
    cmd0: int
    cmd1: int
    payload: bytes = b""

    @property
    def kind(self) -> int:
        return self.cmd0 & 0xE0

    @property
    def subsystem(self) -> int:
        return self.cmd0 & 0x1F

    def encode(self) -> bytes:
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"MT payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        body = bytes([len(self.payload), self.cmd0, self.cmd1]) + self.payload
        fcs = 0
        for byte in body:
            fcs ^= byte
        return bytes([SOF]) + body + bytes([fcs])


def srsp(subsystem: int, cmd1: int, payload: bytes = b"") -> Frame:
    return Frame(SRSP | subsystem, cmd1, payload)


def areq(subsystem: int, cmd1: int, payload: bytes = b"") -> Frame:
    return Frame(AREQ | subsystem, cmd1, payload)


class Parser:
    """Splits a byte stream into frames; bytes outside a frame and frames with a bad FCS are
    dropped (counted), as the firmware's UART task does."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames: list[Frame] = []
        while True:
            start = self.buffer.find(SOF)
            if start < 0:
                self.buffer.clear()
                return frames
            del self.buffer[:start]
            if len(self.buffer) < 5:
                return frames
            length = self.buffer[1]
            if length > MAX_PAYLOAD:
                del self.buffer[:1]
                self.bad_frames += 1
                continue
            end = 5 + length
            if len(self.buffer) < end:
                return frames
            body = bytes(self.buffer[1:end - 1])
            fcs = 0
            for byte in body:
                fcs ^= byte
            if fcs != self.buffer[end - 1]:
                del self.buffer[:1]
                self.bad_frames += 1
                continue
            del self.buffer[:end]
            frames.append(Frame(body[1], body[2], body[3:]))


class Reader:
    """Reads little-endian fields off a payload, with a clear error when it is short."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"payload too short: wanted {size} bytes at {self.pos}, have {len(self.data)}")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values[0] if len(values) == 1 else values

    def bytes(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"payload too short: wanted {n} bytes at {self.pos}, have {len(self.data)}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out
