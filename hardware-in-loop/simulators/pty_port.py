"""The device end of a socat pty pair, as a USB stick's UART: raw, non-blocking, paced at the baud
rate, and reopened when socat comes back after an "unplug". Shared by the coordinator emulators.
"""

from __future__ import annotations

import asyncio
import os
import termios
import tty
from collections.abc import Callable


class PtyPort:
    """``on_data(bytes)`` gets what the host sends; ``on_open(first)`` and ``on_close()`` tell the
    emulated stick that it was plugged in (``first`` only at start) or pulled out."""

    def __init__(self, path: str, baudrate: int, on_data: Callable[[bytes], None],
                 on_open: Callable[[bool], None] = lambda first: None,
                 on_close: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self.byte_time = 10 / baudrate if baudrate else 0.0  # 10 bits a byte: start, 8 data, stop
        self.on_data, self.on_open, self.on_close = on_data, on_open, on_close
        self.fd: int | None = None
        self.out = bytearray()
        self.wake = asyncio.Event()
        self.opened = asyncio.Event()

    def write(self, data: bytes) -> None:
        if self.fd is not None:
            self.out += data
            self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        first = True
        while True:
            while not os.path.exists(self.path):
                await asyncio.sleep(0.1)
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            target = os.path.realpath(self.path)
            try:
                tty.setraw(self.fd, termios.TCSANOW)  # not TCSAFLUSH: keep what the host sent meanwhile
            except termios.error:
                pass
            closed = loop.create_future()
            loop.add_reader(self.fd, self._readable, closed)
            writer = loop.create_task(self._writer(loop))
            self.on_open(first)
            first = False
            self.opened.set()
            await closed
            loop.remove_reader(self.fd)
            writer.cancel()
            os.close(self.fd)
            self.fd = None
            self.out.clear()
            self.opened.clear()
            self.on_close()
            # socat removes its links when it ends; a quick replug makes a link to a new pty
            while os.path.exists(self.path) and os.path.realpath(self.path) == target:
                await asyncio.sleep(0.1)

    def _readable(self, closed: asyncio.Future) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if not closed.done():
                closed.set_result(None)
            return
        self.on_data(data)

    async def _writer(self, loop: asyncio.AbstractEventLoop) -> None:
        next_free = loop.time()
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.out and self.fd is not None:
                # up to 2 ms of bytes may be ahead of the line (a UART's FIFO), so short frames
                # are not held back by the event loop's millisecond timers; longer bursts wait
                delay = next_free - loop.time()
                if delay > 0.002:
                    await asyncio.sleep(delay)
                try:
                    written = os.write(self.fd, self.out[:64])
                except BlockingIOError:
                    written = 0
                    await asyncio.sleep(0.001)
                except OSError:  # the pty is going away; the reader notices and reopens
                    self.out.clear()
                    break
                del self.out[:written]
                next_free = max(next_free, loop.time()) + written * self.byte_time
