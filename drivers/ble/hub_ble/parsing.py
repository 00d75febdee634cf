"""Advertisements into readings, through the parser libraries Home Assistant uses.

bthome-ble and xiaomi-ble each take a ``BluetoothServiceInfo`` and return a ``SensorUpdate``
(sensor-state-data): descriptions with a device class and unit, values, binary values and events.
Here that update becomes the hub's terms: entity specs (``sensor`` / ``binary_sensor``) with the
hub's device classes where they exist, their values, and the events to fire. A parser object keeps
state (the last packet id, whether the bind key was verified), so there is one per address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from hub.devices.capabilities import BINARY_CLASSES, SENSOR_UNITS
from hub.devices.model import EntitySpec

log = logging.getLogger("hub.plugins.ble")

#: Where the library's device class has another name in the hub.
_SENSOR_CLASS = {"carbon_dioxide": "co2", "pm25": "pm25", "signal_strength": "signal_strength"}


@dataclass
class Reading:
    """One advertisement, parsed."""

    parser: str
    specs: dict[str, EntitySpec] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    title: str | None = None
    manufacturer: str | None = None
    model: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.values.items()}


def _key(device_key) -> str:
    return device_key.key if not device_key.device_id else f"{device_key.key}_{device_key.device_id}"


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or isinstance(value, (date, datetime)) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)  # Decimal
    except (TypeError, ValueError):
        return None


def new_parser(kind: str, bind_key: bytes | None = None):
    """A parser of ``kind`` ("bthome" or "xiaomi"); imported here so ``hub --help`` does not load them."""
    if kind == "bthome":
        from bthome_ble import BTHomeBluetoothDeviceData

        return BTHomeBluetoothDeviceData(bindkey=bind_key)
    from xiaomi_ble import XiaomiBluetoothDeviceData

    return XiaomiBluetoothDeviceData(bindkey=bind_key)


def recognise(info) -> str | None:
    """Which parser knows this advertisement (``hub ble scan`` offers it as that type)."""
    for kind in ("bthome", "xiaomi"):
        try:
            if new_parser(kind).supported(info):
                return kind
        except Exception:  # noqa: BLE001 - a parser tripping on a stranger's bytes is "not ours"
            continue
    return None


def to_reading(kind: str, update) -> Reading:
    """A ``SensorUpdate`` in the hub's terms."""
    reading = Reading(parser=kind, title=update.title)
    info = next(iter(update.devices.values()), None)
    if info is not None:
        reading.manufacturer, reading.model = info.manufacturer, info.model
    for device_key, value in update.entity_values.items():
        number = _number(value.native_value)
        if number is None:
            continue
        key = _key(device_key)
        description = update.entity_descriptions.get(device_key)
        lib_class = getattr(getattr(description, "device_class", None), "value", None)
        unit = getattr(getattr(description, "native_unit_of_measurement", None), "value", None)
        hub_class = _SENSOR_CLASS.get(lib_class, lib_class)
        if hub_class not in SENSOR_UNITS:
            hub_class = None
        reading.specs[key] = EntitySpec(key=key, capability="sensor", device_class=hub_class,
                                        unit=unit if unit is not None else (SENSOR_UNITS.get(hub_class) if hub_class else None),
                                        name=value.name)
        reading.values[key] = number
    for device_key, value in update.binary_entity_values.items():
        if value.native_value is None:
            continue
        key = _key(device_key)
        description = update.binary_entity_descriptions.get(device_key)
        lib_class = getattr(getattr(description, "device_class", None), "value", None)
        reading.specs[key] = EntitySpec(key=key, capability="binary_sensor",
                                        device_class=lib_class if lib_class in BINARY_CLASSES else None,
                                        name=value.name)
        reading.values[key] = "on" if value.native_value else "off"
    for device_key, event in update.events.items():
        reading.events.append({"key": _key(device_key), "event_type": event.event_type,
                               "properties": dict(event.event_properties or {})})
    return reading


class Decoder:
    """One address's parser: the library object (its packet-id and key state) and its kind."""

    def __init__(self, kind: str, bind_key: bytes | None = None) -> None:
        self.kind = kind
        self._parser = new_parser(kind, bind_key)

    def decode(self, info) -> Reading | None:
        """The reading, or None when the advertisement is not the parser's (or not decryptable)."""
        try:
            if not self._parser.supported(info):
                return None
            update = self._parser.update(info)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the scanner
            log.debug("ble: %s parser failed on %s: %s", self.kind, info.address, exc)
            return None
        return to_reading(self.kind, update)

    @property
    def key_ok(self) -> bool | None:
        """False when the device is encrypted and the bind key does not decrypt it."""
        verified = getattr(self._parser, "bindkey_verified", None)
        encrypted = getattr(self._parser, "encryption_scheme", None)
        if self._parser.bindkey is None:
            return None
        if encrypted is not None and getattr(encrypted, "value", encrypted) == "none":
            return None
        return bool(verified)


def service_info(device, adv, source: str = "hci0"):
    """bleak's (device, advertisement) as the ``BluetoothServiceInfoBleak`` the parsers take
    (bthome-ble reads its ``time``; a plain ``BluetoothServiceInfo`` lacks it)."""
    import time

    from home_assistant_bluetooth import BluetoothServiceInfoBleak

    return BluetoothServiceInfoBleak(
        adv.local_name or device.name or device.address, device.address, adv.rssi,
        adv.manufacturer_data, adv.service_data, adv.service_uuids, source,
        device, adv, True, time.monotonic(), adv.tx_power)
