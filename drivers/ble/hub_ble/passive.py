"""A passive sensor (BTHome, Xiaomi): entities from its advertisements, availability from their age.

Which entities a BTHome device has is only known from what it sends, so a configured device starts
with its signal strength (every parsed advertisement carries one) and gains an entity the first time
a value of a new kind arrives. An entity keeps its id across restarts (the registry's unique id is
address + key), so history continues.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hub.core.redact import also_hide_in_logs
from hub.devices.model import Device, EntitySpec

from hub_ble.config import BleDevice
from hub_ble.parsing import Decoder, Reading

if TYPE_CHECKING:
    from hub.context import EntityHandle, PluginContext

log = logging.getLogger("hub.plugins.ble")

SIGNAL = EntitySpec(key="signal_strength", capability="sensor", device_class="signal_strength", unit="dBm",
                    name="Signal Strength")
MANUFACTURER = {"bthome": "BTHome", "xiaomi": "Xiaomi"}


class PassiveDevice:
    def __init__(self, hub: "PluginContext", config: BleDevice) -> None:
        self.hub = hub
        self.config = config
        key = config.bind_key.get_secret_value() if config.bind_key is not None else None
        if key:
            # Whatever a library logs (bthome-ble's debug lines print what it decrypts with), not the key.
            also_hide_in_logs({key, key.upper()})
        self.decoder = Decoder(config.type, bytes.fromhex(key) if key else None)
        self.handles: dict[str, "EntityHandle"] = {}
        self.last_seen: float | None = None
        self.available = False
        self.model: str | None = None
        self._warned_key = False

    @property
    def address(self) -> str:
        return self.config.address

    def device(self) -> Device:
        return Device(id=self.address, name=self.config.label, manufacturer=MANUFACTURER[self.config.type],
                      model=self.model, connection=f"ble {self.address}")

    def start(self) -> None:
        self._add([SIGNAL])

    def _add(self, specs: list[EntitySpec]) -> None:
        named = [s.model_copy(update={"name": f"{self.config.label} {s.name or s.key}"}) for s in specs]
        self.handles.update(self.hub.add_device(self.device(), named))

    def handle(self, info, now: float) -> Reading | None:
        reading = self.decoder.decode(info)
        if self.decoder.key_ok is False and not self._warned_key:
            # Only its signal strength is readable then; the key itself is never logged.
            self._warned_key = True
            log.warning("ble: %s (%s): the bind key does not decrypt its advertisements",
                        self.config.label, self.address)
        if reading is None:
            return None
        if reading.model and reading.model != self.model:
            self.model = reading.model
        new = [spec for key, spec in reading.specs.items() if key not in self.handles]
        if new:
            self._add(new)
        for key, value in reading.values.items():
            self.handles[key].set(value)
        for event in reading.events:
            name = "ble_button" if event["key"].startswith("button") else "ble_event"
            self.hub.fire(name, {"address": self.address, "device": self.config.label, **event})
        self.last_seen = now
        self.available = True
        return reading

    def check(self, now: float, limit: float) -> None:
        """Unavailable after ``limit`` seconds without an advertisement (the device sends every few
        seconds to minutes; its battery may be flat, or it was moved out of range)."""
        if self.available and (self.last_seen is None or now - self.last_seen > limit):
            self.set_unavailable()

    def set_unavailable(self) -> None:
        self.available = False
        for handle in self.handles.values():
            handle.set_unavailable()

    def describe(self) -> dict:
        return {**self.config.public(), "name": self.config.label, "available": self.available,
                "last_seen": self.last_seen, "model": self.model, "key_ok": self.decoder.key_ok,
                "entities": sorted(h.entity_id for h in self.handles.values())}
