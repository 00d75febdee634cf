"""Reading one Home Assistant discovery message: which entities it announces (or removes).

Topics are ``<prefix>/<component>/[<node_id>/]<object_id>/config``, and ``<prefix>/device/<id>/config``
for a device announced whole (its entities under ``cmps``, the options outside it shared by all).
Everything here only reads; what is wrong raises :class:`Skip` with the reason for the log line.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from hub_mqtt.config import COMPONENTS
from hub_mqtt.ha_in.abbrev import ABBREVIATIONS, expand
from hub_mqtt.ha_in.templates import parse_json
from hub_mqtt.ha_schema import MODELS, Entity

#: The origin this hub writes on its own discovery configs: hubs on the broker see each other
#: through ``peers``, not as Home Assistant devices.
OWN_ORIGIN = "Ruff Hub"
#: Options of a device-based config that are shared by its components (HA's device discovery).
_SHARED = ("device", "origin", "availability", "availability_topic", "availability_mode", "payload_available",
           "payload_not_available", "availability_template", "state_topic", "command_topic", "qos", "encoding")


class Skip(ValueError):
    """This config is not adopted; the message says why."""


@dataclass
class Announced:
    source: str  # the discovery topic, plus "#<component id>" for a device-based config's entities
    component: str
    config: Entity


def _errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}" if where else
                     error["msg"].removeprefix("Value error, "))
    return "; ".join(parts)


def _validate(component: str, data: dict) -> Entity:
    if component not in COMPONENTS:
        raise Skip(f"component {component!r} is not one this hub adopts ({', '.join(COMPONENTS)})")
    try:
        return MODELS[component].model_validate(data, context={"lenient": True})
    except ValidationError as exc:
        raise Skip(_errors(exc)) from None


def read(prefix: str, topic: str, payload: bytes) -> tuple[list[Announced], list[tuple[str, str]]] | None:
    """The entities a config announces, and those of its components skipped (source, reason); None
    when it removes what the topic announced before. Skip when the whole config is unusable."""
    parts = topic[len(prefix) + 1:].split("/")
    component = parts[0]
    if not payload:
        return None
    try:
        data = parse_json(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Skip(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Skip("not a JSON object")
    base = data.get("~")
    data = expand(data)
    origin = data.get("origin")
    if isinstance(origin, dict) and origin.get("name") == OWN_ORIGIN:
        return [], []
    if component != "device":
        return [Announced(topic, component, _validate(component, data))], []
    components = data.get("components")
    if not isinstance(components, dict) or not components:
        raise Skip("a device config needs its components (cmps)")
    shared = {key: data[key] for key in _SHARED if key in data}
    out, skipped = [], []
    for cid, item in list(components.items())[:256]:
        if not isinstance(item, dict):
            skipped.append((f"{topic}#{cid}", "not a JSON object"))
            continue
        # Each component may abbreviate too, and may use the device's "~".
        item = {ABBREVIATIONS.get(k, k): v for k, v in item.items()}
        if base is not None and "~" not in item:
            item["~"] = base
        merged = {**shared, **expand(item)}
        kind = merged.pop("platform", None)
        if not isinstance(kind, str):
            skipped.append((f"{topic}#{cid}", "no platform (p)"))
            continue
        try:
            out.append(Announced(f"{topic}#{cid}", kind, _validate(kind, merged)))
        except Skip as exc:
            skipped.append((f"{topic}#{cid}", str(exc)))
    return out, skipped
