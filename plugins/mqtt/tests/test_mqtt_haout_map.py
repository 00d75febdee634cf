"""What Home Assistant's commands become in the hub (``ha_out.translate``), checked against the
hub's own command argument models as the command gate checks them, and the discovery config of each
capability, read as Home Assistant reads it (haout_emulator.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from haout_emulator import HomeAssistant, render, render_value
from hub.core.registry import DeviceEntry, EntityEntry
from hub.core.state import State
from hub.devices.capabilities import get_capability
from hub_mqtt import ha_map
from hub_mqtt.ha_out import translate

DEVICE = DeviceEntry(id="demo:box", platform="demo", name="Box", manufacturer="Acme", model="B1")


def entry(capability: str, device_class: str | None = None, unit: str | None = None, name: str = "Box thing",
          **options) -> EntityEntry:
    return EntityEntry(entity_id=f"{capability}.box_thing", unique_id="box:thing", platform="demo",
                       device_id=DEVICE.id, capability=capability, name=name, key="thing",
                       device_class=device_class, unit=unit, options=options)


def gate(e: EntityEntry, command: str, args: dict) -> dict:
    """The command gate's own argument check (hub.core.commands uses the same models)."""
    spec = get_capability(e.capability).command(command)
    assert spec is not None, f"{e.capability} has no command {command}"
    return spec.args_for(e.options).model_validate(args).model_dump(exclude_none=True)


@pytest.mark.parametrize("capability, field, payload, expected", [
    ("switch", None, b"ON", ("turn_on", {})),
    ("switch", None, b"OFF", ("turn_off", {})),
    ("switch", None, b"toggle", ("toggle", {})),
    ("light", None, b"ON", ("turn_on", {})),
    ("light", None, b'{"state": "ON", "brightness": 128}', ("turn_on", {"brightness": 128})),
    ("light", None, b'{"state": "ON", "color": {"r": 255, "g": 10, "b": 0}, "transition": 2}',
     ("turn_on", {"rgb_color": [255, 10, 0], "transition": 2})),
    ("light", None, b'{"state": "ON", "color_temp": 250}', ("turn_on", {"color_temp_kelvin": 4000})),  # mireds
    ("light", None, b'{"state": "ON", "color_temp": 2700}', ("turn_on", {"color_temp_kelvin": 2700})),  # kelvin
    ("light", None, b'{"state": "ON", "color_temp_kelvin": 6500}', ("turn_on", {"color_temp_kelvin": 6500})),
    ("light", None, b'{"state": "ON", "color": {"h": 120, "s": 100}}', ("turn_on", {"rgb_color": [0, 255, 0]})),
    ("light", None, b'{"state": "OFF", "transition": 3}', ("turn_off", {})),
    ("light", "brightness", b"77", ("turn_on", {"brightness": 77})),
    ("light", "rgb", b"1,2,3", ("turn_on", {"rgb_color": [1, 2, 3]})),
    ("lock", None, b"LOCK", ("lock", {})),
    ("lock", None, b'{"action": "UNLOCK", "code": "2468"}', ("unlock", {"code": "2468"})),
    ("lock", None, b'{"action": "OPEN"}', ("open", {})),
    ("cover", None, b"OPEN", ("open", {})),
    ("cover", None, b"CLOSE", ("close", {})),
    ("cover", None, b"STOP", ("stop", {})),
    ("cover", "position", b"40", ("set_position", {"position": 40})),
    ("cover", None, b'{"position": 60}', ("set_position", {"position": 60})),
    ("climate", "mode", b"cool", ("set_hvac_mode", {"hvac_mode": "cool"})),
    ("climate", "temperature", b"21.5", ("set_temperature", {"temperature": 21.5})),
    ("climate", "power", b"OFF", ("turn_off", {})),
    ("climate", "power", b"ON", ("turn_on", {})),
    ("number", None, b"50", ("set_value", {"value": 50})),
    ("number", None, b"47.5", ("set_value", {"value": 47.5})),
    ("select", None, b"eco", ("select_option", {"option": "eco"})),
    ("button", None, b"PRESS", ("press", {})),
])
def test_home_assistant_commands_become_the_hubs_and_pass_its_gate(capability, field, payload, expected):
    e = entry(capability, **({"min": 40, "max": 65, "step": 0.5} if capability == "number" else
                             {"options": ["eco", "comfort"]} if capability == "select" else {}))
    command = translate(e, None, field, payload)
    assert command == expected
    gate(e, *command)  # what the mapping gives, the gate takes


