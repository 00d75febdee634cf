"""How each of the hub's capabilities looks to Home Assistant: its MQTT discovery config, and the
commands Home Assistant sends back turned into the hub's own.

Pure functions of an entity (no broker, no bus), so every component's mapping is testable alone.
The state topic carries the hub's own ``State.as_dict()`` JSON; every config reads it with
templates rather than asking for a second, Home-Assistant-shaped topic. That is why the light uses
Home Assistant's *template* schema (the JSON schema reads only its own payload shape), with command
templates that render Home Assistant's JSON light command, which :func:`translate` reads.

Templates stay within a small vocabulary (``value_json`` attribute and ``.get`` lookups, ``if``
expressions, ``is defined``, ``tojson``) so the tests can render them without Jinja.
"""

from __future__ import annotations

import colorsys
import json
from typing import Any

#: ``on``/``off``; ``None`` (before the first reading) is Home Assistant's "unknown" for every component
#: that reads it here.
VALUE = "{{ value_json.value }}"
AVAILABLE = "{{ 'online' if value_json.available else 'offline' }}"
ATTRIBUTES = "{{ value_json.attributes | tojson }}"

HUB_MANUFACTURER = "Ruff"
ORIGIN_NAME = "Ruff Hub"

# Home Assistant's names where the hub's differ; None: Home Assistant has no such class.
_SENSOR_CLASS = {"co2": "carbon_dioxide", "count": None}
_COVER_CLASSES = {"blind", "shutter", "curtain", "garage", "gate", "door", "window", "awning", "damper", "shade"}
_TOTALS = {"energy", "gas", "water"}


def attr(name: str, missing: str = "''") -> str:
    """An attribute of the state, or ``missing`` when the state lacks it (an off light's brightness):
    ``.get`` rather than ``.name``, since Home Assistant logs a warning for every undefined lookup."""
    return (f"{{{{ value_json.attributes.get('{name}') if value_json.attributes.get('{name}') is not none "
            f"else {missing} }}}}")


def _rgb(i: int) -> str:
    return (f"{{{{ value_json.attributes.get('rgb_color')[{i}] if value_json.attributes.get('rgb_color') "
            f"else 'None' }}}}")


LIGHT_ON = (
    '{"state": "ON"'
    '{% if brightness is defined %}, "brightness": {{ brightness }}{% endif %}'
    '{% if red is defined and green is defined and blue is defined %}'
    ', "color": {"r": {{ red }}, "g": {{ green }}, "b": {{ blue }}}{% endif %}'
    '{% if color_temp is defined %}, "color_temp": {{ color_temp }}{% endif %}'
    '{% if transition is defined %}, "transition": {{ transition }}{% endif %}}'
)
LIGHT_OFF = '{"state": "OFF"{% if transition is defined %}, "transition": {{ transition }}{% endif %}}'
#: ``code`` is None when the user gave none; ``tojson`` keeps a code with quotes in it valid JSON.
LOCK_COMMAND = '{"action": "{{ value }}"{% if code %}, "code": {{ code | tojson }}{% endif %}}'

LOCK_STATES = ("locked", "unlocked", "locking", "unlocking", "jammed", "open")


def object_id(entity_id: str) -> str:
    return entity_id.replace(".", "_")


def hub_identifier(node_id: str) -> str:
    return f"ruffhub_{node_id}"


def device_identifier(node_id: str, device_id: str) -> str:
    return f"ruffhub_{node_id}_{device_id}"


def component_for(capability: str, commandable: bool) -> str | None:
    """The Home Assistant component an entity appears as. One that may not be commanded from the
    broker appears as what Home Assistant shows read-only: a switch or a light as a binary sensor
    (on/off with no toggle that would do nothing), a number as a sensor, a lock, cover, climate or
    select as a text sensor of its state. A button that cannot be pressed has nothing to show."""
    if capability == "meter":
        return "sensor"
    if capability in ("sensor", "binary_sensor"):
        return capability
    if commandable:
        return capability if capability in ("switch", "light", "button", "lock", "cover", "climate", "number",
                                             "select") else None
    return {"switch": "binary_sensor", "light": "binary_sensor", "number": "sensor", "lock": "sensor",
            "cover": "sensor", "climate": "sensor", "select": "sensor"}.get(capability)


