"""One adopted Home Assistant MQTT entity: its state followed from its topics, its commands turned
into its component's payloads. What a component's options mean is Home Assistant's (each
``<component>.mqtt`` page); one class per component, sharing availability and attributes. Here the
base and the on/off and reading components; lock, cover, climate, number and select are in
:mod:`.controls`, the light in :mod:`.lights`.
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