def test_the_xy_colour_of_a_json_light_command_becomes_rgb():
    command, args = translate(entry("light"), None, None, b'{"state": "ON", "color": {"x": 0.701, "y": 0.299}}')
    r, g, b = gate(entry("light"), command, args)["rgb_color"]
    assert r == 255 and g < 40 and b < 40  # the red corner of the gamut


@pytest.mark.parametrize("capability, field, payload, bad_field", [
    ("light", None, b'{"state": "ON", "brightness": 300}', "brightness"),
    ("light", None, b'{"state": "ON", "brightness": NaN}', "brightness"),
    ("cover", "position", b"half", "position"),
    ("number", None, b"70", "value"),  # above max: mapped as sent, refused by the gate
    ("number", None, b"nan", "value"),
    ("select", None, b"turbo", "option"),
    ("climate", "temperature", b"warm", "temperature"),
    ("climate", "mode", b"party", "hvac_mode"),
])
def test_a_wrong_value_is_mapped_as_sent_and_the_gate_names_it(capability, field, payload, bad_field):
    e = entry(capability, **({"min": 40, "max": 65, "step": 0.5} if capability == "number" else
                             {"options": ["eco", "comfort"]} if capability == "select" else {}))
    command = translate(e, None, field, payload)
    assert command is not None
    with pytest.raises(ValidationError) as info:
        gate(e, *command)
    assert info.value.errors()[0]["loc"][0] == bad_field


@pytest.mark.parametrize("capability, field, payload", [
    ("switch", None, b"MAYBE"),
    ("switch", "brightness", b"ON"),
    ("light", None, b'{"state": "DIM"}'),
    ("light", None, b"[1, 2]"),
    ("light", None, b"{not json"),
    ("light", None, b"[" * 15000 + b"]" * 15000),
    ("light", None, b"{" + b'"a":{' * 15000 + b"}" * 15001),
    ("light", "effect", b"rainbow"),
    ("lock", None, b"BREAK"),
    ("lock", None, b'{"action": 1}'),
    ("cover", None, b"WIGGLE"),
    ("climate", None, b"ON"),
    ("climate", "fan", b"high"),
    ("button", None, b"ON"),
    ("sensor", None, b"5"),
    ("binary_sensor", None, b"ON"),
    ("meter", None, b"5"),
    ("number", None, b""),
    ("switch", None, b"\xff\xfe"),
])
def test_what_is_no_home_assistant_command_is_none(capability, field, payload):
    assert translate(entry(capability), None, field, payload) is None


# --- the discovery configs ---------------------------------------------------------------------------

def config_of(e: EntityEntry, state: State | None = None, *, commandable: bool = True) -> tuple[str, dict]:
    built = ha_map.discovery_config(e, DEVICE, state, node_id="hub1", prefix="ruffhub/hub1",
                                    origin={"name": "Ruff Hub", "sw": "0.1.0"}, commandable=commandable)
    assert built is not None
    component, config = built
    HomeAssistant.check(component, config)
    json.dumps(config)  # what is published
    return component, config


def message(value, available=True, **attributes) -> bytes:
    return json.dumps(State("x.y", value, attributes, available).as_dict()).encode()


