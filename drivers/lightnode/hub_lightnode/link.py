"""One TCP link from the hub to one key-holding device: connect, learn who it is, mirror its states,
carry requests and their answers, and reconnect with back-off when it drops.

The device speaks first (``hello``), proves it holds the key it names (``auth``), and may push ``state`` and ``reset`` frames at any time, so one
reader task owns the socket's read side and hands each ``answer`` to the request waiting for its
``id``. A ping every ``ping_interval`` keeps a half-open link from looking alive: when nothing at
all arrives for three intervals the link is dropped and the device's entities become unavailable.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable
from typing import Any

from hub.crypto import keys

from hub_lightnode import protocol
from hub_lightnode.config import DeviceConfig, LightnodeConfig

log = logging.getLogger("hub.plugins.lightnode")


class NotConnected(ConnectionError):
    """The device cannot be reached now; the hub says so instead of pretending it was asked."""


class Link:
    def __init__(self, device: DeviceConfig, config: LightnodeConfig, *,
                 on_hello: Callable[["Link", dict], None], on_message: Callable[["Link", dict], None],
                 on_down: Callable[["Link"], None]) -> None:
        self.device = device
        self.config = config
        self.on_hello, self.on_message, self.on_down = on_hello, on_message, on_down
        self.hello: dict | None = None  # the last hello: the device's key and entities
        self.connected = False
        self.failures = 0
        self.last_error: str | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)

    @property
    def address(self) -> str:
        return f"{self.device.host}:{self.device.port}"

    async def run(self) -> None:
        """Forever: connect, serve the link until it drops, wait, again."""
        delay = 0.2
        while True:
            try:
                await self._session()
                delay = 0.2  # it was up: the next attempt comes soon
            except Exception as exc:  # noqa: BLE001 - one device's fault must not end the others' links
                self.failures += 1
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if error != self.last_error:
                    expected = isinstance(exc, (OSError, TimeoutError, asyncio.IncompleteReadError,
                                                protocol.ProtocolError))
                    log.warning("lightnode device at %s: %s", self.address, error, exc_info=not expected)
                self.last_error = error
            finally:
                self._drop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    async def _session(self) -> None:
        timeout = self.config.timeout
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(self.device.host, self.device.port)
        self._writer = writer
        hello = await protocol.read_frame(reader, timeout)
        if hello["t"] == "busy":
            raise ConnectionRefusedError(f"device busy: {hello['message']}")
        if hello["t"] != "hello":
            raise protocol.ProtocolError(f"expected hello first, got {hello['t']}")
        if hello["v"] != protocol.VERSION:
            raise protocol.ProtocolError(f"hello.v: protocol version {hello['v']}, this hub speaks {protocol.VERSION}")
        nonce = os.urandom(32)
        await protocol.write_frame(writer, {"t": "auth", "id": 0, "nonce": nonce}, timeout)
        pending: list[dict] = []  # states pushed before the answer: applied once the device is known
        while True:
            message = await protocol.read_frame(reader, timeout)
            if message["t"] == "answer" and message["id"] == 0:
                break
            if message["t"] not in ("state", "reset") or len(pending) >= 64:
                raise protocol.ProtocolError(f"{message['t']}: not expected before the answer to auth")
            pending.append(message)
        signature = message.get("result")
        if not (message["ok"] and isinstance(signature, bytes)
                and keys.verify(hello["device"], protocol.auth_bytes(nonce, hello["device"]), signature)):
            raise protocol.ProtocolError(f"the device could not show it holds key {hello['device'].hex()[:16]}..., "
                                         "which its hello claims")
        self.hello = hello
        self.on_hello(self, hello)
        self.connected = True
        self.last_error = None
        log.info("lightnode device %s... at %s connected", hello["device"].hex()[:16], self.address)
        for message in pending:
            self.on_message(self, message)
        pinger = asyncio.create_task(self._ping())
        try:
            while True:
                message = await protocol.read_frame(reader, self.config.ping_interval * 3)
                if message["t"] == "answer":
                    future = self._pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message["t"] in ("state", "reset"):
                    self.on_message(self, message)
                else:
                    raise protocol.ProtocolError(f"{message['t']}: not a message a device sends")
        finally:
            pinger.cancel()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.config.ping_interval)
            try:
                await self.request({"t": "ping"})
            except (NotConnected, TimeoutError, OSError):
                return  # the reader's timeout ends the session

    def _drop(self) -> None:
        was_up = self.connected
        self.connected = False
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(NotConnected(f"lightnode device at {self.address}: the link dropped"))
        self._pending.clear()
        if was_up:
            log.warning("lightnode device at %s disconnected", self.address)
            self.on_down(self)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request and wait for its answer (``TimeoutError`` after ``timeout`` s)."""
        if not self.connected or self._writer is None:
            raise NotConnected(f"lightnode device at {self.address} is not connected"
                               + (f" ({self.last_error})" if self.last_error else ""))
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await protocol.write_frame(self._writer, {**message, "id": request_id}, self.config.timeout)
            async with asyncio.timeout(self.config.timeout):
                return await future
        finally:
            self._pending.pop(request_id, None)
