"""Lines <-> states: the pure part of the serial driver.

A line either feeds entities (each entity's pattern is searched in it) or answers a command; both
are decided by these functions, which know nothing of ports, so every mapping is unit-tested.
"""

from __future__ import annotations

import re
from typing import Any

from hub_serial.config import PLACEHOLDER, EntityConfig

_ON = {"on", "1", "true", "yes", "open", "high"}
_OFF = {"off", "0", "false", "no", "closed", "low"}


def convert(entity: EntityConfig, text: str) -> tuple[Any, dict[str, Any]]:
    """(state, attributes) of the entity for the text of its ``value`` group."""
    if text in entity.value_map:
        mapped = entity.value_map[text]
        if entity.capability in ("switch", "binary_sensor"):
            return str(mapped), {}
        text = str(mapped)
    cap = entity.capability
    if cap == "select":
        if text not in (entity.options or []):
            raise ValueError(f"{entity.key}: {text!r} is not one of the options (add it to value_map)")
        return text, {}
    if cap in ("switch", "binary_sensor"):
        low = text.strip().lower()
        if low in _ON:
            return "on", {}
        if low in _OFF:
            return "off", {}
        raise ValueError(f"{entity.key}: {text!r} is neither on nor off (add it to value_map)")
    number = float(text)
    value: float | int = number * entity.scale + entity.offset
    if float(value).is_integer() and "." not in text and entity.scale == int(entity.scale):
        value = int(value)
    if cap == "climate":
        return entity.hvac_mode, {"target_temperature": value, "min_temp": entity.min_temp,
                                  "max_temp": entity.max_temp}
    return value, {}


def match(entity: EntityConfig, compiled: re.Pattern, line: str) -> tuple[Any, dict[str, Any]] | None:
    """The entity's new state from ``line``, or None when the line is not about it."""
    m = compiled.search(line)
    if m is None:
        return None
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    if entity.capability == "button":
        return None, groups  # a press: the port layer stamps the time
    value, attributes = convert(entity, groups.pop("value"))
    for name, text in groups.items():
        attributes[name] = _number_or_text(text)
    return value, attributes


def _number_or_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def render(template: str, args: dict[str, Any]) -> str:
    """Fill ``{name}`` placeholders. Only plain names, never ``str.format``: a template must not be
    able to reach attributes of the arguments (``{x.__class__}``)."""

    def value(m: re.Match) -> str:
        v = args.get(m.group(1))
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return "" if v is None else str(v)

    return PLACEHOLDER.sub(value, template)
