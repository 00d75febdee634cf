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


class NotAnOption(ValueError):
    """A select's register holds a value its map does not name. The device answers, and choosing an
    option must still be possible to set it right, so the state is unknown (None), not unavailable."""


def spec(entity: EntityConfig, device_name: str) -> EntitySpec:
    options: dict[str, Any] = {}
    if entity.capability == "climate":
        options = {"min_temp": entity.min_temp, "max_temp": entity.max_temp}
    elif entity.capability == "number":
        options = entity.number_options
    elif entity.capability == "select":
        options = {"options": list(entity.option_values)}
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
    if cap == "select":
        for option, word in entity.option_values.items():
            if raw == word:
                return option, {}
        raise NotAnOption(f"{entity.key}: register value {raw} is not one of the options "
                         f"({', '.join(f'{o}={v}' for o, v in entity.option_values.items())})")
    precision = entity.precision
    if cap == "number" and precision is None:
        precision = _decimals(entity.step or 1)  # 21.5, not 21.500000000000004, from 215 tenths
    value = codec.scaled(raw, entity.scale, entity.offset, precision)
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
    """Words for a climate set-point or a number's value, in engineering units."""
    raw = codec.unscaled(temperature, entity.scale, entity.offset)
    return codec.encode(raw, entity.data_type, byte_order=entity.byte_order, word_order=entity.word_order)


def option_words(entity: EntityConfig, option: str) -> list[int]:
    return codec.encode(entity.option_values[option], entity.data_type,
                        byte_order=entity.byte_order, word_order=entity.word_order)


def _decimals(step: float) -> int:
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0
