"""Connected devices: a GATT connection kept up, characteristics read and subscribed, commands written.

A device is a list of :class:`GattEntity` (the generic ``gatt`` type lists them in the configuration;
a profile such as the Nordic LED Button Service is the same list, written here once). The connection
goes through ``bleak_retry_connector.establish_connection`` (its retries and BlueZ cache handling);
when it drops (the device went out of range, the adapter went away) every entity is unavailable and
the device is connected again with a back-off up to ``reconnect_max``.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hub.devices.model import Device, EntitySpec

from hub_ble.config import BleDevice, Decode, GattEntity

if TYPE_CHECKING:
    from hub.context import EntityHandle, PluginContext

log = logging.getLogger("hub.plugins.ble")

LBS_SERVICE = "00001523-1212-efde-1523-785feabcd123"
LBS_BUTTON = "00001524-1212-efde-1523-785feabcd123"
LBS_LED = "00001525-1212-efde-1523-785feabcd123"

#: The Nordic LED Button Service (nRF5 SDK / nRF Connect SDK "peripheral_lbs" sample): an LED that
#: is written 0x01 / 0x00, a button that notifies 0x01 on press and 0x00 on release.
LBS_ENTITIES = [
    GattEntity(key="led", name="LED", capability="switch", service=LBS_SERVICE, characteristic=LBS_LED,
               decode=Decode(format="<B"), commands={"turn_on": "01", "turn_off": "00"}),
    GattEntity(key="button", name="Button", capability="binary_sensor", service=LBS_SERVICE,
               characteristic=LBS_BUTTON, decode=Decode(format="<B"), notify=True),
]


class NotConnected(Exception):
    """A command for a device whose connection is down."""


def decode(entity: GattEntity, data: bytes) -> Any:
    """A characteristic's bytes as the entity's state: the first field of its struct format."""
    size = struct.calcsize(entity.decode.format)
    if len(data) < size:
        raise ValueError(f"{entity.key}: {len(data)} bytes, the format {entity.decode.format!r} needs {size}")
    first = struct.unpack(entity.decode.format, bytes(data[:size]))[0]
    if entity.capability in ("switch", "binary_sensor"):
        return "on" if first else "off"
    if isinstance(first, bytes):
        raise ValueError(f"{entity.key}: the format's first field is bytes, a sensor needs a number")
    value = first * entity.decode.scale
    return round(value, 6) if isinstance(value, float) else value


def entities_of(config: BleDevice) -> list[GattEntity]:
    return LBS_ENTITIES if config.type == "lbs" else config.entities


class GattDevice:
    """One connected device and the loop that keeps it connected."""

    def __init__(self, hub: "PluginContext", config: BleDevice,
                 find: Callable[[str, float], Awaitable[Any]], reconnect_max: float) -> None:
        self.hub = hub
        self.config = config
        self.entities = {e.key: e for e in entities_of(config)}
        self.handles: dict[str, "EntityHandle"] = {}
        self.client = None
        self.connected = False
        self.last_error: str | None = None
        self.connections = 0
        self._find = find
        self._reconnect_max = reconnect_max
        self._lost: asyncio.Event | None = None

    @property
    def address(self) -> str:
        return self.config.address

    def start(self) -> None:
        manufacturer, model = ("Nordic Semiconductor", "LED Button Service") if self.config.type == "lbs" else (None, None)
        device = Device(id=self.address, name=self.config.label, manufacturer=manufacturer, model=model,
                        connection=f"ble {self.address}")
        specs = [EntitySpec(key=e.key, capability=e.capability, device_class=e.device_class, unit=e.unit,
                            name=f"{self.config.label} {e.name or e.key}") for e in self.entities.values()]
        self.handles = self.hub.add_device(device, specs)

    def key_of(self, entity_id: str) -> str | None:
        return next((key for key, h in self.handles.items() if h.entity_id == entity_id), None)

    # -- the connection ----------------------------------------------------------------------------
    async def run(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._session()
                delay = 1.0  # it was connected: the next attempt starts quickly again
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - out of range, adapter gone: try again later
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("ble: cannot connect to %s (%s): %s; retrying in %g s",
                            self.config.label, self.address, self.last_error, delay)
            finally:
                await self._drop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    async def _session(self) -> None:
        from bleak import BleakClient
        from bleak_retry_connector import establish_connection

        device = await self._find(self.address, 10.0)
        if device is None:
            raise LookupError("not heard by the adapter")
        lost = self._lost = asyncio.Event()
        loop = asyncio.get_running_loop()

        def disconnected(_client) -> None:
            loop.call_soon_threadsafe(lost.set)

        self.client = await establish_connection(BleakClient, device, self.config.label,
                                                 disconnected_callback=disconnected, max_attempts=2)
        self.connections += 1
        self.connected, self.last_error = True, None
        log.info("ble: connected to %s (%s)", self.config.label, self.address)
        for entity in self.entities.values():
            char = self._characteristic(entity)
            if "read" in char.properties:
                self._update(entity, await self.client.read_gatt_char(char))
            if entity.notify:
                await self.client.start_notify(char, self._on_notify(entity))
        await lost.wait()
        log.warning("ble: %s (%s) disconnected; reconnecting", self.config.label, self.address)

    def _characteristic(self, entity: GattEntity):
        service = self.client.services.get_service(entity.service)
        char = service.get_characteristic(entity.characteristic) if service is not None else None
        if char is None:
            raise LookupError(f"{entity.key}: the device has no characteristic {entity.characteristic} "
                              f"in service {entity.service}")
        return char

    def _on_notify(self, entity: GattEntity):
        def notified(_char, data: bytearray) -> None:
            self._update(entity, data)

        return notified

    def _update(self, entity: GattEntity, data: bytes) -> None:
        try:
            value = decode(entity, data)
        except (ValueError, struct.error) as exc:
            log.warning("ble: %s: %s", self.config.label, exc)
            return
        handle = self.handles[entity.key]
        before = handle.state.value if handle.state is not None and handle.state.available else None
        handle.set(value)
        if entity.capability == "binary_sensor" and entity.notify and value == "on" and before != "on":
            self.hub.fire("ble_button", {"address": self.address, "device": self.config.label,
                                         "key": entity.key, "event_type": "press", "properties": {}},
                          entity_id=handle.entity_id)

    async def _drop(self) -> None:
        self.connected = False
        for handle in self.handles.values():
            handle.set_unavailable()
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.disconnect()
            except Exception:  # noqa: BLE001 - already gone
                pass

    # -- commands ----------------------------------------------------------------------------------
    async def command(self, key: str, command: str) -> None:
        entity = self.entities[key]
        handle = self.handles[key]
        if command == "toggle":
            current = handle.state.value if handle.state is not None else None
            command = "turn_off" if current == "on" else "turn_on"
        payload = entity.commands.get(command)
        if payload is None:
            raise ValueError(f"{handle.entity_id} has no command {command!r}")
        client = self.client
        if client is None or not self.connected:
            raise NotConnected(f"{self.config.label} ({self.address}) is not connected"
                               + (f": {self.last_error}" if self.last_error else ""))
        char = self._characteristic(entity)
        data = bytes.fromhex(payload)
        await client.write_gatt_char(char, data, response="write" in char.properties)
        if "read" in char.properties:
            self._update(entity, await client.read_gatt_char(char))
        else:
            self._update(entity, data)

    def describe(self) -> dict:
        return {**self.config.public(), "name": self.config.label, "available": self.connected,
                "connected": self.connected, "connections": self.connections, "last_error": self.last_error,
                "entities": sorted(h.entity_id for h in self.handles.values())}
