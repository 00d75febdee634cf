"""Register values <-> hub states: the zigpy "cluster" layer, free of I/O.

Everything here is a pure function of an :class:`EntityConfig`, so the mapping from a word on the wire
to what a user sees (and back, for commands) is tested without a device.
"""

from __future__ import annotations

from typing import Any

from hub.devices.model import EntitySpec

from hub_modbus import codec
from hub_modbus.entity_config import EntityConfig
from hub_modbus.plan import ReadItem


def spec(entity: EntityConfig, device_name: str) -> EntitySpec:
    options: dict[str, Any] = {}
    if entity.capability == "climate":
        options = {"min_temp": entity.min_temp, "max_temp": entity.max_temp}
    return EntitySpec(
        key=entity.key,
        capability=entity.capability,
        name=f"{device_name} {entity.name or entity.key.replace('_', ' ')}",
        device_class=entity.device_class,
        unit=entity.unit,
        options=options,
    )


def read_item(entity: EntityConfig) -> ReadItem:
    return ReadItem(entity.key, entity.register_type, entity.address, codec.width(entity.data_type, entity.count))


def raw_value(entity: EntityConfig, words: list[int] | list[bool]) -> Any:
    """The decoded value of the entity's own slice of a block."""
    if entity.register_type in ("coil", "discrete_input"):
        return bool(words[0])
    return codec.decode(list(words), entity.data_type, byte_order=entity.byte_order,
                        word_order=entity.word_order, bit=entity.bit)


def state(entity: EntityConfig, raw: Any) -> tuple[Any, dict[str, Any]]:
    """(state value, attributes) for a raw value."""
    cap = entity.capability
    if cap in ("switch", "binary_sensor"):
        if isinstance(raw, bool):
            on = raw
        else:
            on = raw == entity.on_value
        return ("on" if on else "off"), {}
    if isinstance(raw, str):
        raise ValueError(f"{entity.key}: a {cap} cannot show text {raw!r}")
    value = codec.scaled(raw, entity.scale, entity.offset, entity.precision)
    if cap == "climate":
        return entity.hvac_mode, {"target_temperature": value, "min_temp": entity.min_temp,
                                  "max_temp": entity.max_temp, "hvac_action": None}
    return value, {}


def switch_words(entity: EntityConfig, on: bool) -> bool | list[int]:
    """What to write to turn a switch on or off: a coil value, or register words."""
    if entity.register_type == "coil":
        return on
    return codec.encode(entity.on_value if on else entity.off_value, entity.data_type,
                        byte_order=entity.byte_order, word_order=entity.word_order)


def setpoint_words(entity: EntityConfig, temperature: float) -> list[int]:
    raw = codec.unscaled(temperature, entity.scale, entity.offset)
    return codec.encode(raw, entity.data_type, byte_order=entity.byte_order, word_order=entity.word_order)
