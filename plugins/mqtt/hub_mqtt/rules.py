"""The ``mqtt`` trigger and the ``mqtt.publish`` action of the rule engine (docs/rules.md).

```yaml
- id: doorbell
  trigger:
    - trigger: mqtt
      topic: zigbee2mqtt/+/action          # + and # work as on the broker
      value_template: "{{ value_json.action }}"
      payload: single                      # compared with the template's result (or the payload)
  action:
    - mqtt.publish: {topic: "house/bell", payload: "{{ trigger.topic }}", qos: 1, retain: false}
```

As in Home Assistant, a retained message the broker delivers when the trigger subscribes (at start,
after a reconnection) fires it like any other: ``trigger.retain`` tells them apart, so a rule that
must not act on a stale value adds ``condition: "{{ not trigger.retain }}"``.

The trigger calls the engine synchronously from the link's dispatch, so a flood of messages costs
what the rule's ``mode`` allows (``single`` skips, ``queued`` keeps ``max``) and nothing more: no task
or queue per message lives here.
"""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from hub.rules.context import RuleContext
from hub.rules.expressions import ExpressionError
from hub.rules.safe_ops import DEFAULT_FUNCTIONS
from hub.rules.templates import compile_template, compile_value

log = logging.getLogger("hub.plugins.mqtt")


def topic_filter_error(value: str) -> str | None:
    """What is wrong with a subscription filter, by MQTT's rules (``+`` and ``#`` are whole levels,
    ``#`` only last), or None."""
    if not value or len(value.encode()) > 65535 or "\x00" in value:
        return "a topic must be a non-empty MQTT topic"
    levels = value.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"{value!r}: '#' must be a whole level and the last one"
        if "+" in level and level != "+":
            return f"{value!r}: '+' must be a whole level"
    return None


def parse_json(payload: bytes | str) -> Any:
    """A payload as JSON, or None when it is not JSON: bad syntax, NaN or Infinity (not JSON, and not
    storable in a trace), or nesting too deep to parse."""
    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(payload, parse_constant=refuse)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return str(value)


def template_functions(hub: Any) -> dict[str, Any]:
    """The functions rule templates have (``states()``, ``is_state()`` ...), bound to this hub's states
    through the plugin's read-only view of them."""
    view = SimpleNamespace(states=SimpleNamespace(get=hub.get_state), now=hub.now)
    ctx = RuleContext(view)  # type: ignore[arg-type]
    return {**DEFAULT_FUNCTIONS, **ctx._entity_functions()}


def _schemas(functions: dict[str, Any]) -> tuple[type[BaseModel], type[BaseModel]]:
    """The trigger's and the action's models, compiling their templates with this hub's functions
    when the rule loads, so a bad template is refused with its line."""

    def compiled(text: str, what: str) -> Any:
        try:
            return compile_template(text, functions)
        except ExpressionError as exc:
            raise ValueError(f"{what}: {exc}") from None

    class MqttTrigger(BaseModel):
        model_config = ConfigDict(extra="forbid")

        topic: str = Field(max_length=4096, description="A subscription filter: + and # work.")
        payload: str | None = Field(None, max_length=4096,
                                    description="Fire only when the payload (after value_template) is exactly this.")
        value_template: str | None = Field(None, max_length=4096,
                                           description="A template of value (the payload as text) and value_json.")
        qos: Literal[0, 1, 2] = 0
        _template: Any = PrivateAttr(None)

        @field_validator("topic")
        @classmethod
        def _filter(cls, value: str) -> str:
            error = topic_filter_error(value)
            if error:
                raise ValueError(error)
            return value

        @model_validator(mode="after")
        def _compile(self) -> "MqttTrigger":
            if self.value_template is not None:
                self._template = compiled(self.value_template, "value_template")
            return self

    class PublishBody(BaseModel):
        model_config = ConfigDict(extra="forbid")

        topic: str = Field(min_length=1, max_length=4096, description="A topic (no wildcards); templates work.")
        payload: Any = Field("", description="Text, or a mapping or list sent as JSON; templates work in strings.")
        qos: Literal[0, 1, 2] = 0
        retain: bool = False
        _topic: Any = PrivateAttr(None)
        _payload: Any = PrivateAttr(None)

        @model_validator(mode="after")
        def _compile(self) -> "PublishBody":
            template = compiled(self.topic, "topic")
            if template.is_static and ("+" in self.topic or "#" in self.topic or "\x00" in self.topic):
                raise ValueError(f"topic {self.topic!r} may not contain the wildcards + or #")
            self._topic = template
            try:
                self._payload = compile_value(self.payload, functions)
            except ExpressionError as exc:
                raise ValueError(f"payload: {exc}") from None
            return self

    class MqttPublish(BaseModel):
        model_config = ConfigDict(extra="forbid")

        publish: PublishBody = Field(alias="mqtt.publish")

    return MqttTrigger, MqttPublish


def _link(hub: Any) -> Any:
    link = hub.data.get("link")
    if link is None:
        raise RuntimeError("the mqtt plugin is not connected (its set-up failed)")
    return link


def register_triggers(hub: Any, register: Any) -> None:
    trigger_model, _ = _schemas(template_functions(hub))

    def attach(config: Any, fire: Any) -> Any:
        template = config._template
        warned: list[bool] = []  # one log line per armed trigger for a failing template, not one per message

        def heard(message: Any) -> None:
            text = message.payload.decode("utf-8", errors="replace")
            value_json = parse_json(message.payload) if message.payload else None
            value: Any = text
            if template is not None:
                try:
                    value = template.render({"value": text, "value_json": value_json})
                except ExpressionError as exc:
                    if not warned:
                        warned.append(True)
                        log.warning("mqtt trigger on %s: value_template failed on %s: %s", config.topic,
                                    message.topic, exc)
                    return
            if config.payload is not None and _text(value) != config.payload:
                return
            variables = {"topic": message.topic, "payload": text, "qos": message.qos,
                         "retain": message.retain, "description": f"mqtt topic {message.topic}"}
            if value_json is not None:
                variables["payload_json"] = value_json
            fire(variables)

        return _link(hub).subscribe(config.topic, heard, qos=config.qos)

    register("mqtt", trigger_model, attach)


def register_actions(hub: Any, register: Any) -> None:
    _, publish_model = _schemas(template_functions(hub))

    def run(config: Any, variables: dict) -> dict[str, Any]:
        body = config.publish
        topic = body._topic.render(variables)
        if not isinstance(topic, str) or topic_filter_error(topic) or "+" in topic or "#" in topic:
            raise ValueError(f"mqtt.publish: the topic {topic!r} is not a topic one can publish to")
        payload = body._payload(variables)
        if payload is None:
            data = b""
        elif isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            if isinstance(payload, float) and not math.isfinite(payload):
                raise ValueError(f"mqtt.publish: the payload {payload!r} is not a number JSON can carry")
            data = json.dumps(payload, allow_nan=False, default=str).encode()
        _link(hub).publish(topic, data, qos=body.qos, retain=body.retain)
        return {"topic": topic, "bytes": len(data), "retain": body.retain}

    register("mqtt.publish", publish_model, run)
