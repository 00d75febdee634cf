"""Home Assistant's service names and data, translated to the hub's capability commands.

A user moving from Home Assistant writes ``action: light.turn_on`` with ``brightness_pct: 40``; the
hub's light takes ``turn_on`` with ``brightness`` 0-255. This module is a table from HA's service to
the hub's command per capability, plus the few data conversions HA users rely on (percentages,
mireds, hue/saturation and CIE xy colours). The commands it makes are then validated by the hub's
command gate exactly as a ``call:`` is, so a bad value is refused at load with its line.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.devices.capabilities import CAPABILITIES

Commands = list[tuple[str, dict]]
#: (command, HA data) -> the hub commands to send, in order.
Translate = Callable[[str, dict], Commands]


class ServiceDataError(ValueError):
    """Data the service does not take, or a value it cannot convert; ``field`` names the key."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _keys(data: dict, allowed: tuple[str, ...], service: str) -> None:
    for key in data:
        if key not in allowed:
            takes = ", ".join(allowed) or "no data"
            raise ServiceDataError(key, f"{service} has no data {key!r}; it takes {takes}")


def plain(*allowed: str) -> Translate:
    """Data passed through as the command's arguments, under the same names."""

    def translate(command: str, data: dict) -> Commands:
        _keys(data, allowed, command)
        return [(command, dict(data))]

    translate.keys = allowed  # type: ignore[attr-defined]
    return translate


