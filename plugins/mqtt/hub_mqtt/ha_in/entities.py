"""One adopted Home Assistant MQTT entity: its state followed from its topics, its commands turned
into its component's payloads. What a component's options mean is Home Assistant's (each
``<component>.mqtt`` page); one class per component, sharing availability and attributes.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from hub.devices.capabilities import CAPABILITIES
from hub.devices.model import EntitySpec

from hub_mqtt import ha_schema as S
from hub_mqtt.ha_in.templates import UNDEFINED, TemplateError, compile_ha, parse_json, to_text

log = logging.getLogger("hub.plugins.mqtt")

Publish = Callable[[str, Any, int, bool], None]
Routes = list[tuple[str, Callable[[bytes], None]]]
# Attributes the hub sets itself, and "value" (EntityHandle.set's own argument).
_RESERVED = {"unit", "device_class", "friendly_name", "min", "max", "step", "mode", "options", "value"}
_NONE = {"None", "none", "", "unknown"}


def short_key(text: str, limit: int = 64) -> str:
    """An id that fits the registry's bounds and stays the same for the same text."""
    clean = re.sub(r"[^A-Za-z0-9_.:-]+", "_", text)
    if len(clean) <= limit:
        return clean
    return clean[: limit - 13] + "_" + hashlib.sha256(text.encode()).hexdigest()[:12]


