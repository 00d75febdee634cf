"""The light, in Home Assistant's two MQTT schemas: ``default`` (a topic per feature: on/off,
brightness, RGB, colour temperature) and ``json`` (one JSON object both ways, as Zigbee2MQTT sends)."""

from __future__ import annotations

import json
from typing import Any

from hub_mqtt import ha_schema as S
from hub_mqtt.ha_in.entities import _NONE, Adopted, Publish, Routes
from hub_mqtt.ha_in.templates import parse_json


def _mireds(kelvin: float) -> int:
    return round(1_000_000 / kelvin)


class Light(Adopted):
    component = capability = "light"

    def __init__(self, conf: S.LightConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        t = self._tpl
        self._state_tpl = t(conf.state_value_template or conf.value_template)
        self._cmd_tpl = t(conf.command_template)
        self._bri_tpl, self._bri_cmd = t(conf.brightness_value_template), t(conf.brightness_command_template)
        self._rgb_tpl, self._rgb_cmd = t(conf.rgb_value_template), t(conf.rgb_command_template)
        self._ct_tpl, self._ct_cmd = t(conf.color_temp_value_template), t(conf.color_temp_command_template)

    @property
    def json(self) -> bool:
        return self.conf.schema_ == "json"

    def topics(self) -> Routes:
        routes = super().topics()
        c = self.conf
        if c.state_topic:
            routes.append((c.state_topic, self._on_json if self.json else self._on_state))
        if not self.json:
            for topic, handler in ((c.brightness_state_topic, self._on_brightness), (c.rgb_state_topic, self._on_rgb),
                                   (c.color_temp_state_topic, self._on_color_temp)):
                if topic:
                    routes.append((topic, handler))
        return routes

    # --- state ------------------------------------------------------------------------------------
    def _on_state(self, payload: bytes) -> None:
        text = self.state_text(self._state_tpl, payload)
        if text == self.conf.payload_on:
            self.value = "on"
        elif text == self.conf.payload_off:
            self.value = "off"
        elif text is not None and text not in _NONE:
            self.warn(f"{text[:80]!r} on {self.conf.state_topic} is neither {self.conf.payload_on!r} "
                      f"nor {self.conf.payload_off!r}")
            return
        self.push()

    def _brightness_in(self, raw: Any) -> int:
        return max(0, min(255, round(float(raw) * 255 / self.conf.brightness_scale)))

    def _kelvin_in(self, raw: Any) -> int:
        raw = float(raw)
        return round(raw) if self.conf.color_temp_kelvin else round(1_000_000 / raw)

    def _on_brightness(self, payload: bytes) -> None:
        try:
            self.attributes["brightness"] = self._brightness_in(self.state_text(self._bri_tpl, payload))
        except (TypeError, ValueError):
            self.warn(f"brightness on {self.conf.brightness_state_topic} is not a number")
            return
        self.push()

    def _on_rgb(self, payload: bytes) -> None:
        try:
            rgb = [int(float(p)) for p in (self.state_text(self._rgb_tpl, payload) or "").split(",")]
            if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
                raise ValueError
        except ValueError:
            self.warn(f"colour on {self.conf.rgb_state_topic} is not r,g,b")
            return
        self.attributes["rgb_color"] = rgb
        self.push()

    def _on_color_temp(self, payload: bytes) -> None:
        try:
            self.attributes["color_temp_kelvin"] = self._kelvin_in(self.state_text(self._ct_tpl, payload))
        except (TypeError, ValueError, ZeroDivisionError):
            self.warn(f"colour temperature on {self.conf.color_temp_state_topic} is not a number")
            return
        self.push()

    def _on_json(self, payload: bytes) -> None:
        try:
            data = parse_json(payload)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            state = data.get("state")
            if state is not None:
                state = str(state).upper()
                if state not in ("ON", "OFF"):
                    raise ValueError(f"state {state!r} is neither ON nor OFF")
                self.value = state.lower()
            if isinstance(data.get("brightness"), (int, float)) and not isinstance(data["brightness"], bool):
                self.attributes["brightness"] = self._brightness_in(data["brightness"])
            color = data.get("color")
            if isinstance(color, dict) and all(isinstance(color.get(k), int) for k in "rgb"):
                self.attributes["rgb_color"] = [max(0, min(255, color[k])) for k in "rgb"]
            if isinstance(data.get("color_temp"), (int, float)) and data["color_temp"] > 0:
                self.attributes["color_temp_kelvin"] = self._kelvin_in(data["color_temp"])
        except (ValueError, ZeroDivisionError) as exc:
            self.warn(f"state on {self.conf.state_topic}: {exc}")
            return
        self._warned = False
        self.push()

    # --- commands ---------------------------------------------------------------------------------
    def command(self, command: str, args: dict, publish: Publish) -> None:
        if command == "toggle":
            command = "turn_off" if self.value == "on" else "turn_on"
        args = {k: v for k, v in args.items() if v is not None}
        c = self.conf
        if self.json:
            message: dict[str, Any] = {"state": "ON" if command == "turn_on" else "OFF"}
            if "brightness" in args:
                message["brightness"] = round(args["brightness"] * c.brightness_scale / 255)
            if "rgb_color" in args:
                message["color"] = dict(zip("rgb", args["rgb_color"]))
            if "color_temp_kelvin" in args:
                message["color_temp"] = (args["color_temp_kelvin"] if c.color_temp_kelvin
                                         else _mireds(args["color_temp_kelvin"]))
            if "transition" in args:
                message["transition"] = args["transition"]
            self.send(publish, c.command_topic, json.dumps(message))
        elif command == "turn_off":
            self.send(publish, c.command_topic, c.payload_off, self._cmd_tpl)
        else:
            features = []
            if "brightness" in args and c.brightness_command_topic:
                features.append((c.brightness_command_topic, round(args["brightness"] * c.brightness_scale / 255),
                                 self._bri_cmd))
            if "rgb_color" in args and c.rgb_command_topic:
                features.append((c.rgb_command_topic, ",".join(map(str, args["rgb_color"])), self._rgb_cmd))
            if "color_temp_kelvin" in args and c.color_temp_command_topic:
                kelvin = args["color_temp_kelvin"]
                features.append((c.color_temp_command_topic, kelvin if c.color_temp_kelvin else _mireds(kelvin),
                                 self._ct_cmd))
            on = (c.command_topic, c.payload_on, self._cmd_tpl)
            if c.on_command_type == "brightness" and any(f[0] == c.brightness_command_topic for f in features):
                sequence = features
            elif c.on_command_type == "first":
                sequence = [on, *features]
            else:
                sequence = [*features, on]
            for topic, value, template in sequence:
                self.send(publish, topic, value, template)
        if self.optimistic:
            self.value = "on" if command == "turn_on" else "off"
            for name in ("brightness", "rgb_color", "color_temp_kelvin"):
                if name in args:
                    self.attributes[name] = list(args[name]) if name == "rgb_color" else args[name]
            self.push()
