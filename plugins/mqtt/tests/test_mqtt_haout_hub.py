"""Home Assistant discovery of a real ``hub run`` with the demo home, on a real mosquitto, read by a
Home Assistant emulator (haout_emulator.py): what Home Assistant would show, and what its commands do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from haout_emulator import HomeAssistant
from mqtt_testing import hub_yaml
from tests.hubproc import HubProcess

KIT = Path(__file__).with_name("haout_kit.py")

#: The demo's entities (and the kit's garage) as Home Assistant must adopt them:
#: default_entity_id -> (component, expected keys).
EXPECTED = {
    "switch.smart_plug": ("switch", {"device_class": "outlet", "name": None}),
    "sensor.smart_plug_power": ("sensor", {"unit_of_measurement": "W", "device_class": "power",
                                           "state_class": "measurement", "name": "Power"}),
    "sensor.smart_plug_energy": ("sensor", {"unit_of_measurement": "kWh", "device_class": "energy",
                                            "state_class": "total_increasing", "name": "Energy"}),
    "climate.thermostat": ("climate", {"modes": ["off", "heat", "cool", "auto"], "min_temp": 5.0, "max_temp": 35.0,
                                       "temperature_unit": "C"}),
    "sensor.room_temperature": ("sensor", {"unit_of_measurement": "°C", "device_class": "temperature",
                                           "state_class": "measurement", "name": "Room temperature"}),
    "lock.front_door": ("lock", {"code_format": r"^.{1,32}$", "name": None}),
    "light.living_room": ("light", {"schema": "template", "name": None}),
    "binary_sensor.hallway_motion": ("binary_sensor", {"device_class": "motion", "payload_on": "on"}),
    "number.water_heater_set_point": ("number", {"min": 40.0, "max": 65.0, "step": 0.5, "mode": "slider",
                                                 "unit_of_measurement": "°C", "device_class": "temperature"}),
    "select.water_heater_mode": ("select", {"options": ["eco", "comfort", "boost", "away"]}),
    "cover.garage_door": ("cover", {"device_class": "garage",
                                    "set_position_topic": "ruffhub/hub1/set/cover.garage_door/position"}),
    "button.garage_remove": ("button", {"payload_press": "PRESS"}),
}


def start_hub(tmp_path: Path, port: int, extra: str, *, data_name: str = "data") -> HubProcess:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    shutil.copy(KIT, plugins / "haout_kit.py")
    data = tmp_path / data_name
    data.mkdir(exist_ok=True)
    (data / "configuration.yaml").write_text(hub_yaml(port, "hub1", extra).replace(
        "  seed: 1\n", "  seed: 1\n  lock_code: '2468'\n", 1))
    return HubProcess(data, plugins_dir=plugins).start()


@pytest.fixture
def home_assistant(mosquitto):
    ha = HomeAssistant(mosquitto.port)
    yield ha
    ha.close()


def test_home_assistant_adopts_the_demo_and_commands_it(tmp_path, mosquitto, home_assistant):
    ha = home_assistant
    hub = start_hub(tmp_path, mosquitto.port,
                    '  commands:\n    include: ["*"]\n  publish:\n    exclude: ["sensor.outside_temperature"]\n')
    try:
        found = ha.wait_configs(set(EXPECTED))
        for entity_id, (component, keys) in EXPECTED.items():
            got_component, config = found[entity_id]
            assert got_component == component, entity_id
            ha.check(component, config)
            assert {k: config.get(k) for k in keys} == keys, entity_id
            assert config["device"]["via_device"] == "ruffhub_hub1"
            assert config["availability_mode"] == "all"
        assert "sensor.outside_temperature" not in found  # publish.exclude hides it from Home Assistant
        # The hub itself is a device, which every other one is connected through.
        hub_device = found["binary_sensor.ruffhub_hub1_status"][1]
        assert hub_device["device"]["identifiers"] == ["ruffhub_hub1"]
        assert ha.read(hub_device) == "online"
        plug = found["sensor.smart_plug_power"][1]
        assert plug["device"]["manufacturer"] == "Ruff Demo" and plug["device"]["model"] == "Plug P1"

        switch = found["switch.smart_plug"][1]
        ha.wait_read(switch, "on")
        assert ha.available(switch)
        ha.send(switch, "command_topic", switch["payload_off"])
        ha.wait_read(switch, "off")

        light = found["light.living_room"][1]
        ha.light_on(light, brightness=128, red=255, green=0, blue=0)
        ha.wait_read(light, "on", template_key="state_template")
        ha.wait_read(light, "128", template_key="brightness_template")
        assert ha.read(light, template_key="red_template") == "255"
        ha.light_off(light, transition=2)
        ha.wait_read(light, "off", template_key="state_template")
        assert ha.read(light, template_key="brightness_template") == "0"  # Home Assistant ignores 0

        lock = found["lock.front_door"][1]
        ha.wait_read(lock, "locked")
        ha.lock(lock, "unlock", code="2468")
        ha.wait_read(lock, "unlocked")
        ha.lock(lock, "lock")
        ha.wait_read(lock, "locked")

        thermostat = found["climate.thermostat"][1]
        ha.send(thermostat, "mode_command_topic", "cool")
        ha.wait_read(thermostat, "cool", "mode_state_topic")
        ha.send(thermostat, "temperature_command_topic", "22.5")
        ha.wait_read(thermostat, "22.5", "temperature_state_topic")
        assert float(ha.read(thermostat, "current_temperature_topic")) > -50
        assert ha.read(thermostat, "action_topic") in ("heating", "cooling", "idle", "off")

        number = found["number.water_heater_set_point"][1]
        ha.send(number, "command_topic", "50")
        ha.wait_read(number, "50.0")
        select = found["select.water_heater_mode"][1]
        ha.send(select, "command_topic", "eco")
        ha.wait_read(select, "eco")

        cover = found["cover.garage_door"][1]
        ha.send(cover, "set_position_topic", "40")
        ha.wait_read(cover, "40", "position_topic")
        ha.wait_read(cover, "open")

        # Home Assistant restarted on an emptied broker: its birth message brings every config back.
        sensor_topic = "homeassistant/sensor/hub1/sensor_room_temperature/config"
        ha.client.publish(sensor_topic, b"", retain=True)
        ha.client.wait(sensor_topic, lambda p: p == b"")
        ha.client.publish("homeassistant/status", "online")
        ha.client.wait(sensor_topic, lambda p: p != b"")

        # Pressing "remove" removes the garage device from the hub: Home Assistant loses its entities.
        ha.send(found["button.garage_remove"][1], "command_topic", "PRESS")
        for topic in ("homeassistant/cover/hub1/cover_garage_door/config",
                      "homeassistant/button/hub1/button_garage_remove/config"):
            ha.client.wait(topic, lambda p: p == b"")
        assert "cover.garage_door" not in ha.configs() and "switch.smart_plug" in ha.configs()
    finally:
        hub.kill()
    # The hub's last will: Home Assistant shows every entity unavailable.
    ha.client.wait("ruffhub/hub1/status", lambda p: p == b"offline", timeout=30)
    assert not ha.available(switch)


def test_what_is_no_longer_published_leaves_home_assistant_and_read_only_entities_show_as_such(
        tmp_path, mosquitto, home_assistant):
    """An entity excluded since the last run (or removed while the hub was away) leaves Home
    Assistant when the hub comes back; an entity the broker may not command shows read-only."""
    ha = home_assistant
    hub = start_hub(tmp_path, mosquitto.port, "")
    try:
        found = ha.wait_configs({"binary_sensor.living_room", "binary_sensor.smart_plug", "sensor.front_door",
                                 "sensor.thermostat", "sensor.water_heater_set_point", "sensor.water_heater_mode"})
        # commands.include is empty by default: nothing may be commanded, so nothing offers a command.
        for component, config in found.values():
            assert not any(key.endswith("command_topic") for key in config), config
            ha.check(component, config)
        assert found["sensor.water_heater_set_point"][1]["unit_of_measurement"] == "°C"
        ha.wait_read(found["sensor.front_door"][1], "locked")
        assert "button.garage_remove" not in found  # a button nobody may press has nothing to show
    finally:
        hub.stop()

    hub = start_hub(tmp_path, mosquitto.port,
                    '  commands:\n    include: ["switch.*"]\n  publish:\n    exclude: ["light.*"]\n')
    try:
        ha.client.wait("homeassistant/binary_sensor/hub1/light_living_room/config", lambda p: p == b"")
        ha.client.wait("homeassistant/binary_sensor/hub1/switch_smart_plug/config", lambda p: p == b"")
        found = ha.wait_configs({"switch.smart_plug"})
        assert found["switch.smart_plug"][0] == "switch"
        assert "light.living_room" not in found and "binary_sensor.living_room" not in found
        assert "sensor.outside_temperature" in found
    finally:
        hub.stop()