class Adopted:
    """The base of every component: availability, JSON attributes, the value as last known."""

    component = ""
    capability = ""

    def __init__(self, conf: S.Entity, key: str, source: str) -> None:
        self.conf = conf
        self.key = key
        self.source = source  # the config topic (or "configuration.yaml"), for log lines
        self.handle: Any = None
        self.value: Any = None
        self.attributes: dict[str, Any] = {}
        self.now: Callable[[], float] = lambda: 0.0
        self._warned = False
        #: Whether the hub is connected to the broker; a new entity is adopted from a live connection.
        self.broker_up = True
        self.expired = False  # expire_after passed without a reading
        self._avty: dict[str, bool | None] = {}
        self._avty_latest: bool | None = None
        self._avty_rules: list[tuple[str, str, str, Any]] = []
        if conf.availability_topic:
            self._avty_rules.append((conf.availability_topic, conf.payload_available, conf.payload_not_available,
                                     self._tpl(conf.availability_template)))
        for item in conf.availability:
            self._avty_rules.append((item.topic, item.payload_available, item.payload_not_available,
                                     self._tpl(item.value_template)))
        self._attr_tpl = self._tpl(conf.json_attributes_template)

    # --- what the adopter asks ------------------------------------------------------------------
    @staticmethod
    def _tpl(text: str | None) -> Any:
        return compile_ha(text) if text else None

    def spec(self, device_name: str | None) -> EntitySpec:
        conf = self.conf
        name = conf.name
        if name is None and conf.device_class and device_name:
            name = conf.device_class.replace("_", " ").capitalize()  # Home Assistant's "Kitchen Temperature"
        if device_name and name and not name.lower().startswith(device_name.lower()):
            name = f"{device_name} {name}"
        name = name or device_name or self.key
        object_id = conf.object_id or (conf.default_entity_id.split(".", 1)[-1] if conf.default_entity_id else None)
        cap = CAPABILITIES[self.capability]
        device_class = conf.device_class
        if device_class is not None and cap.device_classes and device_class not in cap.device_classes:
            device_class = None  # a class this hub does not know: keep the entity, drop the class
        return EntitySpec(key=self.key, capability=self.capability, name=name[:128], object_id=object_id,
                          device_class=device_class if cap.device_classes else None, unit=self.unit(),
                          options=self.options())

    def unit(self) -> str | None:
        return None

    def options(self) -> dict:
        return {}

    def topics(self) -> Routes:
        """(topic, handler of its payload) for the state, attributes and availability topics; one
        topic may carry several (Tasmota's SENSOR is both a value and the attributes)."""
        routes: Routes = []
        for topic in dict.fromkeys(rule[0] for rule in self._avty_rules):
            routes.append((topic, functools.partial(self._on_availability, topic=topic)))
        if self.conf.json_attributes_topic:
            routes.append((self.conf.json_attributes_topic, self._on_attributes))
        return routes

    def bind(self, handle: Any, now: Callable[[], float]) -> None:
        self.handle, self.now = handle, now
        self.push()

    # --- state ------------------------------------------------------------------------------------
    def fresh(self) -> None:
        """A good reading arrived: with ``expire_after``, it expires that many seconds from now."""
        self.expired = False
        seconds = getattr(self.conf, "expire_after", None)
        if seconds:
            self.later("_expiry", seconds, self._expire)

    def later(self, slot: str, seconds: float, callback: Callable[[], None]) -> None:
        """One timer per slot, restarted by each call (on the hub's loop; none before it runs)."""
        current = getattr(self, slot, None)
        if current is not None:
            current.cancel()
        try:
            setattr(self, slot, asyncio.get_running_loop().call_later(seconds, callback))
        except RuntimeError:
            setattr(self, slot, None)

    def _expire(self) -> None:
        self.expired = True
        self.push()

    def cancel_timers(self) -> None:
        for slot in ("_expiry", "_off_delay"):
            timer = getattr(self, slot, None)
            if timer is not None:
                timer.cancel()

    @property
    def available(self) -> bool:
        if not self.broker_up or self.expired:
            return False
        if not self._avty_rules:
            return True
        mode = self.conf.availability_mode
        values = [self._avty.get(rule[0]) for rule in self._avty_rules]
        if mode == "all":
            return all(v is True for v in values)
        if mode == "any":
            return any(v is True for v in values)
        return self._avty_latest is True

    def push(self) -> None:
        if self.handle is None:
            return
        if not self.available:
            self.handle.set_unavailable()
            return
        try:
            self.handle.set(self.value, **self.attributes)
        except ValueError as exc:
            self.warn(f"state {self.value!r} refused: {exc}")

    def warn(self, message: str) -> None:
        """One log line per entity until it gets a good message again, whatever the broker repeats."""
        if not self._warned:
            self._warned = True
            who = f"{self.handle.entity_id if self.handle else self.key} ({self.component} from {self.source})"
            # The entity in the line's template: the log's rate limit then counts entities apart.
            log.warning("mqtt: " + who.replace("%", "%%") + ": %s", message)

    def render(self, template: Any, payload: bytes) -> Any:
        if template is None:
            return payload.decode(self.conf.encoding or "utf-8", errors="replace")
        return template.render_payload(payload)

    def _on_availability(self, payload: bytes, topic: str) -> None:
        for rule_topic, on, off, template in self._avty_rules:
            if rule_topic != topic:
                continue
            try:
                text = to_text(self.render(template, payload)).strip()
            except TemplateError as exc:
                self.warn(f"availability on {rule_topic}: {exc}")
                continue
            state = True if text == on else False if text == off else None
            if state is not None:
                self._avty[rule_topic] = state
                self._avty_latest = state
        self.push()

    def _on_attributes(self, payload: bytes) -> None:
        try:
            data = self.render(self._attr_tpl, payload) if self._attr_tpl else None
            data = parse_json(payload) if data is None else (parse_json(data) if isinstance(data, str) else data)
        except (TemplateError, ValueError) as exc:
            self.warn(f"attributes on {self.conf.json_attributes_topic}: {exc}")
            return
        if not isinstance(data, dict):
            self.warn(f"attributes on {self.conf.json_attributes_topic}: not a JSON object")
            return
        for name, item in list(data.items())[:64]:
            if name in _RESERVED or not isinstance(name, str) or not name.isidentifier():
                continue
            if item is None or isinstance(item, (bool, int, float)) or (isinstance(item, str) and len(item) <= 256):
                self.attributes[name] = item
        self.push()

    def state_text(self, template: Any, payload: bytes, topic: str = "") -> str | None:
        """The message as text through the template; None (with the entity's one log line) when
        the template fails or reads a key the message does not have."""
        try:
            result = self.render(template, payload)
        except TemplateError as exc:
            self.warn(f"{template.text if template else 'payload'}: {exc}")
            return None
        if result is UNDEFINED:
            self.warn(f"{template.text}: the message has no such value ({payload[:80]!r})")
            return None
        return to_text(result).strip()

    # --- commands ---------------------------------------------------------------------------------
    def command(self, command: str, args: dict, publish: Publish) -> None:
        raise ValueError(f"{self.component} takes no commands")

    def send(self, publish: Publish, topic: str | None, value: Any, template: Any = None, **variables: Any) -> None:
        if topic is None:
            raise ValueError("it has no command topic")
        payload = value
        if template is not None:
            payload = template.render(value, UNDEFINED, **variables)
            if isinstance(payload, (dict, list)):
                payload = json.dumps(payload)
        publish(topic, to_text(payload) if not isinstance(payload, bytes) else payload,
                self.conf.qos, getattr(self.conf, "retain", False))

    @property
    def optimistic(self) -> bool:
        flag = getattr(self.conf, "optimistic", None)
        return flag if flag is not None else getattr(self.conf, "state_topic", None) is None


