"""Entities declared in configuration.yaml the way Home Assistant's ``mqtt:`` declares them, one
per component, against a real ``hub run`` and mosquitto: states followed, commands published as each
component's payloads; and a typo in a copied block reported by ``hub config check`` with its line."""

from __future__ import annotations

from mqtt_testing import hub_yaml
from tests.hubproc import HubProcess, run_cli

SHELLY = "shellies/shelly1-98CDAC1F03A4"

# Shelly Gen1 topics (https://shelly-api-docs.shelly.cloud/gen1/#mqtt) and Tasmota's telemetry, as in
# Home Assistant's own examples on switch.mqtt / sensor.mqtt; the rest in each component page's shape.
DECLARED = f"""\
  switch:
    - name: Garden pump
      unique_id: garden_pump
      state_topic: {SHELLY}/relay/0
      command_topic: {SHELLY}/relay/0/command
      payload_on: "on"
      payload_off: "off"
      availability_topic: {SHELLY}/online
      payload_available: "true"
      payload_not_available: "false"
  sensor:
    - name: Cellar temperature
      state_topic: tele/cellar/SENSOR
      value_template: "{{{{ value_json.DS18B20.Temperature | float | round(1) }}}}"
      unit_of_measurement: "°C"
      device_class: temperature
      json_attributes_topic: tele/cellar/SENSOR
      json_attributes_template: "{{{{ value_json.DS18B20 | tojson }}}}"
  binary_sensor:
    - name: Window
      state_topic: home/window
      device_class: window
      payload_on: open
      payload_off: closed
    - name: Hall motion
      state_topic: home/motion
      device_class: motion
      off_delay: 1
    - name: Porch presence
      state_topic: home/porch
      expire_after: 1
  light:
    - name: Desk lamp
      state_topic: home/desk/state
      command_topic: home/desk/set
      brightness_state_topic: home/desk/brightness
      brightness_command_topic: home/desk/brightness/set
      brightness_scale: 100
      on_command_type: first
  button:
    - name: Doorbell test
      command_topic: home/bell/ring
      payload_press: RING
  lock:
    - name: Front lock
      state_topic: home/lock/state
      command_topic: home/lock/set
  cover:
    - name: Blind
      command_topic: home/blind/set
      position_topic: home/blind/position
      set_position_topic: home/blind/position/set
  climate:
    - name: Hall thermostat
      mode_command_topic: home/hvac/mode/set
      mode_state_topic: home/hvac/mode
      modes: ["off", "heat"]
      temperature_command_topic: home/hvac/target/set
      current_temperature_topic: home/hvac/current
      min_temp: 10
      max_temp: 28
  number:
    - name: Fan speed
      command_topic: home/fan/speed/set
      state_topic: home/fan/speed
      min: 0
      max: 5
  select:
    - name: Heat pump mode
      command_topic: home/hp/mode/set
      state_topic: home/hp/mode
      options: [eco, comfort, boost]
"""