def hub_status_config(node_id: str, prefix: str, origin: dict) -> dict[str, Any]:
    """The hub itself as a device with one connectivity sensor: every other device names it as
    ``via_device``, and Home Assistant shows whether the hub is on the broker."""
    return {
        "name": "Broker connection",
        "unique_id": f"{hub_identifier(node_id)}_status",
        "object_id": f"ruffhub_{node_id}_status",
        "default_entity_id": f"binary_sensor.ruffhub_{node_id}_status",
        "device_class": "connectivity",
        "entity_category": "diagnostic",
        "state_topic": f"{prefix}/status",
        "payload_on": "online",
        "payload_off": "offline",
        "device": {"identifiers": [hub_identifier(node_id)], "name": f"Ruff Hub {node_id}",
                   "manufacturer": HUB_MANUFACTURER, "model": "Ruff Hub", "sw_version": origin.get("sw")},
        "o": origin,
    }


def _entity_name(entry: Any, device: Any) -> str | None:
    """Home Assistant names an entity "<device> <entity>": the device's name is taken off the front
    (Home Assistant would do it too, with a warning in its log), and an entity named as its device
    is the device's main feature, whose name is null."""
    name, dev = entry.name, getattr(device, "name", None)
    if not dev or not name:
        return name
    if name == dev:
        return None
    if name.startswith(dev + " "):
        rest = name[len(dev) + 1:].strip()
        return rest[:1].upper() + rest[1:] if rest else None
    return name


def _options(entry: Any, state: Any) -> dict[str, Any]:
    """The entity's options, completed by its state's attributes (a thermostat reports its range)."""
    merged = dict(state.attributes) if state is not None else {}
    merged.update(entry.options or {})
    return merged


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def discovery_config(entry: Any, device: Any, state: Any, *, node_id: str, prefix: str, origin: dict,
                     commandable: bool) -> tuple[str, dict[str, Any]] | None:
    """``(component, config)`` of one entity, or None when Home Assistant has nothing to show for it."""
    component = component_for(entry.capability, commandable)
    if component is None:
        return None
    oid = object_id(entry.entity_id)
    slug = entry.entity_id.split(".", 1)[-1]
    state_topic = f"{prefix}/state/{entry.entity_id}"
    command_topic = f"{prefix}/set/{entry.entity_id}"
    config: dict[str, Any] = {
        "name": _entity_name(entry, device),
        "unique_id": f"{hub_identifier(node_id)}_{oid}",
        # Both: object_id for Home Assistant before 2025.10, default_entity_id after it.
        "object_id": slug,
        "default_entity_id": f"{component}.{slug}",
        "device": {
            "identifiers": [device_identifier(node_id, entry.device_id)],
            "name": getattr(device, "name", None) or entry.device_id,
            "via_device": hub_identifier(node_id),
        },
        "availability": [
            {"topic": f"{prefix}/status"},
            {"topic": state_topic, "value_template": AVAILABLE},
        ],
        "availability_mode": "all",
        "json_attributes_topic": state_topic,
        "json_attributes_template": ATTRIBUTES,
        "o": origin,
    }
    for key in ("manufacturer", "model", "sw_version"):
        value = getattr(device, key, None)
        if value:
            config["device"][key] = value
    if component != "button":
        config["state_topic"] = state_topic
    opts = _options(entry, state)
    builder = _BUILDERS[(entry.capability, component)]
    builder(config, entry, opts, state_topic, command_topic)
    return component, config


# --- one builder per (capability, component) -------------------------------------------------------

def _unit(config: dict, entry: Any, capability_default: dict[str, str] | None = None) -> None:
    unit = entry.unit
    if unit is None and capability_default is not None and entry.device_class is not None:
        unit = capability_default.get(entry.device_class)
    if unit:
        config["unit_of_measurement"] = unit


def _sensor_class(device_class: str | None) -> str | None:
    if device_class is None:
        return None
    return _SENSOR_CLASS.get(device_class, device_class)


def _sensor(config, entry, opts, state_topic, command_topic) -> None:
    from hub.devices.capabilities import SENSOR_UNITS

    config["value_template"] = VALUE
    cls = _sensor_class(entry.device_class)
    if cls == "timestamp":
        # The hub's timestamps are unix seconds; Home Assistant wants an ISO date with its zone.
        config["value_template"] = ("{{ value_json.value | timestamp_custom('%Y-%m-%dT%H:%M:%S+00:00', false) "
                                    "if value_json.value is number else 'None' }}")
        config["device_class"] = cls
        return
    if cls is not None:
        config["device_class"] = cls
    _unit(config, entry, SENSOR_UNITS)
    # Energy, gas and water readings are totals in Home Assistant (it refuses "measurement" for them).
    config["state_class"] = "total" if cls in _TOTALS else "measurement"


