"""The components that are set rather than switched: lock, cover, climate, number, select."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.devices.capabilities import CAPABILITIES

from hub_mqtt import ha_schema as S
from hub_mqtt.ha_in.entities import _NONE, Adopted, Publish, Routes


class Lock(Adopted):
    component = capability = "lock"

    def __init__(self, conf: S.LockConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        self._value_tpl = self._tpl(conf.value_template)
        self._cmd_tpl = self._tpl(conf.command_template)

    def topics(self) -> Routes:
        routes = super().topics()
        if self.conf.state_topic:
            routes.append((self.conf.state_topic, self._on_state))
        return routes

    def _on_state(self, payload: bytes) -> None:
        text = self.state_text(self._value_tpl, payload)
        c = self.conf
        table = {c.state_locked: "locked", c.state_unlocked: "unlocked", c.state_locking: "locking",
                 c.state_unlocking: "unlocking", c.state_jammed: "jammed", c.state_open: "open",
                 c.state_opening: "unlocking", c.payload_reset: None}
        if text is None or text not in table:
            if text is not None:
                self.warn(f"{text[:80]!r} on {c.state_topic} is not one of its lock states")
            return
        self.value = table[text]
        self._warned = False
        self.push()

    def command(self, command: str, args: dict, publish: Publish) -> None:
        c = self.conf
        payload = {"lock": c.payload_lock, "unlock": c.payload_unlock, "open": c.payload_open}[command]
        if payload is None:
            raise ValueError("this lock has no payload_open: it cannot open")
        # The code is passed to the template only, never logged (see LockArgs).
        self.send(publish, c.command_topic, payload, self._cmd_tpl, code=args.get("code") or "")
        if self.optimistic:
            self.value = {"lock": "locked", "unlock": "unlocked", "open": "open"}[command]
            self.push()


class Cover(Adopted):
    component = capability = "cover"

    def __init__(self, conf: S.CoverConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        self._value_tpl = self._tpl(conf.value_template)
        self._cmd_tpl = self._tpl(conf.command_template)
        self._pos_tpl = self._tpl(conf.position_template)
        self._set_pos_tpl = self._tpl(conf.set_position_template)

    def topics(self) -> Routes:
        routes = super().topics()
        if self.conf.state_topic:
            routes.append((self.conf.state_topic, self._on_state))
        if self.conf.position_topic:
            routes.append((self.conf.position_topic, self._on_position))
        return routes

    def _on_state(self, payload: bytes) -> None:
        text = self.state_text(self._value_tpl, payload)
        c = self.conf
        table = {c.state_open: "open", c.state_opening: "opening", c.state_closed: "closed",
                 c.state_closing: "closing", c.state_stopped: "stopped"}
        if text in table:
            self.value = table[text]
            self._warned = False
            self.push()
        elif text is not None and text not in _NONE:
            self.warn(f"{text[:80]!r} on {c.state_topic} is not one of its cover states")

    def _scale_in(self, raw: float) -> int:
        c = self.conf
        span = c.position_open - c.position_closed
        return max(0, min(100, round((raw - c.position_closed) * 100 / span))) if span else 0

    def _on_position(self, payload: bytes) -> None:
        text = self.state_text(self._pos_tpl, payload)
        try:
            position = self._scale_in(float(text or ""))
        except ValueError:
            self.warn(f"{(text or '')[:80]!r} on {self.conf.position_topic} is not a position")
            return
        self.attributes["position"] = position
        if self.conf.state_topic is None:
            self.value = "closed" if position == 0 else "open"
        self.push()

    def command(self, command: str, args: dict, publish: Publish) -> None:
        c = self.conf
        if command == "set_position":
            raw = c.position_closed + (c.position_open - c.position_closed) * args["position"] / 100
            raw = int(raw) if float(raw).is_integer() else raw
            self.send(publish, c.set_position_topic or c.command_topic, raw, self._set_pos_tpl, position=raw)
            if self.optimistic:
                self.attributes["position"] = args["position"]
                self.value = "closed" if args["position"] == 0 else "open"
                self.push()
            return
        payload = {"open": c.payload_open, "close": c.payload_close, "stop": c.payload_stop}[command]
        if payload is None:
            raise ValueError(f"this cover has no payload for {command}")
        self.send(publish, c.command_topic, payload, self._cmd_tpl)
        if self.optimistic and command != "stop":
            self.value = "open" if command == "open" else "closed"
            self.push()


class Climate(Adopted):
    component = capability = "climate"

    def __init__(self, conf: S.ClimateConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        t = self._tpl
        self._mode_cmd, self._mode_state = t(conf.mode_command_template), t(conf.mode_state_template)
        self._temp_cmd, self._temp_state = t(conf.temperature_command_template), t(conf.temperature_state_template)
        self._current, self._action = t(conf.current_temperature_template), t(conf.action_template)
        self._power_cmd = t(conf.power_command_template)
        self._last_on: str | None = next((m for m in conf.modes if m != "off"), None)
        self.attributes.update(min_temp=conf.min_temp, max_temp=conf.max_temp)

    def options(self) -> dict:
        return {"min_temp": self.conf.min_temp, "max_temp": self.conf.max_temp}

    def unit(self) -> str | None:
        return "°F" if self.conf.temperature_unit == "F" else "°C"

    def topics(self) -> Routes:
        c = self.conf
        handlers = [(c.mode_state_topic, self._on_mode),
                    (c.temperature_state_topic, self._number("target_temperature", self._temp_state)),
                    (c.current_temperature_topic, self._number("current_temperature", self._current)),
                    (c.action_topic, self._on_action)]
        return [*super().topics(), *((topic, handler) for topic, handler in handlers if topic)]

    def _on_mode(self, payload: bytes) -> None:
        text = self.state_text(self._mode_state, payload)
        if text in CAPABILITIES["climate"].states:
            self.value = text
            if text != "off":
                self._last_on = text
            self._warned = False
            self.push()
        elif text is not None:
            self.warn(f"{text[:80]!r} on {self.conf.mode_state_topic} is not an HVAC mode")

    def _number(self, attribute: str, template: Any) -> Callable[[bytes], None]:
        def handler(payload: bytes) -> None:
            text = self.state_text(template, payload)
            try:
                self.attributes[attribute] = float(text or "")
            except ValueError:
                self.warn(f"{(text or '')[:80]!r} for {attribute} is not a number")
                return
            self.push()
        return handler

    def _on_action(self, payload: bytes) -> None:
        text = self.state_text(self._action, payload)
        if text:
            self.attributes["hvac_action"] = text[:32]
            self.push()

    def command(self, command: str, args: dict, publish: Publish) -> None:
        c = self.conf
        if command == "set_temperature":
            value = args["temperature"]
            self.send(publish, c.temperature_command_topic, int(value) if float(value).is_integer() else value,
                      self._temp_cmd)
            if c.optimistic or c.temperature_state_topic is None:
                self.attributes["target_temperature"] = value
                self.push()
            return
        if command in ("turn_on", "turn_off") and c.power_command_topic:
            self.send(publish, c.power_command_topic, c.payload_on if command == "turn_on" else c.payload_off,
                      self._power_cmd)
            return
        mode = args.get("hvac_mode") if command == "set_hvac_mode" else ("off" if command == "turn_off" else self._last_on)
        if mode not in c.modes:
            raise ValueError(f"this thermostat's modes are {', '.join(c.modes)}; not {mode}")
        self.send(publish, c.mode_command_topic, mode, self._mode_cmd)
        if c.optimistic or c.mode_state_topic is None:
            self.value = mode
            self.push()


class Number(Adopted):
    component = capability = "number"

    def __init__(self, conf: S.NumberConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        self._value_tpl, self._cmd_tpl = self._tpl(conf.value_template), self._tpl(conf.command_template)

    def unit(self) -> str | None:
        return self.conf.unit_of_measurement

    def options(self) -> dict:
        return {"min": self.conf.min, "max": self.conf.max, "step": self.conf.step, "mode": self.conf.mode}

    def topics(self) -> Routes:
        routes = super().topics()
        if self.conf.state_topic:
            routes.append((self.conf.state_topic, self._on_state))
        return routes

    def _on_state(self, payload: bytes) -> None:
        text = self.state_text(self._value_tpl, payload)
        if text is None:
            return
        try:
            self.value = None if text == self.conf.payload_reset else float(text)
        except ValueError:
            self.warn(f"{text[:80]!r} on {self.conf.state_topic} is not a number")
            return
        self._warned = False
        self.push()

    def command(self, command: str, args: dict, publish: Publish) -> None:
        value = args["value"]
        self.send(publish, self.conf.command_topic, int(value) if float(value).is_integer() else value, self._cmd_tpl)
        if self.optimistic:
            self.value = float(value)
            self.push()


class Select(Adopted):
    component = capability = "select"

    def __init__(self, conf: S.SelectConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        self._value_tpl, self._cmd_tpl = self._tpl(conf.value_template), self._tpl(conf.command_template)

    def options(self) -> dict:
        return {"options": list(self.conf.options)}

    def topics(self) -> Routes:
        routes = super().topics()
        if self.conf.state_topic:
            routes.append((self.conf.state_topic, self._on_state))
        return routes

    def _on_state(self, payload: bytes) -> None:
        text = self.state_text(self._value_tpl, payload)
        if text in self.conf.options:
            self.value = text
            self._warned = False
            self.push()
        elif text is not None:
            self.warn(f"{text[:80]!r} on {self.conf.state_topic} is not one of its options")

    def command(self, command: str, args: dict, publish: Publish) -> None:
        self.send(publish, self.conf.command_topic, args["option"], self._cmd_tpl)
        if self.optimistic:
            self.value = args["option"]
            self.push()
