"""One serial device at run time: keep its port open, turn frames into states, send commands.

The port is expected to vanish: a USB adapter is pulled, a hub is power-cycled, a cable wiggles.
So the reader runs in a loop that marks every entity ``unavailable`` when the port fails and then
tries to reopen the same path (a ``/dev/serial/by-id`` link comes back under the same name) with a
back-off from 0.25 s to ``reconnect_max``; nothing outside this driver notices more than the
entities' availability. Commands wait for their acknowledgement line through futures that the reader
resolves, so a command never reads the port itself and never steals a line from the entities.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from hub.context import EntityHandle
from hub.core.commands import CommandRefused
from hub.devices.model import slugify

from hub_serial import patterns
from hub_serial.config import CommandConfig, EntityConfig, PortConfig
from hub_serial.framing import Framer, FrameTooLong

log = logging.getLogger("hub.plugins.serial")


class NoAcknowledgement(Exception):
    """The device did not answer a command as expected in time."""


class DeviceRefused(Exception):
    """The device answered a command with a line matching the command's ``error`` pattern."""


@dataclass
class PortStats:
    frames: int = 0
    dropped: int = 0
    opens: int = 0
    open: bool = False
    last_error: str | None = None


@dataclass
class _Waiter:
    expect: re.Pattern | None
    error: re.Pattern | None
    future: asyncio.Future


