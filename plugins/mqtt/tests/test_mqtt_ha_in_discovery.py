"""Devices that announce themselves with Home Assistant discovery, adopted by a real ``hub run``
from a real mosquitto: Zigbee2MQTT, Tasmota, ESPHome and Shelly payloads as those projects publish
them (ha_devices.py says where each comes from), answered by emulators of their firmware."""

from __future__ import annotations

import json

import pytest

import ha_devices as D
from mqtt_testing import hub_yaml
from tests.hubproc import HubProcess


def _start(tmp_path, port: int, extra: str = "") -> HubProcess:
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(hub_yaml(port, extra=extra))
    return HubProcess(data).start()


def _entity(hub: HubProcess, entity_id: str, predicate=lambda e: True, timeout: float = 10.0) -> dict:
    def get():
        status, body = hub.request("GET", f"/api/entities/{entity_id}")
        return body if status == 200 and predicate(body) else None
    return hub.wait_for(get, timeout, f"{entity_id} as expected")


def _value(hub: HubProcess, entity_id: str, value, timeout: float = 10.0) -> dict:
    return _entity(hub, entity_id, lambda e: e["state"] and e["state"]["state"] == value, timeout)


@pytest.fixture
def devices(mosquitto):
    made = [D.zigbee2mqtt(mosquitto.port), D.tasmota(mosquitto.port), D.esphome(mosquitto.port), D.shelly(mosquitto.port)]
    z2m, tas, esp, shelly = made
    z2m.announce(D.Z2M_CONFIGS)
    tas.announce(D.TASMOTA_CONFIGS)
    esp.announce(D.ESPHOME_CONFIGS)
    shelly.announce(D.SHELLY_CONFIGS)
    yield made
    for emulator in made:
        emulator.close()