def _number(data: dict, key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ServiceDataError(key, f"{key} must be a number, got {value!r}") from None
    return float(value)


def _pair(data: dict, key: str) -> tuple[float, float]:
    value = data[key]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ServiceDataError(key, f"{key} must be a list of two numbers, got {value!r}")
    try:
        return float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise ServiceDataError(key, f"{key} must be a list of two numbers, got {value!r}") from None


def _xy_to_rgb(x: float, y: float) -> tuple[int, int, int]:
    """CIE 1931 xy at full brightness to sRGB, as Home Assistant's ``color_xy_to_RGB`` does."""
    if y == 0:
        raise ServiceDataError("xy_color", "xy_color's y must not be 0")
    z = 1.0 - x - y
    Y = 1.0
    X, Z = (Y / y) * x, (Y / y) * z
    r = X * 1.656492 - Y * 0.354851 - Z * 0.255038
    g = -X * 0.707196 + Y * 1.655397 + Z * 0.036152
    b = X * 0.051713 - Y * 0.121364 + Z * 1.011530
    rgb = [12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055 for c in (r, g, b)]
    rgb = [max(0.0, c) for c in rgb]
    top = max(rgb) or 1.0
    rgb = [c / top if top > 1 else c for c in rgb]
    return tuple(round(c * 255) for c in rgb)  # type: ignore[return-value]


LIGHT_ON_KEYS = ("brightness", "brightness_pct", "kelvin", "color_temp_kelvin", "color_temp", "rgb_color",
                 "hs_color", "xy_color", "transition")


def light_on(command: str, data: dict) -> Commands:
    """HA's light data to the hub's ``brightness`` (0-255), ``color_temp_kelvin`` and ``rgb_color``."""
    _keys(data, LIGHT_ON_KEYS, "light.turn_on")
    args: dict[str, Any] = {}
    for key in ("brightness", "rgb_color", "transition", "color_temp_kelvin"):
        if key in data:
            args[key] = data[key]
    if "brightness_pct" in data:
        pct = _number(data, "brightness_pct")
        if not 0 <= pct <= 100:
            raise ServiceDataError("brightness_pct", f"brightness_pct must be 0-100, got {data['brightness_pct']!r}")
        args["brightness"] = round(pct * 255 / 100)
    if "kelvin" in data:
        args["color_temp_kelvin"] = round(_number(data, "kelvin"))
    if "color_temp" in data:
        mireds = _number(data, "color_temp")
        if mireds <= 0:
            raise ServiceDataError("color_temp", f"color_temp is in mireds and must be above 0, got {mireds:g}")
        args["color_temp_kelvin"] = round(1_000_000 / mireds)
    if "hs_color" in data:
        hue, sat = _pair(data, "hs_color")
        if not (0 <= hue <= 360 and 0 <= sat <= 100):
            raise ServiceDataError("hs_color", "hs_color is [hue 0-360, saturation 0-100]")
        args["rgb_color"] = [round(c * 255) for c in colorsys.hsv_to_rgb(hue / 360, sat / 100, 1.0)]
    if "xy_color" in data:
        args["rgb_color"] = list(_xy_to_rgb(*_pair(data, "xy_color")))
    return [(command, args)]


light_on.keys = LIGHT_ON_KEYS  # type: ignore[attr-defined]


def light_off(command: str, data: dict) -> Commands:
    """``transition`` is accepted and dropped: the hub's lights switch off at once."""
    _keys(data, ("transition",), f"light.{command}")
    return [(command, {})]


light_off.keys = ("transition",)  # type: ignore[attr-defined]


def set_temperature(command: str, data: dict) -> Commands:
    """HA sets the mode first when ``hvac_mode`` comes with the temperature; so does the hub."""
    _keys(data, ("temperature", "hvac_mode"), "climate.set_temperature")
    if "temperature" not in data:
        raise ServiceDataError("temperature", "climate.set_temperature needs temperature (the hub's thermostats "
                                              "have one set-point: target_temp_high/low are not supported)")
    out: Commands = []
    if "hvac_mode" in data:
        out.append(("set_hvac_mode", {"hvac_mode": data["hvac_mode"]}))
    out.append(("set_temperature", {"temperature": data["temperature"]}))
    return out


set_temperature.keys = ("temperature", "hvac_mode")  # type: ignore[attr-defined]

NONE = plain()


@dataclass(frozen=True)
class Service:
    """``commands``: the hub command for each capability the service applies to; None means any
    capability that has ``any_command``."""

    commands: dict[str, str] | None
    translate: Translate = NONE
    any_command: str | None = None

    def command_for(self, capability: str) -> str | None:
        """The hub command this service sends to an entity of ``capability``; None: it does not apply."""
        if self.commands is not None:
            return self.commands.get(capability)
        if capability == "cover":  # as in HA: homeassistant.turn_on opens a cover
            return {"turn_on": "open", "turn_off": "close"}.get(self.any_command or "")
        cap = CAPABILITIES.get(capability)
        return self.any_command if cap is not None and self.any_command in cap.commands else None

    @property
    def keys(self) -> tuple[str, ...]:
        return getattr(self.translate, "keys", ())


def _each(domain: str, names: dict[str, str], translate: Translate = NONE, cap: str | None = None) -> dict[str, Service]:
    return {f"{domain}.{ha}": Service({cap or domain: hub}, translate) for ha, hub in names.items()}


SERVICES: dict[str, Service] = {
    "light.turn_on": Service({"light": "turn_on"}, light_on),
    "light.turn_off": Service({"light": "turn_off"}, light_off),
    "light.toggle": Service({"light": "toggle"}, light_off),
    **_each("switch", {"turn_on": "turn_on", "turn_off": "turn_off", "toggle": "toggle"}),
    "climate.set_temperature": Service({"climate": "set_temperature"}, set_temperature),
    "climate.set_hvac_mode": Service({"climate": "set_hvac_mode"}, plain("hvac_mode")),
    **_each("climate", {"turn_on": "turn_on", "turn_off": "turn_off"}),
    **_each("lock", {"lock": "lock", "unlock": "unlock", "open": "open"}, plain("code")),
    **_each("cover", {"open_cover": "open", "close_cover": "close", "stop_cover": "stop"}),
    "cover.set_cover_position": Service({"cover": "set_position"}, plain("position")),
    "number.set_value": Service({"number": "set_value"}, plain("value")),
    "select.select_option": Service({"select": "select_option"}, plain("option")),
    **_each("select", {"select_first": "select_first", "select_last": "select_last"}),
    **_each("select", {"select_next": "select_next", "select_previous": "select_previous"}, plain("cycle")),
    "button.press": Service({"button": "press"}),
    **{f"homeassistant.{c}": Service(None, NONE, any_command=c) for c in ("turn_on", "turn_off", "toggle")},
}

#: Domains a user may name that the hub cannot serve yet, with the sentence saying why.
REFUSED: dict[str, str] = {
    "input_boolean": "the hub has no helpers (input_boolean, input_number ...) yet; use a switch entity or "
                     "an event",
    "input_number": "the hub has no helpers (input_boolean, input_number ...) yet",
    "input_select": "the hub has no helpers (input_boolean, input_number ...) yet",
    "automation": "turning rules on and off from a rule is not supported yet; use 'hub rules enable/disable'",
}

NOTIFY_KEYS = ("message", "title", "data", "target")
#: ``persistent_notification.create``: HA's notification in its own UI; on the hub, a notification.
PERSISTENT_KEYS = ("message", "title", "notification_id")


def lookup(name: str) -> Service | str:
    """The service, or the sentence saying why it is refused."""
    if name in SERVICES:
        return SERVICES[name]
    domain = name.split(".", 1)[0]
    if domain in REFUSED:
        return f"{name}: {REFUSED[domain]}"
    services = sorted(s for s in SERVICES if s.startswith(domain + "."))
    if services:
        return f"unknown service {name!r}; {domain} has {', '.join(services)}"
    return (f"unknown service {name!r}; the hub knows {', '.join(sorted({s.split('.')[0] for s in SERVICES}))} "
            f"and notify.*, persistent_notification.create")
