"""A stand-in for Home Assistant's MQTT integration, as far as the hub's discovery needs one: it reads
the retained discovery configs from the broker as Home Assistant does, checks the keys Home
Assistant's documentation marks required for each component, follows each entity's state topics
through the config's templates, and sends commands on the config's command topics with the
payloads Home Assistant sends.

Templates are rendered by :func:`render`, a tiny renderer for exactly the Jinja the hub emits
(``{{ expr }}``, ``{% if cond %}..{% endif %}``, ``is defined``, ``is number``, ``| tojson``,
``| timestamp_custom``), since Jinja itself is not a dependency of the hub.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any

from mqtt_testing import Client

#: Keys without a default in Home Assistant's MQTT docs, per component (light: the template schema).
REQUIRED = {
    "switch": set(),
    "light": {"command_topic", "command_on_template", "command_off_template"},
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "button": set(),
    "lock": {"command_topic"},
    "cover": set(),
    "climate": set(),
    "number": {"command_topic"},
    "select": {"command_topic", "options"},
}
#: The template of each state topic a component reads (Home Assistant's own option names).
TEMPLATE_OF = {
    "state_topic": ("value_template", "state_template"),
    "position_topic": ("position_template",),
    "mode_state_topic": ("mode_state_template",),
    "temperature_state_topic": ("temperature_state_template",),
    "current_temperature_topic": ("current_temperature_template",),
    "action_topic": ("action_template",),
    "json_attributes_topic": ("json_attributes_template",),
}


class AttrDict(dict):
    """``value_json.attributes``: Jinja reads a dict's items as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _timestamp_custom(value: Any, fmt: str, local: bool = True, default: Any = None) -> str:
    return datetime.fromtimestamp(value, timezone.utc).strftime(fmt)


FILTERS = {"tojson": lambda v: json.dumps(v), "timestamp_custom": _timestamp_custom}
_IF = re.compile(r"\{%\s*if (.+?)\s*%\}(.*?)\{%\s*endif\s*%\}", re.S)
_EXPR = re.compile(r"\{\{\s*(.+?)\s*\}\}", re.S)
_FILTER = re.compile(r"([\w.]+) \| (\w+)(?:\(([^)]*)\))?")


def _evaluate(expr: str, variables: dict[str, Any]) -> Any:
    expr = re.sub(r"\b(\w+) is defined", lambda m: f"({m.group(1)!r} in _vars)", expr)
    expr = re.sub(r"([\w.]+) is number", r"_is_number(\1)", expr)
    expr = _FILTER.sub(lambda m: f"_filters[{m.group(2)!r}]({m.group(1)}{', ' + m.group(3) if m.group(3) else ''})",
                       expr)
    scope = {"none": None, "true": True, "false": False, "_vars": variables, "_filters": FILTERS,
             "_is_number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), **variables}
    return eval(expr, {"__builtins__": {}}, scope)  # noqa: S307 - the hub's own templates, in a test


def render(template: str, variables: dict[str, Any]) -> str:
    """Render one of the hub's templates as Home Assistant's Jinja would."""
    text = _IF.sub(lambda m: m.group(2) if _evaluate(m.group(1), variables) else "", template)
    return _EXPR.sub(lambda m: str(_evaluate(m.group(1), variables)), text)


def render_value(template: str, payload: bytes) -> str:
    """A value template applied to a state message (``value_json`` is its JSON)."""
    return render(template, {"value_json": json.loads(payload, object_hook=AttrDict), "value": payload.decode()})


class HomeAssistant:
    """Home Assistant's MQTT integration, reduced to what a test asserts."""

    def __init__(self, port: int, prefix: str = "homeassistant") -> None:
        self.prefix = prefix
        self.client = Client(port, client_id="home-assistant", subscribe="#")

    def close(self) -> None:
        self.client.close()

    # --- discovery -------------------------------------------------------------------------------
    def configs(self) -> dict[str, tuple[str, dict]]:
        """``default_entity_id`` -> (component, config) of every config now on the broker."""
        found = {}
        for topic, payload in list(self.client.latest.items()):
            parts = topic.split("/")
            if len(parts) != 5 or parts[0] != self.prefix or parts[-1] != "config" or not payload:
                continue
            config = json.loads(payload)
            found[config["default_entity_id"]] = (parts[1], config)
        return found

    def wait_configs(self, entity_ids: set[str], timeout: float = 15) -> dict[str, tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.configs()
            if entity_ids <= set(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no discovery config for {sorted(entity_ids - set(found))}; "
                                     f"have {sorted(found)}")
            time.sleep(0.05)

    @staticmethod
    def check(component: str, config: dict) -> None:
        """What Home Assistant would refuse or mis-show: a missing required key, a missing device."""
        missing = REQUIRED[component] - set(config)
        assert not missing, f"{component} config lacks {missing}: {config}"
        assert config["unique_id"] and config["device"]["identifiers"] and config["device"]["name"], config
        assert config["o"]["name"] == "Ruff Hub", config
        for key, value in config.items():
            if key.endswith("_topic"):
                assert isinstance(value, str) and "+" not in value and "#" not in value, (key, value)
        for key, templates in TEMPLATE_OF.items():
            if "/state/" in config.get(key, ""):  # the hub's state JSON: read through a template
                assert any(t in config for t in templates), f"{component}: {key} has no template"

    # --- states ----------------------------------------------------------------------------------
    def read(self, config: dict, topic_key: str = "state_topic", template_key: str | None = None) -> str | None:
        """What Home Assistant shows for one part of an entity: the latest message on the topic
        the config names, through the template it names."""
        payload = self.client.latest.get(config[topic_key])
        if not payload:
            return None
        templates = (template_key,) if template_key else TEMPLATE_OF[topic_key]
        template = next((config[t] for t in templates if t in config), None)
        return render_value(template, payload) if template else payload.decode()

    def wait_read(self, config: dict, expected: str, topic_key: str = "state_topic",
                  template_key: str | None = None, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            value = self.read(config, topic_key, template_key)
            if value == expected:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{config['default_entity_id']} {topic_key}: {value!r}, not {expected!r}")
            time.sleep(0.05)

    def available(self, config: dict) -> bool:
        results = []
        for entry in config.get("availability", []):
            payload = self.client.latest.get(entry["topic"])
            if not payload:
                results.append(False)
                continue
            value = render_value(entry["value_template"], payload) if "value_template" in entry else payload.decode()
            results.append(value == entry.get("payload_available", "online"))
        return all(results) if config.get("availability_mode") == "all" else any(results)

    # --- commands --------------------------------------------------------------------------------
    def send(self, config: dict, topic_key: str, payload: str) -> None:
        self.client.publish(config[topic_key], payload, qos=0)

    def light_on(self, config: dict, **variables: Any) -> None:
        self.send(config, "command_topic", render(config["command_on_template"], {"state": "on", **variables}))

    def light_off(self, config: dict, **variables: Any) -> None:
        self.send(config, "command_topic", render(config["command_off_template"], {"state": "off", **variables}))

    def lock(self, config: dict, action: str, code: str | None = None) -> None:
        value = config[f"payload_{action}"]
        payload = render(config["command_template"], {"value": value, "code": code}) if "command_template" in config \
            else value
        self.send(config, "command_topic", payload)
