"""One Modbus device at run time: its read plan, its health, its commands.

The device, not the entity, is the unit of health: when a meter stops answering every one of its
registers is stale at once, so after ``unavailable_after`` failed poll cycles in a row all its
entities go ``unavailable`` together, and the first answer brings them back. A device that answers
with an exception (illegal address, still busy after the retries) is alive: only the entities behind
that request are reported (``unavailable``, with the reason in the status route), and a coalesced
block the device refuses as illegal is split into single reads for good, so one wrong address in a
map costs one entity, not the device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from hub.context import EntityHandle
from hub.core.commands import CommandRefused

from hub_modbus import entities as mapping
from hub_modbus.bus import BusError, DeviceException, ModbusBus
from hub_modbus.config import DeviceConfig, device_key
from hub_modbus.entity_config import EntityConfig
from hub_modbus.plan import Block, plan, split

log = logging.getLogger("hub.plugins.modbus")

#: Exception codes that concern the request (a wrong address or function), not the device's health.
REQUEST_ERRORS = frozenset({1, 2, 3})
DEFAULT_POLL_INTERVAL = 10.0


class WriteNotConfirmed(Exception):
    """The device accepted a write but reading back shows another value."""


@dataclass
class PollGroup:
    """Entities polled at the same interval, with their coalesced blocks."""

    interval: float
    blocks: list[Block]
    next_due: float = 0.0


@dataclass
class Health:
    available: bool | None = None  # None: not polled yet
    failures: int = 0
    last_error: str | None = None
    entity_errors: dict[str, str] = field(default_factory=dict)
    last_cycle_requests: int = 0
    cycles: int = 0


class ModbusDevice:
    def __init__(self, config: DeviceConfig, bus: ModbusBus) -> None:
        self.config = config
        self.bus = bus
        self.id = device_key(config)
        self.entities: dict[str, EntityConfig] = {e.key: e for e in config.resolved}
        self.handles: dict[str, EntityHandle] = {}
        self.health = Health()
        default = config.setting("poll_interval", DEFAULT_POLL_INTERVAL)
        by_interval: dict[float, list[EntityConfig]] = {}
        for entity in self.entities.values():
            by_interval.setdefault(entity.poll_interval or default, []).append(entity)
        limits = dict(max_gap=config.setting("max_gap", 8), max_registers=config.setting("max_registers", 125),
                      max_bits=config.setting("max_bits", 2000))
        self.groups = [PollGroup(interval, plan([mapping.read_item(e) for e in ents], **limits))
                       for interval, ents in sorted(by_interval.items())]

    @property
    def requests_per_cycle(self) -> int:
        return sum(len(g.blocks) for g in self.groups)

    # --- polling ---------------------------------------------------------------------------------
    async def poll(self, group: PollGroup) -> None:
        before = self.bus.stats.requests
        answered, failure = False, None
        for block in list(group.blocks):
            try:
                answered |= await self._read(group, block)
            except (BusError, DeviceException) as exc:
                failure = exc
                break  # the device is not answering: do not spend the shared line on its other blocks
        self.health.last_cycle_requests = self.bus.stats.requests - before
        self.health.cycles += 1
        if failure is None or answered:
            self._alive()
        else:
            self._failed(failure)

    async def _read(self, group: PollGroup, block: Block) -> bool:
        """Read one block and publish it; True when the device answered (even with an exception)."""
        try:
            words = await self.bus.read(block.register, self.config.device_id, block.address, block.count)
        except DeviceException as exc:
            if exc.means_absent:
                raise
            if exc.code not in REQUEST_ERRORS:
                # Busy past the retries, a device failure: it answered, so it is alive, but it has
                # no value for these entities now. Its other blocks are still read.
                for item in block.items:
                    self._entity_error(item.key, exc)
                return True
            if len(block.items) > 1:
                log.info("modbus: %s refuses %s %d-%d as one read (%s); reading its entities one by one",
                         self.config.name, block.register, block.address, block.end - 1, exc)
                parts = split(block)
                index = group.blocks.index(block)
                group.blocks[index:index + 1] = parts
                for part in parts:
                    await self._read(group, part)
                return True
            self._entity_error(block.items[0].key, exc)
            return True
        for item in block.items:
            offset = item.address - block.address
            self._publish(item.key, words[offset:offset + item.width])
        return True

    def _entity_error(self, key: str, exc: Exception) -> None:
        if self.health.entity_errors.get(key) != str(exc):
            log.warning("modbus: %s %s: %s", self.config.name, key, exc)
        self.health.entity_errors[key] = str(exc)
        self.handles[key].set_unavailable()

    def _publish(self, key: str, words: list) -> None:
        entity = self.entities[key]
        try:
            value, attributes = mapping.state(entity, mapping.raw_value(entity, words))
        except mapping.NotAnOption as exc:
            self.health.entity_errors[key] = str(exc)
            self.handles[key].set(None)
            return
        except (ValueError, UnicodeDecodeError) as exc:
            self.health.entity_errors[key] = str(exc)
            self.handles[key].set_unavailable()
            return
        self.health.entity_errors.pop(key, None)
        self.handles[key].set(value, **attributes)

    def _alive(self) -> None:
        if self.health.available is False:
            log.info("modbus: %s answers again", self.config.name)
        self.health.available = True
        self.health.failures = 0
        self.health.last_error = None

    def _failed(self, exc: Exception) -> None:
        self.health.failures += 1
        self.health.last_error = str(exc)
        log.debug("modbus: %s: failure %d: %s", self.config.name, self.health.failures, exc)
        if self.health.failures >= self.config.unavailable_after and self.health.available is not False:
            log.warning("modbus: %s unavailable after %d failed polls: %s", self.config.name,
                        self.health.failures, exc)
            self.health.available = False
            for handle in self.handles.values():
                handle.set_unavailable()

    # --- commands --------------------------------------------------------------------------------
    async def command(self, handle: EntityHandle, command: str, args: Any) -> Any:
        entity = self.entities[handle.key]
        try:
            if entity.capability == "switch":
                current = handle.state.value if handle.state is not None else None
                on = command == "turn_on" or (command == "toggle" and current != "on")
                return await self._write(handle, entity, mapping.switch_words(entity, on))
            if entity.capability == "climate":
                return await self._climate(handle, entity, command, args)
            if entity.capability in ("number", "select"):
                # The hub has checked the value against min/max/step or the options already.
                try:
                    words = (mapping.setpoint_words(entity, args.value) if command == "set_value"
                             else mapping.option_words(entity, args.option))
                except ValueError as exc:  # does not fit the register's type
                    raise CommandRefused(str(exc)) from None
                return await self._write(handle, entity, words)
        except DeviceException as exc:
            if exc.code == 3:  # illegal data value: the device refuses this value, the caller's problem
                raise CommandRefused(f"{self.config.name} refused the value: {exc}") from None
            raise
        raise CommandRefused(f"{handle.entity_id} is read-only")

    async def _climate(self, handle: EntityHandle, entity: EntityConfig, command: str, args: Any) -> Any:
        if command == "set_temperature":
            target = args.temperature
            if not entity.min_temp <= target <= entity.max_temp:
                raise CommandRefused(f"set-point must be {entity.min_temp:g} to {entity.max_temp:g}; got {target:g}")
            try:
                words = mapping.setpoint_words(entity, target)
            except ValueError as exc:
                raise CommandRefused(str(exc)) from None
            return await self._write(handle, entity, words)
        if command == "set_hvac_mode" and args.hvac_mode == entity.hvac_mode:
            return None
        raise CommandRefused(f"{handle.entity_id} only runs in {entity.hvac_mode} mode; it has no {command}")

    async def _write(self, handle: EntityHandle, entity: EntityConfig, value: bool | list[int]) -> Any:
        """Write, then read back: a relay board that ignores the write must not look switched."""
        unit = self.config.device_id
        if isinstance(value, bool):
            await self.bus.write_coil(unit, entity.address, value)
            expected: Any = value
            back: Any = (await self.bus.read("coil", unit, entity.address, 1))[0]
        else:
            await self.bus.write_registers(unit, entity.address, value)
            expected = value
            back = await self.bus.read(entity.register_type, unit, entity.address, len(value))
        self._publish(entity.key, [back] if isinstance(back, bool) else back)
        if back != expected:
            raise WriteNotConfirmed(f"{self.config.name}: wrote {expected} to {entity.register_type} {entity.address} "
                                    f"but read back {back}")
        state = handle.state
        return {"confirmed": True, "value": state.value if state else None}