def test_sensor_classes_units_and_state_classes_are_home_assistants():
    assert config_of(entry("sensor", "co2"))[1]["device_class"] == "carbon_dioxide"
    assert config_of(entry("sensor", "co2"))[1]["unit_of_measurement"] == "ppm"  # the class's default unit
    assert config_of(entry("sensor", "power_factor"))[1].get("unit_of_measurement") is None
    assert config_of(entry("sensor", "energy", "Wh"))[1]["state_class"] == "total"
    assert config_of(entry("sensor", "humidity"))[1]["state_class"] == "measurement"
    count = config_of(entry("meter", "count"))[1]
    assert "device_class" not in count and "unit_of_measurement" not in count
    assert count["state_class"] == "total_increasing"
    water = config_of(entry("meter", "water"))[1]
    assert (water["device_class"], water["unit_of_measurement"]) == ("water", "L")


def test_value_templates_read_the_hubs_state_as_home_assistant_expects():
    _, sensor = config_of(entry("sensor", "temperature"))
    assert render_value(sensor["value_template"], message(21.5)) == "21.5"
    assert render_value(sensor["value_template"], message(None, available=False)) == "None"  # HA: unknown
    assert render_value(sensor["availability"][1]["value_template"], message(3, available=False)) == "offline"
    assert json.loads(render_value(sensor["json_attributes_template"], message(3, unit="°C"))) == {"unit": "°C"}
    _, stamp = config_of(entry("sensor", "timestamp"))
    assert render_value(stamp["value_template"], message(86400)) == "1970-01-02T00:00:00+00:00"
    assert render_value(stamp["value_template"], message(None)) == "None"
    _, cover = config_of(entry("cover", "valve"))
    assert "device_class" not in cover  # Home Assistant's valves are not covers
    assert render_value(cover["position_template"], message("open", position=40)) == "40"
    assert render_value(cover["position_template"], message("open")) == ""  # HA ignores an empty position


def test_a_light_that_takes_colour_temperatures_says_so_in_mireds():
    _, light = config_of(entry("light", supported_color_modes=["color_temp", "rgb"],
                               min_color_temp_kelvin=2000, max_color_temp_kelvin=6500))
    assert (light["min_mireds"], light["max_mireds"]) == (153, 500)
    assert render_value(light["color_temp_template"], message("on", color_temp_kelvin=4000)) == "250"
    assert "color_temp_template" not in config_of(entry("light"))[1]
    on = render(light["command_on_template"], {"state": "on", "color_temp": 250})
    assert translate(entry("light"), None, None, on.encode()) == ("turn_on", {"color_temp_kelvin": 4000})


def test_a_lock_asks_for_a_code_only_when_its_state_says_one_is_required():
    assert "code_format" not in config_of(entry("lock"))[1]
    _, lock = config_of(entry("lock"), State("lock.box_thing", "locked", {"code_required": True}))
    assert lock["code_format"]
    payload = render(lock["command_template"], {"value": lock["payload_unlock"], "code": 'a"b'})
    assert translate(entry("lock"), None, None, payload.encode()) == ("unlock", {"code": 'a"b'})


def test_names_drop_the_device_name_home_assistant_puts_in_front():
    assert config_of(entry("switch", name="Box"))[1]["name"] is None  # the device's main feature
    assert config_of(entry("sensor", name="Box power"))[1]["name"] == "Power"
    assert config_of(entry("sensor", name="Kitchen power"))[1]["name"] == "Kitchen power"


@pytest.mark.parametrize("capability, component", [
    ("switch", "binary_sensor"), ("light", "binary_sensor"), ("number", "sensor"), ("lock", "sensor"),
    ("cover", "sensor"), ("climate", "sensor"), ("select", "sensor"), ("sensor", "sensor"),
    ("binary_sensor", "binary_sensor"), ("meter", "sensor"),
])
def test_an_entity_the_broker_may_not_command_shows_read_only(capability, component):
    e = entry(capability, **({"options": ["a", "b"]} if capability == "select" else {}))
    got, config = config_of(e, commandable=False)
    assert got == component
    assert not [k for k in config if "command" in k or k.startswith("set_")]
    assert config["default_entity_id"] == f"{component}.box_thing"


def test_a_button_nobody_may_press_is_not_announced():
    assert ha_map.discovery_config(entry("button"), DEVICE, None, node_id="hub1", prefix="p",
                                   origin={}, commandable=False) is None