def test_the_four_projects_devices_appear_follow_their_states_and_take_commands(tmp_path, mosquitto, devices):
    z2m, tas, esp, shelly = devices
    hub = _start(tmp_path, mosquitto.port)
    try:
        # --- Zigbee2MQTT: grouped by device.identifiers, with classes and units ---------------------
        plug = _value(hub, "switch.kitchen_plug", "off")
        assert plug["capability"] == "switch" and plug["device_id"] == "mqtt:ha:zigbee2mqtt_0x00124b0022aabb01"
        temperature = _value(hub, "sensor.bedroom_climate_temperature", 21.5)
        assert (temperature["unit"], temperature["device_class"]) == ("°C", "temperature")
        humidity = _value(hub, "sensor.bedroom_climate_humidity", 48.2)
        assert humidity["unit"] == "%" and humidity["device_id"] == temperature["device_id"]
        device = hub.get(f"/api/devices/{temperature['device_id']}")
        assert device["manufacturer"] == "Aqara" and device["name"] == "Bedroom climate"
        assert sorted(e["entity_id"] for e in device["entities"]) == [
            "sensor.bedroom_climate_battery", "sensor.bedroom_climate_humidity", "sensor.bedroom_climate_temperature"]
        assert _value(hub, "binary_sensor.front_door_contact", "off")["device_class"] == "door"  # contact true: closed
        _value(hub, "light.hall_bulb", "off")
        assert "skipped: a text sensor" in hub.log() and f"{D.P}/sensor/{D.Z2M_TH[0]}/action/config" in hub.log()

        # A command through the hub's API reaches the bridge as Z2M's JSON, and the echoed state comes back.
        hub.post("/api/entities/switch.kitchen_plug/commands/turn_on", {})
        assert z2m.wait_command("zigbee2mqtt/Kitchen plug/set") == b"ON"
        _value(hub, "switch.kitchen_plug", "on")
        hub.post("/api/entities/light.hall_bulb/commands/turn_on", {"brightness": 128, "color_temp_kelvin": 2700})
        assert json.loads(z2m.wait_command("zigbee2mqtt/Hall bulb/set")) == {"state": "ON", "brightness": 127,
                                                                             "color_temp": 370}
        bulb = _value(hub, "light.hall_bulb", "on")
        assert bulb["state"]["attributes"]["brightness"] == 128 and bulb["state"]["attributes"]["color_temp_kelvin"] == 2703
        z2m.publish("zigbee2mqtt/Front door", {"contact": False, "battery": 100})
        _value(hub, "binary_sensor.front_door_contact", "on")
        # The bridge going offline makes all its devices unavailable (availability_mode: all).
        z2m.publish("zigbee2mqtt/bridge/state", {"state": "offline"}, retain=True)
        _value(hub, "switch.kitchen_plug", "unavailable")
        _value(hub, "sensor.bedroom_climate_temperature", "unavailable")
        z2m.publish("zigbee2mqtt/bridge/state", {"state": "online"}, retain=True)
        _value(hub, "switch.kitchen_plug", "on")

        # --- Tasmota: abbreviations, RESULT JSON, LWT -------------------------------------------------
        pump = _entity(hub, "switch.pump", lambda e: e["state"]["available"])
        assert hub.get(f"/api/devices/{pump['device_id']}")["manufacturer"] == "Tasmota"
        tas.publish(f"tele/{D.TASMOTA_TOPIC}/SENSOR", {"Time": "2026-12-07T12:00:00",
                                                       "AM2301": {"Temperature": 23.4, "Humidity": 40.1}, "TempUnit": "C"})
        assert _value(hub, "sensor.pump_am2301_temperature", 23.4)["device_id"] == pump["device_id"]
        hub.post("/api/entities/switch.pump/commands/toggle", {})
        assert tas.wait_command(f"cmnd/{D.TASMOTA_TOPIC}/POWER") == b"ON"
        _value(hub, "switch.pump", "on")
        tas.crash()  # the broker publishes its last will: tele/pump/LWT Offline
        _value(hub, "switch.pump", "unavailable", timeout=60)
        _value(hub, "sensor.pump_am2301_temperature", "unavailable")

        # --- ESPHome: plain payloads, <node>/status ---------------------------------------------------
        relay = _value(hub, "switch.livingroom_relay", "off")
        assert hub.get(f"/api/devices/{relay['device_id']}")["model"] == "esp32dev"
        esp.publish(f"{D.ESP_NODE}/sensor/temperature/state", "19.75")
        assert _value(hub, "sensor.livingroom_temperature", 19.75)["unit"] == "°C"
        hub.post("/api/entities/switch.livingroom_relay/commands/turn_on", {})
        assert esp.wait_command(f"{D.ESP_NODE}/switch/relay/command") == b"ON"
        _value(hub, "switch.livingroom_relay", "on")
        setpoint = _value(hub, "number.livingroom_setpoint", 20.0)
        assert setpoint["options"] == {"min": 5.0, "max": 30.0, "step": 0.5, "mode": "auto"}
        hub.post("/api/entities/number.livingroom_setpoint/commands/set_value", {"value": 21.5})
        assert esp.wait_command(f"{D.ESP_NODE}/number/setpoint/command") == b"21.5"
        _value(hub, "number.livingroom_setpoint", 21.5)
        status, body = hub.request("POST", "/api/entities/number.livingroom_setpoint/commands/set_value", {"value": 40})
        assert status == 422, body  # the device's announced range is the gate's

        # --- Shelly: "~" base topic, lower-case payloads ----------------------------------------------
        name = D.SHELLY_ID.replace("-", "_")
        # The script publishes on changes only, not retained: known once the relay moves.
        assert _entity(hub, f"switch.{name}_relay_0", lambda e: e["state"]["available"])["state"]["value"] is None
        hub.post(f"/api/entities/switch.{name}_relay_0/commands/turn_on", {})
        assert shelly.wait_command(f"shellies/{D.SHELLY_ID}/relay/0/command") == b"on"
        _value(hub, f"switch.{name}_relay_0", "on")
        shelly.publish(f"shellies/{D.SHELLY_ID}/temperature", "41.3")
        _value(hub, f"sensor.{name}_temperature", 41.3)

        # --- removal: an empty retained config removes the entity, then the device ---------------------
        z2m.publish(f"{D.P}/sensor/{D.Z2M_TH[0]}/humidity/config", b"", retain=True)
        hub.wait_for(lambda: hub.request("GET", "/api/entities/sensor.bedroom_climate_humidity")[0] == 404, 10,
                     "humidity removed")
        assert _value(hub, "sensor.bedroom_climate_temperature", 21.5)["device_id"] == temperature["device_id"]
        for suffix in ("temperature", "battery"):
            z2m.publish(f"{D.P}/sensor/{D.Z2M_TH[0]}/{suffix}/config", b"", retain=True)
        hub.wait_for(lambda: hub.request("GET", f"/api/devices/{temperature['device_id']}")[0] == 404, 10,
                     "device removed")
        # A changed config updates the entity in place.
        changed = dict(D.ESPHOME_CONFIGS[f"{D.P}/sensor/{D.ESP_NODE}/temperature/config"], unit_of_meas="°F")
        esp.publish(f"{D.P}/sensor/{D.ESP_NODE}/temperature/config", changed, retain=True)
        updated = _entity(hub, "sensor.livingroom_temperature", lambda e: e["unit"] == "°F")
        assert updated["state"]["state"] == 19.75  # the same entity, keeping what it knew
    finally:
        hub.stop()