def _meter(config, entry, opts, state_topic, command_topic) -> None:
    from hub.devices.capabilities import METER_UNITS

    config["value_template"] = VALUE
    cls = _sensor_class(entry.device_class)
    if cls is not None:
        config["device_class"] = cls
    _unit(config, entry, METER_UNITS)
    config["state_class"] = "total_increasing"


def _on_off_read(config, entry, opts, state_topic, command_topic) -> None:
    config["value_template"] = VALUE
    config["payload_on"] = "on"
    config["payload_off"] = "off"
    if entry.capability == "binary_sensor" and entry.device_class:
        config["device_class"] = entry.device_class


def _switch(config, entry, opts, state_topic, command_topic) -> None:
    config.update(value_template=VALUE, command_topic=command_topic, payload_on="ON", payload_off="OFF",
                  state_on="on", state_off="off")
    if entry.device_class in ("outlet", "switch"):
        config["device_class"] = entry.device_class


def _light(config, entry, opts, state_topic, command_topic) -> None:
    config.update(
        schema="template",
        command_topic=command_topic,
        command_on_template=LIGHT_ON,
        command_off_template=LIGHT_OFF,
        state_template=VALUE,
        brightness_template=attr("brightness", "0"),
        red_template=_rgb(0),
        green_template=_rgb(1),
        blue_template=_rgb(2),
    )
    modes = opts.get("supported_color_modes")
    if isinstance(modes, (list, tuple)) and "color_temp" in modes:
        config["color_temp_template"] = (
            "{{ (1000000 // value_json.attributes.get('color_temp_kelvin')) "
            "if value_json.attributes.get('color_temp_kelvin') else 'None' }}")
        low, high = opts.get("min_color_temp_kelvin"), opts.get("max_color_temp_kelvin")
        if _number(low) and _number(high) and 0 < low < high:
            config["min_mireds"], config["max_mireds"] = int(1_000_000 // high), int(1_000_000 // low)


def _button(config, entry, opts, state_topic, command_topic) -> None:
    config.update(command_topic=command_topic, payload_press="PRESS")


def _lock(config, entry, opts, state_topic, command_topic) -> None:
    config.update(value_template=VALUE, command_topic=command_topic, command_template=LOCK_COMMAND,
                  payload_lock="LOCK", payload_unlock="UNLOCK", payload_open="OPEN",
                  **{f"state_{s}": s for s in LOCK_STATES})
    if opts.get("code_required") or opts.get("code_format"):
        fmt = opts.get("code_format")
        config["code_format"] = fmt if isinstance(fmt, str) else r"^.{1,32}$"


def _cover(config, entry, opts, state_topic, command_topic) -> None:
    config.update(value_template=VALUE, command_topic=command_topic,
                  payload_open="OPEN", payload_close="CLOSE", payload_stop="STOP",
                  state_open="open", state_closed="closed", state_opening="opening", state_closing="closing",
                  state_stopped="stopped",
                  position_topic=state_topic, position_template=attr("position"),
                  set_position_topic=f"{command_topic}/position", position_open=100, position_closed=0)
    if entry.device_class in _COVER_CLASSES:
        config["device_class"] = entry.device_class


def _climate(config, entry, opts, state_topic, command_topic) -> None:
    from hub.devices.capabilities import CAPABILITIES

    del config["state_topic"]  # climate reads each of its parts from its own topic option
    modes = opts.get("hvac_modes")
    if not (isinstance(modes, (list, tuple)) and modes and all(isinstance(m, str) for m in modes)):
        modes = list(CAPABILITIES["climate"].states)
    config.update(
        modes=list(modes),
        mode_state_topic=state_topic, mode_state_template=VALUE,
        mode_command_topic=f"{command_topic}/mode",
        temperature_state_topic=state_topic, temperature_state_template=attr("target_temperature"),
        temperature_command_topic=f"{command_topic}/temperature",
        current_temperature_topic=state_topic, current_temperature_template=attr("current_temperature"),
        action_topic=state_topic, action_template=attr("hvac_action"),
        power_command_topic=f"{command_topic}/power", payload_on="ON", payload_off="OFF",
        precision=0.1,
    )
    step = opts.get("target_temp_step", opts.get("temp_step"))
    config["temp_step"] = step if _number(step) and step > 0 else 0.5
    for key in ("min_temp", "max_temp"):
        if _number(opts.get(key)):
            config[key] = opts[key]
    unit = entry.unit or opts.get("unit")
    if unit in ("°C", "°F"):
        config["temperature_unit"] = unit[-1]


def _number_entity(config, entry, opts, state_topic, command_topic) -> None:
    from hub.devices.capabilities import NUMBER_UNITS

    config.update(value_template=VALUE, command_topic=command_topic)
    for key in ("min", "max", "step"):
        if _number(opts.get(key)):
            config[key] = opts[key]
    config.setdefault("min", 0)
    config.setdefault("max", 100)
    config.setdefault("step", 1)
    if opts.get("mode") in ("auto", "box", "slider"):
        config["mode"] = opts["mode"]
    cls = _sensor_class(entry.device_class)
    if cls is not None:
        config["device_class"] = cls
    _unit(config, entry, NUMBER_UNITS)


def _number_read(config, entry, opts, state_topic, command_topic) -> None:
    from hub.devices.capabilities import NUMBER_UNITS

    config["value_template"] = VALUE
    cls = _sensor_class(entry.device_class)
    if cls is not None:
        config["device_class"] = cls
    _unit(config, entry, NUMBER_UNITS)
    config["state_class"] = "measurement"


def _select(config, entry, opts, state_topic, command_topic) -> None:
    config.update(value_template=VALUE, command_topic=command_topic, options=list(opts.get("options") or []))


def _text_read(config, entry, opts, state_topic, command_topic) -> None:
    config["value_template"] = VALUE


_BUILDERS = {
    ("sensor", "sensor"): _sensor,
    ("meter", "sensor"): _meter,
    ("binary_sensor", "binary_sensor"): _on_off_read,
    ("switch", "switch"): _switch,
    ("switch", "binary_sensor"): _on_off_read,
    ("light", "light"): _light,
    ("light", "binary_sensor"): _on_off_read,
    ("button", "button"): _button,
    ("lock", "lock"): _lock,
    ("lock", "sensor"): _text_read,
    ("cover", "cover"): _cover,
    ("cover", "sensor"): _text_read,
    ("climate", "climate"): _climate,
    ("climate", "sensor"): _text_read,
    ("number", "number"): _number_entity,
    ("number", "sensor"): _number_read,
    ("select", "select"): _select,
    ("select", "sensor"): _text_read,
}


# --- Home Assistant's commands as the hub's ------------------------------------------------------

_ON_OFF = {"ON": "turn_on", "OFF": "turn_off", "TOGGLE": "toggle"}


def _text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def _json_object(text: str) -> dict | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _number_or_text(text: str) -> Any:
    """A number as a number; anything else as it came, for the command gate to refuse by name."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _kelvin(value: Any) -> Any:
    """Home Assistant sends ``color_temp`` in mireds (153-500), or in kelvin when a light's config
    says ``color_temp_kelvin``; no light is below 1000 K or above 1000 mireds, so the size tells."""
    if not _number(value) or value <= 0:
        return value
    return int(round(1_000_000 / value)) if value < 1000 else int(round(value))


def _xy_to_rgb(x: float, y: float) -> list[int]:
    """CIE 1931 xy at full brightness to sRGB (the formula Home Assistant's color util uses)."""
    y = max(y, 1e-6)
    z = 1.0 - x - y
    big_y = 1.0
    big_x, big_z = (big_y / y) * x, (big_y / y) * z
    r = big_x * 1.656492 - big_y * 0.354851 - big_z * 0.255038
    g = -big_x * 0.707196 + big_y * 1.655397 + big_z * 0.036152
    b = big_x * 0.051713 - big_y * 0.121364 + big_z * 1.011530
    rgb = [12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055 for c in (r, g, b)]
    top = max(max(rgb), 1e-6)
    return [max(0, min(255, int(round(c / top * 255)))) for c in rgb]


def _color(value: Any) -> Any:
    """A JSON light command's ``color`` (rgb, xy or hs) as the hub's ``rgb_color``."""
    if not isinstance(value, dict):
        return value
    if all(k in value for k in "rgb"):
        return [value["r"], value["g"], value["b"]]
    if "x" in value and "y" in value and _number(value["x"]) and _number(value["y"]):
        return _xy_to_rgb(float(value["x"]), float(value["y"]))
    if "h" in value and "s" in value and _number(value["h"]) and _number(value["s"]):
        r, g, b = colorsys.hsv_to_rgb((value["h"] % 360) / 360, min(max(value["s"], 0), 100) / 100, 1.0)
        return [int(round(c * 255)) for c in (r, g, b)]
    return value


def _light_json(command: dict) -> tuple[str, dict] | None:
    state = command.get("state")
    if not isinstance(state, str) or state.upper() not in _ON_OFF:
        return None
    name = _ON_OFF[state.upper()]
    if name != "turn_on":
        return name, {}  # the hub's turn_off and toggle take nothing, a transition neither
    args: dict[str, Any] = {}
    if "brightness" in command:
        args["brightness"] = command["brightness"]  # 0-255 on both sides
    if "color" in command:
        args["rgb_color"] = _color(command["color"])
    temp = command.get("color_temp_kelvin", command.get("color_temp"))
    if temp is not None:
        args["color_temp_kelvin"] = _kelvin(temp)
    if "transition" in command:
        args["transition"] = command["transition"]
    return name, args


def _cmd_light(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    if field == "brightness":
        return "turn_on", {"brightness": _number_or_text(text)}
    if field == "rgb":
        parts = [p.strip() for p in text.split(",")]
        return "turn_on", {"rgb_color": [_number_or_text(p) for p in parts]}
    if field in ("color_temp", "color_temp_kelvin"):
        return "turn_on", {"color_temp_kelvin": _kelvin(_number_or_text(text))}
    if field is not None:
        return None
    command = _json_object(text)
    if command is not None:
        return _light_json(command)
    name = _ON_OFF.get(text.upper())
    return (name, {}) if name else None


def _cmd_lock(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    command = _json_object(text)
    code = None
    if command is not None:
        action, code = command.get("action"), command.get("code")
        if not isinstance(action, str):
            return None
        text = action
    name = {"LOCK": "lock", "UNLOCK": "unlock", "OPEN": "open"}.get(text.upper())
    if name is None:
        return None
    return name, ({} if code is None else {"code": code})


def _cmd_cover(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    if field == "position":
        return "set_position", {"position": _number_or_text(text)}
    command = _json_object(text)
    if command is not None and "position" in command:
        return "set_position", {"position": command["position"]}
    name = {"OPEN": "open", "CLOSE": "close", "STOP": "stop"}.get(text.upper())
    return (name, {}) if name else None


def _cmd_climate(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    if field == "mode":
        return "set_hvac_mode", {"hvac_mode": text}
    if field == "temperature":
        return "set_temperature", {"temperature": _number_or_text(text)}
    if field == "power":
        name = _ON_OFF.get(text.upper())
        return (name, {}) if name in ("turn_on", "turn_off") else None
    return None


def _cmd_switch(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    name = _ON_OFF.get(text.upper()) if field is None else None
    return (name, {}) if name else None


def _number_command(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    if field is not None or not text:
        return None
    return "set_value", {"value": _number_or_text(text)}


def _select_command(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    if field is not None or not text:
        return None
    return "select_option", {"option": text}


def _button_command(entry: Any, field: str | None, text: str) -> tuple[str, dict] | None:
    return ("press", {}) if field is None and text.upper() == "PRESS" else None


_TRANSLATORS = {
    "switch": _cmd_switch,
    "light": _cmd_light,
    "lock": _cmd_lock,
    "cover": _cmd_cover,
    "climate": _cmd_climate,
    "number": _number_command,
    "select": _select_command,
    "button": _button_command,
}


def translate(entry: Any, state: Any, field: str | None, payload: bytes) -> tuple[str, dict] | None:
    """A Home Assistant command payload as the hub's ``(command, args)``, or None when it is none
    (the intake then answers ``bad_payload``). Only mapped, never checked: the command gate checks
    the arguments as it does every other caller's, and names a wrong one."""
    translator = _TRANSLATORS.get(entry.capability)
    text = _text(payload)
    if translator is None or text is None:
        return None
    return translator(entry, field, text)