def test_declared_entities_follow_their_topics_and_publish_their_payloads(tmp_path, mosquitto, mqtt_client):
    broker = mqtt_client(subscribe=["home/#", "shellies/#"])
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(hub_yaml(mosquitto.port, extra=DECLARED))
    assert run_cli(data, "config", "check").returncode == 0
    hub = HubProcess(data).start()

    def state(entity_id: str, value, timeout: float = 10):
        return hub.wait_for(lambda: (lambda s: s if s[0] == 200 and s[1]["state"] == value else None)(
            hub.request("GET", f"/api/states/{entity_id}")), timeout, f"{entity_id} = {value!r}")[1]

    def command(entity_id: str, name: str, args: dict | None = None) -> None:
        hub.post(f"/api/entities/{entity_id}/commands/{name}", args or {})

    try:
        entities = {e["entity_id"]: e for e in hub.get("/api/entities") if e["platform"] == "mqtt"}
        assert {e: entities[e]["capability"] for e in entities} == {
            "switch.garden_pump": "switch", "sensor.cellar_temperature": "sensor", "binary_sensor.window": "binary_sensor",
            "binary_sensor.hall_motion": "binary_sensor", "binary_sensor.porch_presence": "binary_sensor",
            "light.desk_lamp": "light", "button.doorbell_test": "button", "lock.front_lock": "lock", "cover.blind": "cover",
            "climate.hall_thermostat": "climate", "number.fan_speed": "number", "select.heat_pump_mode": "select"}
        assert entities["switch.garden_pump"]["device_id"] == "mqtt:ha:garden_pump"

        # Shelly Gen1: unavailable until it says it is online, then on/off both ways.
        state("switch.garden_pump", "unavailable")
        broker.publish(f"{SHELLY}/online", "true", retain=True)
        broker.publish(f"{SHELLY}/relay/0", "off", retain=True)
        state("switch.garden_pump", "off")
        command("switch.garden_pump", "turn_on")
        assert broker.wait(f"{SHELLY}/relay/0/command") == b"on"
        broker.publish(f"{SHELLY}/relay/0", "on")
        state("switch.garden_pump", "on")
        broker.publish(f"{SHELLY}/online", "false", retain=True)
        state("switch.garden_pump", "unavailable")

        broker.publish("tele/cellar/SENSOR", {"Time": "2026-12-07T12:00:00",
                                               "DS18B20": {"Id": "0316A2", "Temperature": 11.46, "value": 1}})
        cellar = state("sensor.cellar_temperature", 11.5)
        assert cellar["attributes"]["Id"] == "0316A2" and cellar["attributes"]["unit"] == "°C"
        broker.publish("home/window", "open")
        state("binary_sensor.window", "on")
        def seen(entity_id: str) -> list:
            return [s["state"] for s in hub.get(f"/api/history/{entity_id}")["states"]]

        broker.publish("home/motion", "ON")  # off_delay: off again by itself
        broker.publish("home/porch", "ON")  # expire_after: unavailable without a new reading
        state("binary_sensor.hall_motion", "off")
        state("binary_sensor.porch_presence", "unavailable")
        assert seen("binary_sensor.hall_motion")[-2:] == ["on", "off"]
        assert seen("binary_sensor.porch_presence")[-2:] == ["on", "unavailable"]
        broker.publish("home/porch", "OFF")
        state("binary_sensor.porch_presence", "off")

        # No state topic for the cover and the thermostat's target: optimistic, as in Home Assistant.
        command("light.desk_lamp", "turn_on", {"brightness": 255})
        assert broker.wait("home/desk/set") == b"ON" and broker.wait("home/desk/brightness/set") == b"100"
        order = [t for t, _, _ in broker.messages if t.startswith("home/desk/")]
        assert order[:2] == ["home/desk/set", "home/desk/brightness/set"]  # on_command_type: first
        broker.publish("home/desk/state", "ON")
        broker.publish("home/desk/brightness", "50")
        hub.wait_for(lambda: hub.get("/api/states/light.desk_lamp")["attributes"].get("brightness") == 128, 10, "brightness")
        command("button.doorbell_test", "press")
        assert broker.wait("home/bell/ring") == b"RING"
        command("lock.front_lock", "unlock", {"code": "1234"})
        assert broker.wait("home/lock/set") == b"UNLOCK"
        broker.publish("home/lock/state", "UNLOCKED")
        state("lock.front_lock", "unlocked")
        assert "1234" not in hub.log()
        command("cover.blind", "set_position", {"position": 40})
        assert broker.wait("home/blind/position/set") == b"40"
        command("cover.blind", "close")
        assert broker.wait("home/blind/set") == b"CLOSE"
        broker.publish("home/blind/position", "0")
        state("cover.blind", "closed")
        command("climate.hall_thermostat", "set_hvac_mode", {"hvac_mode": "heat"})
        assert broker.wait("home/hvac/mode/set") == b"heat"
        broker.publish("home/hvac/mode", "heat")
        state("climate.hall_thermostat", "heat")
        command("climate.hall_thermostat", "set_temperature", {"temperature": 21})
        assert broker.wait("home/hvac/target/set") == b"21"
        status, body = hub.request("POST", "/api/entities/climate.hall_thermostat/commands/set_temperature",
                                   {"temperature": 30})
        assert status == 422, body  # max_temp 28
        command("number.fan_speed", "set_value", {"value": 3})
        assert broker.wait("home/fan/speed/set") == b"3"
        command("select.heat_pump_mode", "select_option", {"option": "boost"})
        assert broker.wait("home/hp/mode/set") == b"boost"
        broker.publish("home/hp/mode", "boost")
        state("select.heat_pump_mode", "boost")
    finally:
        hub.stop()

    # An entity taken out of the configuration leaves the hub at the next start; the others stay.
    (data / "configuration.yaml").write_text(hub_yaml(mosquitto.port, extra=DECLARED.split("  select:")[0]))
    hub = HubProcess(data).start()
    try:
        assert hub.request("GET", "/api/entities/select.heat_pump_mode")[0] == 404
        assert hub.get("/api/entities/number.fan_speed")["device_id"] == "mqtt:ha:number.Fan_speed"
    finally:
        hub.stop()


def test_a_typo_in_a_declared_entity_is_reported_with_its_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    text = hub_yaml(1883, extra=DECLARED.replace("      state_topic: home/window", "      state_topc: home/window")
                    .replace('      options: [eco, comfort, boost]', '      options: [eco, comfort, boost]\n      value_template: "{{ value | map(1) }}"'))
    (data / "configuration.yaml").write_text(text)
    out = run_cli(data, "config", "check")
    assert out.returncode == 1
    line = text.splitlines().index("      state_topc: home/window") + 1
    assert f"configuration.yaml:{line}" in out.stdout and "mqtt.binary_sensor[0].state_topc" in out.stdout, out.stdout
    assert "mqtt.select[0].value_template" in out.stdout and "'map' is not supported" in out.stdout, out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_entities_are_unavailable_while_the_broker_is_away(tmp_path, mosquitto, mqtt_client):
    broker = mqtt_client(subscribe=None)
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(hub_yaml(mosquitto.port, extra=DECLARED.split("  sensor:")[0]))
    hub = HubProcess(data).start()
    try:
        broker.publish(f"{SHELLY}/online", "true", retain=True)
        broker.publish(f"{SHELLY}/relay/0", "on", retain=True)
        hub.wait_for(lambda: hub.get("/api/states/switch.garden_pump")["state"] == "on", 10, "the pump on")
        broker.close()
        mosquitto.stop()
        hub.wait_for(lambda: hub.get("/api/states/switch.garden_pump")["state"] == "unavailable", 15, "unavailable")
        mosquitto.start()  # same port; the retained state was saved by the clean stop
        hub.wait_for(lambda: hub.get("/api/states/switch.garden_pump")["state"] == "on", 30, "back on")
    finally:
        hub.stop()
