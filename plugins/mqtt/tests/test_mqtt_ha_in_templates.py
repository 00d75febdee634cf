"""The Jinja subset of discovery templates: what the projects send works as in Home Assistant, and
anything else (which comes from whoever is on the broker) is refused when the config is read."""

from __future__ import annotations

import json

import pytest

from hub_mqtt.ha_in.templates import TemplateError, compile_ha, parse_json, translate


@pytest.mark.parametrize("template, payload, expected", [
    ("{{ value_json.temperature }}", {"temperature": 21.5}, 21.5),                       # Zigbee2MQTT
    ("{{value_json['AM2301'].Temperature}}", {"AM2301": {"Temperature": 22.1}}, 22.1),    # Tasmota
    ("{{ value_json.POWER1 }}", {"POWER1": "ON"}, "ON"),
    ("{{ value }}", "on", "on"),
    ("{{ value | float }}", "41.25", 41.25),
    ("{{ value_json.x | int }}", {"x": "7"}, 7),
    ("{{ value_json.t | float | round(1) }}", {"t": 21.46}, 21.5),
    ("{{ value | lower }}", "ONLINE", "online"),
    ("{{ value | upper }}", "on", "ON"),
    ("{{ value_json.battery | default(100) }}", {}, 100),
    ("{{ value_json.battery is defined }}", {}, False),
    ("{{ value_json.battery is not defined }}", {}, True),
    ("{{ value_json.color | tojson }}", {"color": {"x": 0.3, "y": 0.3}}, '{"x": 0.3, "y": 0.3}'),
    ("{{ 'ON' if value_json.x == 1 else 'OFF' }}", {"x": 1}, "ON"),
    ("{{ 'ON' if value_json.contact == false else 'OFF' }}", {"contact": False}, "ON"),
    ("{{- value_json.state -}}", {"state": "online"}, "online"),
    ("{{ (value_json.t | float) * 10 }}", {"t": "2.5"}, 25.0),
    ("T={{ value_json.t }} C", {"t": 3}, "T=3 C"),
])
def test_the_forms_devices_send(template, payload, expected):
    raw = json.dumps(payload) if isinstance(payload, dict) else payload
    assert compile_ha(template).render_payload(raw.encode()) == expected


@pytest.mark.parametrize("template, why", [
    ("{% if value == 'x' %}1{% endif %}", "statements"),
    ("{{ value.__class__.__mro__ }}", "'_'"),
    ("{{ value_json | map(attribute='x') }}", "'map' is not supported"),
    ("{{ states('sensor.x') }}", "unknown function 'states'"),
    ("{{ value ~ 'x' }}", "syntax"),
    ("{{ [x for x in value] }}", "comprehension"),
    ("{{ lambda: 1 }}", "lambda"),
    ("{{ value", "never closed"),
    ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "the limit is 4000"),
    ("{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}", "nested deeper than 60"),
    ("{{ " + "-" * 300 + "1 }}", "nested too deeply"),
])
def test_anything_else_is_refused_naming_the_template(template, why):
    with pytest.raises(TemplateError) as err:
        compile_ha(template)
    assert why in str(err.value) and "is not supported" in str(err.value)


def test_rendering_is_bounded_whatever_the_payload():
    # Big results are refused by the hub's expression limits, not built.
    with pytest.raises(TemplateError):
        compile_ha("{{ value * 100000 }}").render_payload(b"x" * 1000)
    with pytest.raises(TemplateError):
        compile_ha("{{ 9 ** 9 ** 9 }}").render_payload(b"")
    # A template reading a key that is not there fails that message, not the hub.
    with pytest.raises(TemplateError):
        compile_ha("{{ value_json.a.b | float }}").render_payload(b'{"a": 1}')


def test_json_from_the_broker_is_bounded():
    with pytest.raises(ValueError, match="nested"):
        parse_json(b"[" * 15000 + b"]" * 15000)
    with pytest.raises(ValueError, match="nested"):
        parse_json(b"[" * 40 + b"]" * 40)
    with pytest.raises(ValueError, match="NaN"):
        parse_json(b'{"t": NaN}')
    assert parse_json(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}


def test_translation_keeps_jinja_precedence():
    assert translate("{{ -value | abs }}") == "{{ - abs(value) }}"
    assert translate("{{ not value_json.x | bool }}") == "{{ not bool(value_json.x) }}"
    assert translate("{{ value_json.a | float(0) + 1 }}") == "{{ float(value_json.a, 0) + 1 }}"


def test_abbreviations_and_the_base_topic_expand_as_in_home_assistant():
    from hub_mqtt.ha_in.abbrev import expand

    config = expand({"~": "tasmota/pump", "stat_t": "~/stat/RESULT", "cmd_t": "cmnd/~", "pl_on": "ON",
                     "avty": [{"t": "~/LWT", "pl_avail": "Online"}], "dev": {"ids": ["A4CF12"], "mf": "Tasmota"},
                     "o": {"name": "Tasmota", "sw": "9.1"}, "uniq_id": "A4CF12_RL_1"})
    assert config == {"state_topic": "tasmota/pump/stat/RESULT", "command_topic": "cmnd/tasmota/pump",
                      "payload_on": "ON", "availability": [{"topic": "tasmota/pump/LWT", "payload_available": "Online"}],
                      "device": {"identifiers": ["A4CF12"], "manufacturer": "Tasmota"},
                      "origin": {"name": "Tasmota", "sw_version": "9.1"}, "unique_id": "A4CF12_RL_1"}