class SerialDevice:
    def __init__(self, config: PortConfig, clock=time.time) -> None:
        self.config = config
        self.id = config.id or slugify(config.name)
        self.framer = Framer(config)
        self.entities: dict[str, EntityConfig] = {e.key: e for e in config.entities}
        self.compiled = {e.key: re.compile(e.pattern) for e in config.entities if e.pattern}
        self.handles: dict[str, EntityHandle] = {}
        self.stats = PortStats()
        self._clock = clock
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self._waiters: list[_Waiter] = []
        # Entities made unavailable by a silence (stale_after), to bring back when the device speaks.
        self._silenced: set[str] = set()

    # --- the port --------------------------------------------------------------------------------
    async def run(self) -> None:
        import serial
        import serial_asyncio_fast

        c, delay = self.config, 0.0
        while True:
            try:
                reader, writer = await serial_asyncio_fast.open_serial_connection(
                    url=c.port, baudrate=c.baudrate, bytesize=c.bytesize, parity=c.parity, stopbits=c.stopbits,
                    limit=c.max_frame + len(self.framer.terminator),
                )
            except (OSError, serial.SerialException) as exc:
                if self.stats.last_error != str(exc):
                    log.warning("serial: %s: cannot open %s: %s; retrying", c.name, c.port, exc)
                self.stats.last_error = str(exc)
                delay = min(max(delay * 2, 0.25), c.reconnect_max)
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            self.stats.opens += 1
            self.stats.open, self.stats.last_error = True, None
            log.info("serial: %s: %s open", c.name, c.port)
            self._writer = writer
            self._commands_available()
            try:
                await self._read_frames(reader)
            except (asyncio.IncompleteReadError, OSError, serial.SerialException) as exc:
                self.stats.last_error = str(exc) or "port closed"
                log.warning("serial: %s: %s lost (%s); entities unavailable until it is back", c.name, c.port,
                            self.stats.last_error)
            finally:
                self._lost(writer)
            await asyncio.sleep(0.1)

    def _lost(self, writer: asyncio.StreamWriter) -> None:
        self._writer = None
        self._silenced.clear()  # the reopen decides availability afresh
        self.stats.open = False
        writer.close()
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(ConnectionError(f"{self.config.port} was lost"))
        self.mark_unavailable()

    def _commands_available(self) -> None:
        """Entities with no pattern (a button, a write-only switch) hear nothing from the device:
        they are available exactly while the port is open, keeping their last value."""
        for key, handle in self.handles.items():
            if key not in self.compiled:
                handle.set(handle.state.value if handle.state is not None else None)

    def mark_unavailable(self) -> None:
        for handle in self.handles.values():
            handle.set_unavailable()

    async def _read_frames(self, reader: asyncio.StreamReader) -> None:
        stale = self.config.stale_after
        while True:
            try:
                payload = await asyncio.wait_for(self.framer.read(reader), stale) if stale else await self.framer.read(reader)
            except TimeoutError:
                if not self._silenced:
                    log.warning("serial: %s: silent for %g s; entities unavailable", self.config.name, stale)
                self._silenced |= {key for key, handle in self.handles.items()
                                   if handle.state is not None and handle.state.available}
                self.mark_unavailable()
                continue
            except FrameTooLong as exc:
                self.stats.dropped += 1
                log.debug("serial: %s: dropped %s", self.config.name, exc)
                continue
            self.stats.frames += 1
            if self._silenced:
                self._speaks_again()
            self.handle_line(self.framer.decode(payload))

    def _speaks_again(self) -> None:
        """The silence made the whole device unavailable, so any frame makes the whole device
        available again, each entity with its last value (as Home Assistant's availability does).
        Waiting for each entity's own pattern instead would leave entities without one (a set-point
        only written, a button) unavailable, and their commands refused, until the port is reopened."""
        log.info("serial: %s: speaks again; entities available", self.config.name)
        for key in self._silenced:
            handle = self.handles.get(key)
            if handle is not None and handle.state is not None:
                handle.set(handle.state.value)
        self._silenced.clear()

    def handle_line(self, line: str) -> None:
        for waiter in self._waiters:
            if waiter.future.done():
                continue
            if waiter.error is not None and waiter.error.search(line):
                waiter.future.set_exception(DeviceRefused(f"{self.config.name} answered {line!r}"))
            elif waiter.expect is not None and (m := waiter.expect.search(line)):
                waiter.future.set_result(m)
        for key, rx in self.compiled.items():
            entity = self.entities[key]
            try:
                found = patterns.match(entity, rx, line)
            except ValueError as exc:
                log.warning("serial: %s: %s in %r", self.config.name, exc, line)
                continue
            if found is not None and key in self.handles:
                value, attributes = found
                try:
                    self.handles[key].set(self._clock() if entity.capability == "button" else value, **attributes)
                except ValueError as exc:  # a state the capability refuses: this line's problem, not the port's
                    log.warning("serial: %s: %s in %r", self.config.name, exc, line)

    # --- commands --------------------------------------------------------------------------------
    async def command(self, handle: EntityHandle, command: str, args: Any) -> Any:
        entity = self.entities[handle.key]
        config = entity.commands.get(command)
        if config is None and command == "toggle" and entity.capability == "switch":
            current = handle.state.value if handle.state is not None else None
            command = "turn_off" if current == "on" else "turn_on"
            config = entity.commands.get(command)
        if config is None:
            raise CommandRefused(f"{handle.entity_id}: {command} is not configured for this device")
        values = args.model_dump()
        if command == "set_temperature" and not entity.min_temp <= args.temperature <= entity.max_temp:
            raise CommandRefused(f"set-point must be {entity.min_temp:g} to {entity.max_temp:g}; "
                                 f"got {args.temperature:g}")
        answer = await self.send(config, patterns.render(config.send, values))
        if answer is not None and "value" in answer.groupdict() and answer["value"] is not None:
            value, attributes = patterns.convert(entity, answer["value"])
        else:  # no answer to read the state from: the device said OK (or was not asked to)
            value, attributes = self._assumed(entity, command, values)
        if value is not None or attributes:
            handle.set(value, **attributes)
        return {"sent": patterns.render(config.send, values), "answer": answer.string if answer else None}

    def _assumed(self, entity: EntityConfig, command: str, values: dict) -> tuple[Any, dict]:
        if entity.capability == "switch":
            return ("on" if command == "turn_on" else "off"), {}
        if entity.capability == "button":
            return self._clock(), {}
        if command == "set_temperature":
            return entity.hvac_mode, {"target_temperature": values["temperature"]}
        if command == "set_value":
            return values["value"], {}
        if command == "select_option":
            return values["option"], {}
        return None, {}

    async def send(self, config: CommandConfig, text: str) -> re.Match | None:
        if self._writer is None:
            raise ConnectionError(f"{self.config.port} is not open")
        waiter = None
        if config.expect or config.error:
            waiter = _Waiter(re.compile(config.expect) if config.expect else None,
                             re.compile(config.error) if config.error else None,
                             asyncio.get_running_loop().create_future())
            self._waiters.append(waiter)  # before writing: the answer may be faster than us
        try:
            async with self._write_lock:
                self._writer.write(self.framer.encode(text))
                await self._writer.drain()
            if waiter is None:
                return None
            try:
                return await asyncio.wait_for(waiter.future, config.timeout)
            except TimeoutError:
                if config.expect is None:
                    return None  # only an error pattern, and no error came: accepted
                # Sent once, never again: the device may have acted on it and only the answer is lost.
                raise NoAcknowledgement(f"{self.config.name} did not answer {text!r} with "
                                        f"/{config.expect}/ within {config.timeout:g} s; it may or may not "
                                        "have carried it out (not sent again)") from None
        finally:
            if waiter is not None:
                self._waiters.remove(waiter)