class OnOff(Adopted):
    """switch and binary_sensor: a state topic whose payload (or template) is on or off."""

    def __init__(self, conf: Any, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        self._value_tpl = self._tpl(conf.value_template)

    def topics(self) -> Routes:
        routes = super().topics()
        if self.conf.state_topic:
            routes.append((self.conf.state_topic, self._on_state))
        return routes

    def _states(self) -> tuple[str, str]:
        return self.conf.payload_on, self.conf.payload_off

    def _on_state(self, payload: bytes) -> None:
        text = self.state_text(self._value_tpl, payload)
        if text is None:
            return
        on, off = self._states()
        if text == on:
            self.value = "on"
        elif text == off:
            self.value = "off"
        elif text in _NONE:
            self.value = None
        else:
            self.warn(f"{text[:80]!r} on {self.conf.state_topic} is neither {on!r} nor {off!r}")
            return
        self._warned = False
        self.fresh()
        delay = getattr(self.conf, "off_delay", None)
        if delay and self.value == "on":  # a motion sensor that only ever says "on"
            self.later("_off_delay", delay, self._off)
        self.push()

    def _off(self) -> None:
        self.value = "off"
        self.push()


class Switch(OnOff):
    component = capability = "switch"

    def __init__(self, conf: S.SwitchConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        self._cmd_tpl = self._tpl(conf.command_template)

    def _states(self) -> tuple[str, str]:
        return self.conf.state_on or self.conf.payload_on, self.conf.state_off or self.conf.payload_off

    def command(self, command: str, args: dict, publish: Publish) -> None:
        if command == "toggle":
            command = "turn_off" if self.value == "on" else "turn_on"
        on = command == "turn_on"
        self.send(publish, self.conf.command_topic, self.conf.payload_on if on else self.conf.payload_off, self._cmd_tpl)
        if self.optimistic:
            self.value = "on" if on else "off"
            self.push()


class BinarySensor(OnOff):
    component = capability = "binary_sensor"


class Sensor(Adopted):
    component = capability = "sensor"

    def __init__(self, conf: S.SensorConfig, key: str, source: str) -> None:
        if conf.unit_of_measurement is None and conf.device_class is None and conf.state_class is None:
            raise ValueError("a text sensor (no unit_of_measurement, device_class or state_class): "
                             "this hub's sensors are numeric")
        super().__init__(conf, key, source)
        self._value_tpl = self._tpl(conf.value_template)

    def unit(self) -> str | None:
        return self.conf.unit_of_measurement

    def topics(self) -> Routes:
        return [*super().topics(), (self.conf.state_topic, self._on_state)]

    def _on_state(self, payload: bytes) -> None:
        text = self.state_text(self._value_tpl, payload)
        if text is None:
            return
        if text in _NONE:
            self.value = None
        else:
            try:
                number = float(text)
                if number != number or number in (float("inf"), float("-inf")):
                    raise ValueError
            except ValueError:
                self.warn(f"{text[:80]!r} on {self.conf.state_topic} is not a number")
                return
            self.value = int(number) if number.is_integer() and "." not in text else number
        self._warned = False
        self.fresh()
        self.push()


class Button(Adopted):
    component = capability = "button"

    def __init__(self, conf: S.ButtonConfig, key: str, source: str) -> None:
        super().__init__(conf, key, source)
        self._cmd_tpl = self._tpl(conf.command_template)

    def command(self, command: str, args: dict, publish: Publish) -> None:
        self.send(publish, self.conf.command_topic, self.conf.payload_press, self._cmd_tpl)
        self.value = self.now()
        self.push()


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


from hub_mqtt.ha_in.lights import Light  # noqa: E402 - the light has a module of its own

CLASSES: dict[str, type[Adopted]] = {cls.component: cls for cls in
                                     (Switch, Light, Sensor, BinarySensor, Button, Lock, Cover, Climate, Number, Select)}
