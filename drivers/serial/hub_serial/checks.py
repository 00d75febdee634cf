"""The checks of the ``serial:`` section that no single entry can make, or that only the running
driver would otherwise make: collisions between ports, and values that pass their field's rule but
would fail when the port is opened, a line arrives or a command is sent.

Each problem is located at its key, and all of them come in the same pass as the field errors
(see :func:`hub.config.cross_checked`), so ``hub config check`` lists every mistake at once.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError

from hub.config import Problem, duplicates, valid_fields
from hub.devices.capabilities import HvacMode
from hub.devices.model import EntitySpec, slugify

_ON_OFF = {"on", "off"}
_NUMERIC = {"sensor", "meter", "climate"}


def problems(data: Any, config) -> list[Problem]:
    from hub_serial.config import EntityConfig, PortConfig

    if not isinstance(data, dict) or not isinstance(data.get("ports"), list):
        return []
    found: list[Problem] = []
    paths, ids, entity_ids = [], [], []
    for index, raw in enumerate(data["ports"]):
        here = ("ports", index)
        fields = valid_fields(PortConfig, raw, ["name", "id", "port", "terminator", "encoding"])
        label = f"ports[{index}]" + (f" ({fields['name']})" if "name" in fields else "")
        if "port" in fields:
            paths.append((repr(fields["port"]), here + ("port",), label))
        if fields.get("id") or "name" in fields:
            # The device id the driver registers (history and entity ids hang on it).
            key = "id" if fields.get("id") else "name"
            ids.append((repr(fields.get("id") or slugify(fields["name"])), here + (key,), label))
        encoding = fields.get("encoding")
        if "terminator" in fields and encoding and _unencodable(fields["terminator"], encoding):
            found.append((here + ("terminator",), f"the terminator cannot be written in {encoding}"))
        entities = raw.get("entities") if isinstance(raw, dict) else None
        for number, entity in enumerate(entities if isinstance(entities, list) else []):
            try:
                valid = EntityConfig.model_validate(entity)
            except ValidationError:
                continue  # its own errors are reported already
            where = here + ("entities", number)
            found += [(where + key, message) for key, message in _entity_problems(valid, encoding)]
            if "name" in fields:
                try:
                    entity_ids.append((repr(_entity_id(valid, fields["name"])), where, f"{label} entity {valid.key}"))
                except ValidationError as exc:
                    for error in exc.errors():
                        message = error["msg"].removeprefix("Value error, ")
                        found.append((where + (("device_class",) if "device_class" in message else ()), message))
    found += duplicates(paths, "port")  # one port is one device
    same_device = duplicates(ids, "device id (from the name when no id is given)")
    found += same_device
    # Ports that are one device to the hub: that is the one mistake, not each of their entities.
    twice = {loc[1] for loc, _ in same_device}
    found += duplicates([item for item in entity_ids if item[1][1] not in twice], "entity id")
    return found


def _entity_problems(entity, encoding: str | None) -> list[tuple[tuple, str]]:
    found: list[tuple[tuple, str]] = []
    cap = entity.capability
    for text, value in entity.value_map.items():
        if cap in ("switch", "binary_sensor") and str(value) not in _ON_OFF:
            found.append((("value_map", text), f"a {cap} is on or off; {value!r} is neither (quote 'on' and "
                          "'off': YAML reads on, off, yes and no unquoted as true and false)"))
        if cap in _NUMERIC and not _number(value):
            found.append((("value_map", text), f"a {cap} shows a number; {value!r} is not one"))
    if cap == "climate":
        if entity.hvac_mode not in get_args(HvacMode):
            found.append((("hvac_mode",), f"{entity.hvac_mode!r} is not a mode; modes: {', '.join(get_args(HvacMode))}"))
        if entity.min_temp > entity.max_temp:
            found.append((("min_temp",), f"min_temp {entity.min_temp:g} is above max_temp {entity.max_temp:g}"))
    for name, command in entity.commands.items():
        if encoding and _unencodable(command.send, encoding):
            found.append((("commands", name, "send"), f"cannot be written in {encoding}"))
    return found


def _entity_id(entity, device_name: str) -> str:
    """The id the registry gives a new entity; building the spec also applies the hub's own rules
    (a device_class of the capability), which otherwise failed the driver when it started."""
    options = getattr(entity, "hub_options", None)  # the driver's own, where the entity model has them
    if options is None:
        options = {"min_temp": entity.min_temp, "max_temp": entity.max_temp} if entity.capability == "climate" else {}
    spec = EntitySpec(key=entity.key, capability=entity.capability, device_class=entity.device_class,
                      unit=entity.unit, name=f"{device_name} {entity.name or entity.key.replace('_', ' ')}",
                      options=options)
    return f"{spec.capability}.{slugify(spec.object_id or spec.name)}"


def _unencodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return True
    return False


def _number(value: Any) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True
