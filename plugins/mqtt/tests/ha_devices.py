"""Discovery configs and state payloads as Zigbee2MQTT, Tasmota, ESPHome and Shelly publish them,
and small emulators that answer commands the way each firmware does.

Where each payload's shape comes from:

* Zigbee2MQTT: https://www.zigbee2mqtt.io/guide/usage/integrations/home_assistant.html and its
  lib/extension/homeassistant.ts: ``homeassistant/<component>/<ieee>/<object>/config``, ``name: null``
  for a device's main entity, ``availability`` as a list of the bridge's and the device's topics with
  ``{{ value_json.state }}``, ``origin`` Zigbee2MQTT, JSON state on ``zigbee2mqtt/<friendly name>``,
  commands as JSON on ``.../set`` (a plain ``ON`` there is read as ``{"state": "ON"}``, which its
  switch's ``payload_on`` relies on), the light in the ``json`` schema with ``brightness_scale`` 254.
  The bridge publishes the device's whole state again after each ``/set`` (its MQTT docs).
* Tasmota with ``SetOption19 1`` (https://tasmota.github.io/docs/Home-Assistant/ and
  tasmota/xdrv_12_home_assistant.ino): abbreviated configs (``stat_t``, ``cmd_t``, ``avty_t``,
  ``pl_avail: Online``), ``val_tpl`` ``{{value_json.POWER}}`` on ``stat/<topic>/RESULT``, sensors from
  ``tele/<topic>/SENSOR`` with ``{{value_json['AM2301'].Temperature}}``, ``cmnd/<topic>/POWER`` ON/OFF/
  TOGGLE answered on ``stat/<topic>/RESULT`` and ``stat/<topic>/POWER``, LWT ``tele/<topic>/LWT``
  Online/Offline (https://tasmota.github.io/docs/MQTT/).
* ESPHome (https://esphome.io/components/mqtt.html, esphome/components/mqtt/mqtt_component.cpp):
  ``homeassistant/<component>/<node>/<object>/config``, ``<node>/<component>/<object>/state`` and
  ``.../command``, ``<node>/status`` online/offline, ``dev.ids`` a plain string.
* Shelly Gen2's HA-discovery script (shelly-script-examples, "Shelly 1 Plus MQTT Auto Discovery in
  Home Assistant + Gen1 MQTT paths"): ``homeassistant/switch/<id>-relay-0/config`` with ``~`` as
  ``shellies/<id>/relay/0``, ``stat_t: "~"``, ``cmd_t: "~/command"``, payloads on/off, and an empty
  ``val_tpl`` on its temperature sensor. Gen1 topics (https://shelly-api-docs.shelly.cloud/gen1/#mqtt):
  ``shellies/<id>/relay/0`` on/off, ``.../relay/0/command``, ``shellies/<id>/online`` true/false.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as paho

P = "homeassistant"

# --- Zigbee2MQTT ------------------------------------------------------------------------------------
Z2M_ORIGIN = {"name": "Zigbee2MQTT", "sw": "1.40.2", "url": "https://www.zigbee2mqtt.io"}


def _z2m_availability(friendly: str) -> list[dict]:
    return [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"},
            {"topic": f"zigbee2mqtt/{friendly}/availability", "value_template": "{{ value_json.state }}"}]


def _z2m_device(ieee: str, friendly: str, model: str, vendor: str) -> dict:
    return {"identifiers": [f"zigbee2mqtt_{ieee}"], "manufacturer": vendor, "model": model, "name": friendly,
            "via_device": "zigbee2mqtt_bridge_0x00124b00aabbccdd", "sw_version": "2.0.022"}


Z2M_PLUG = ("0x00124b0022aabb01", "Kitchen plug")
Z2M_TH = ("0x00158d0001aabb02", "Bedroom climate")
Z2M_DOOR = ("0x00158d0001aabb03", "Front door")
Z2M_BULB = ("0x0017880100aabb04", "Hall bulb")

Z2M_CONFIGS: dict[str, dict] = {
    f"{P}/switch/{Z2M_PLUG[0]}/switch/config": {
        "availability": _z2m_availability(Z2M_PLUG[1]), "availability_mode": "all",
        "command_topic": f"zigbee2mqtt/{Z2M_PLUG[1]}/set",
        "device": _z2m_device(Z2M_PLUG[0], Z2M_PLUG[1], "E1603/E1702/E1708", "IKEA"),
        "name": None, "object_id": "kitchen_plug", "origin": Z2M_ORIGIN, "payload_off": "OFF", "payload_on": "ON",
        "state_topic": f"zigbee2mqtt/{Z2M_PLUG[1]}", "unique_id": f"{Z2M_PLUG[0]}_switch_zigbee2mqtt",
        "value_template": "{{ value_json.state }}",
    },
    f"{P}/sensor/{Z2M_TH[0]}/temperature/config": {
        "availability": _z2m_availability(Z2M_TH[1]), "availability_mode": "all",
        "device": _z2m_device(Z2M_TH[0], Z2M_TH[1], "WSDCGQ11LM", "Aqara"), "device_class": "temperature",
        "enabled_by_default": True, "object_id": "bedroom_climate_temperature", "origin": Z2M_ORIGIN,
        "state_class": "measurement", "state_topic": f"zigbee2mqtt/{Z2M_TH[1]}",
        "unique_id": f"{Z2M_TH[0]}_temperature_zigbee2mqtt", "unit_of_measurement": "°C",
        "value_template": "{{ value_json.temperature }}",
    },
    f"{P}/sensor/{Z2M_TH[0]}/humidity/config": {
        "availability": _z2m_availability(Z2M_TH[1]), "availability_mode": "all",
        "device": _z2m_device(Z2M_TH[0], Z2M_TH[1], "WSDCGQ11LM", "Aqara"), "device_class": "humidity",
        "object_id": "bedroom_climate_humidity", "origin": Z2M_ORIGIN, "state_class": "measurement",
        "state_topic": f"zigbee2mqtt/{Z2M_TH[1]}", "unique_id": f"{Z2M_TH[0]}_humidity_zigbee2mqtt",
        "unit_of_measurement": "%", "value_template": "{{ value_json.humidity }}",
    },
    f"{P}/sensor/{Z2M_TH[0]}/battery/config": {
        "availability": _z2m_availability(Z2M_TH[1]), "availability_mode": "all",
        "device": _z2m_device(Z2M_TH[0], Z2M_TH[1], "WSDCGQ11LM", "Aqara"), "device_class": "battery",
        "entity_category": "diagnostic", "object_id": "bedroom_climate_battery", "origin": Z2M_ORIGIN,
        "state_class": "measurement", "state_topic": f"zigbee2mqtt/{Z2M_TH[1]}",
        "unique_id": f"{Z2M_TH[0]}_battery_zigbee2mqtt", "unit_of_measurement": "%",
        "value_template": "{{ value_json.battery }}",
    },
    # Z2M's "action" sensor is text (no unit, no class): this hub's sensors are numeric, so skipped.
    f"{P}/sensor/{Z2M_TH[0]}/action/config": {
        "device": _z2m_device(Z2M_TH[0], Z2M_TH[1], "WSDCGQ11LM", "Aqara"), "icon": "mdi:gesture-double-tap",
        "object_id": "bedroom_climate_action", "origin": Z2M_ORIGIN, "state_topic": f"zigbee2mqtt/{Z2M_TH[1]}",
        "unique_id": f"{Z2M_TH[0]}_action_zigbee2mqtt", "value_template": "{{ value_json.action }}",
    },
    f"{P}/binary_sensor/{Z2M_DOOR[0]}/contact/config": {
        "availability": _z2m_availability(Z2M_DOOR[1]), "availability_mode": "all",
        "device": _z2m_device(Z2M_DOOR[0], Z2M_DOOR[1], "MCCGQ11LM", "Aqara"), "device_class": "door",
        "object_id": "front_door_contact", "origin": Z2M_ORIGIN, "payload_off": True, "payload_on": False,
        "state_topic": f"zigbee2mqtt/{Z2M_DOOR[1]}", "unique_id": f"{Z2M_DOOR[0]}_contact_zigbee2mqtt",
        "value_template": "{{ value_json.contact }}",
    },
    f"{P}/light/{Z2M_BULB[0]}/light/config": {
        "availability": _z2m_availability(Z2M_BULB[1]), "availability_mode": "all", "brightness": True,
        "brightness_scale": 254, "command_topic": f"zigbee2mqtt/{Z2M_BULB[1]}/set",
        "device": _z2m_device(Z2M_BULB[0], Z2M_BULB[1], "9290022166", "Philips"), "effect": True,
        "effect_list": ["blink", "breathe", "okay"], "max_mireds": 454, "min_mireds": 250, "name": None,
        "object_id": "hall_bulb", "origin": Z2M_ORIGIN, "schema": "json", "state_topic": f"zigbee2mqtt/{Z2M_BULB[1]}",
        "supported_color_modes": ["color_temp"], "unique_id": f"{Z2M_BULB[0]}_light_zigbee2mqtt",
    },
}

# --- Tasmota (SetOption19 1) -----------------------------------------------------------------------
TASMOTA_TOPIC, TASMOTA_MAC = "pump", "A4CF12"
_TASMOTA_DEV = {"ids": [TASMOTA_MAC], "name": "Pump", "mdl": "Sonoff Basic", "sw": "9.1.0", "mf": "Tasmota"}
TASMOTA_CONFIGS: dict[str, dict] = {
    f"{P}/switch/{TASMOTA_MAC}_RL_1/config": {
        "name": "Pump", "stat_t": f"stat/{TASMOTA_TOPIC}/RESULT", "avty_t": f"tele/{TASMOTA_TOPIC}/LWT",
        "pl_avail": "Online", "pl_not_avail": "Offline", "cmd_t": f"cmnd/{TASMOTA_TOPIC}/POWER",
        "val_tpl": "{{value_json.POWER}}", "pl_off": "OFF", "pl_on": "ON", "uniq_id": f"{TASMOTA_MAC}_RL_1",
        "dev": _TASMOTA_DEV,
    },
    f"{P}/sensor/{TASMOTA_MAC}_AM2301_Temperature/config": {
        "name": "Pump AM2301 Temperature", "stat_t": f"tele/{TASMOTA_TOPIC}/SENSOR",
        "avty_t": f"tele/{TASMOTA_TOPIC}/LWT", "pl_avail": "Online", "pl_not_avail": "Offline",
        "uniq_id": f"{TASMOTA_MAC}_AM2301_Temperature", "dev": {"ids": [TASMOTA_MAC]}, "unit_of_meas": "°C",
        "dev_cla": "temperature", "frc_upd": True, "val_tpl": "{{value_json['AM2301'].Temperature}}",
    },
}

# --- ESPHome ---------------------------------------------------------------------------------------
ESP_NODE = "livingroom"
_ESP_DEV = {"ids": "a4cf12aabbcc", "name": ESP_NODE, "sw": "esphome v2024.6.0 Jun 12 2024", "mdl": "esp32dev",
            "mf": "espressif"}
ESPHOME_CONFIGS: dict[str, dict] = {
    f"{P}/switch/{ESP_NODE}/relay/config": {
        "name": "Relay", "stat_t": f"{ESP_NODE}/switch/relay/state", "cmd_t": f"{ESP_NODE}/switch/relay/command",
        "avty_t": f"{ESP_NODE}/status", "uniq_id": "ESPswitchrelay", "dev": _ESP_DEV,
    },
    f"{P}/sensor/{ESP_NODE}/temperature/config": {
        "dev_cla": "temperature", "unit_of_meas": "°C", "stat_cla": "measurement", "name": "Temperature",
        "stat_t": f"{ESP_NODE}/sensor/temperature/state", "avty_t": f"{ESP_NODE}/status",
        "uniq_id": "ESPsensortemperature", "dev": _ESP_DEV,
    },
    f"{P}/number/{ESP_NODE}/setpoint/config": {
        "name": "Setpoint", "stat_t": f"{ESP_NODE}/number/setpoint/state", "cmd_t": f"{ESP_NODE}/number/setpoint/command",
        "min": 5, "max": 30, "step": 0.5, "unit_of_meas": "°C", "avty_t": f"{ESP_NODE}/status",
        "uniq_id": "ESPnumbersetpoint", "dev": _ESP_DEV,
    },
}

# --- Shelly Gen2 with the HA-discovery script ------------------------------------------------------
SHELLY_ID, SHELLY_MAC = "shellyplus1-a8032ab1c2d3", "A8032AB1C2D3"


def _shelly_dev(part: str) -> dict:
    return {"name": f"{SHELLY_ID}-{part}", "ids": f"{SHELLY_ID}-{part}", "mdl": "SNSW-001X16EU", "mf": "Allterco",
            "sw_version": "20230913-112003/v1.14.0-gcb84623"}


SHELLY_CONFIGS: dict[str, dict] = {
    f"{P}/switch/{SHELLY_ID}-relay-0/config": {
        "name": f"{SHELLY_ID}-relay-0", "device": _shelly_dev("relay-0"), "unique_id": f"{SHELLY_MAC}-relay-0",
        "pl_on": "on", "pl_off": "off", "cmd_t": "~/command", "stat_t": "~", "~": f"shellies/{SHELLY_ID}/relay/0",
    },
    f"{P}/sensor/{SHELLY_ID}-temperature/config": {
        "name": f"{SHELLY_ID}-temperature", "device": _shelly_dev("temperature"),
        "unique_id": f"{SHELLY_MAC}-temperature", "unit_of_measurement": "°C", "device_class": "temperature",
        "val_tpl": "", "stat_t": "~", "~": f"shellies/{SHELLY_ID}/temperature",
    },
}


class Emulator:
    """One device firmware on the broker: its own paho client, answering commands in a thread."""

    def __init__(self, port: int, client_id: str, will: tuple[str, str] | None = None) -> None:
        self.commands: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not connected.wait(10):
            raise RuntimeError(f"{client_id} did not connect")

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def on(self, topic_filter: str, answer) -> None:
        def handler(client, userdata, msg) -> None:
            with self._cond:
                self.commands.append((msg.topic, msg.payload))
                self._cond.notify_all()
            answer(msg.topic, msg.payload)

        self.client.message_callback_add(topic_filter, handler)
        self.client.subscribe(topic_filter, qos=1)
        time.sleep(0.1)

    def wait_command(self, topic: str, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, payload in reversed(self.commands):
                    if t == topic:
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no command on {topic}; got {self.commands}")
                self._cond.wait(left)

    def announce(self, configs: dict[str, dict]) -> None:
        for topic, config in configs.items():
            self.publish(topic, config, retain=True)

    def crash(self) -> None:
        """Drop the connection without a DISCONNECT: the broker sends the last will."""
        self.client._sock_close()  # noqa: SLF001 - what a power cut does to a device's TCP session
        self.client.loop_stop()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def zigbee2mqtt(port: int) -> Emulator:
    """The bridge with its four devices; a /set is applied and the whole state published again."""
    bridge = Emulator(port, "z2m", will=("zigbee2mqtt/bridge/state", json.dumps({"state": "offline"})))
    states = {Z2M_PLUG[1]: {"state": "OFF", "linkquality": 120},
              Z2M_TH[1]: {"temperature": 21.5, "humidity": 48.2, "battery": 91, "linkquality": 90},
              Z2M_DOOR[1]: {"contact": True, "battery": 100},
              Z2M_BULB[1]: {"state": "OFF", "brightness": 254, "color_temp": 370, "color_mode": "color_temp"}}
    bridge.publish("zigbee2mqtt/bridge/state", {"state": "online"}, retain=True)
    for friendly, state in states.items():
        bridge.publish(f"zigbee2mqtt/{friendly}/availability", {"state": "online"}, retain=True)
        bridge.publish(f"zigbee2mqtt/{friendly}", state, retain=True)

    def answer(topic: str, payload: bytes) -> None:
        friendly = topic.split("/")[1]
        try:
            command = json.loads(payload)
        except ValueError:
            command = payload.decode()
        if not isinstance(command, dict):  # Z2M reads a plain "ON" on /set as {"state": "ON"}
            command = {"state": str(command)}
        state = states[friendly]
        if command.get("state") == "TOGGLE":
            command["state"] = "OFF" if state.get("state") == "ON" else "ON"
        state.update(command)
        bridge.client.publish(f"zigbee2mqtt/{friendly}", json.dumps(state), qos=1, retain=True)

    bridge.on("zigbee2mqtt/+/set", answer)
    bridge.states = states  # type: ignore[attr-defined]
    return bridge


def tasmota(port: int) -> Emulator:
    device = Emulator(port, "tasmota-pump", will=(f"tele/{TASMOTA_TOPIC}/LWT", "Offline"))
    device.publish(f"tele/{TASMOTA_TOPIC}/LWT", "Online", retain=True)
    power = {"POWER": "OFF"}

    def answer(topic: str, payload: bytes) -> None:
        text = payload.decode().upper()
        power["POWER"] = ("OFF" if power["POWER"] == "ON" else "ON") if text == "TOGGLE" else text
        device.client.publish(f"stat/{TASMOTA_TOPIC}/RESULT", json.dumps(power), qos=1)
        device.client.publish(f"stat/{TASMOTA_TOPIC}/POWER", power["POWER"], qos=1)

    device.on(f"cmnd/{TASMOTA_TOPIC}/POWER", answer)
    return device


def esphome(port: int) -> Emulator:
    node = Emulator(port, "esphome-livingroom", will=(f"{ESP_NODE}/status", "offline"))
    node.publish(f"{ESP_NODE}/status", "online", retain=True)
    node.publish(f"{ESP_NODE}/switch/relay/state", "OFF", retain=True)
    node.publish(f"{ESP_NODE}/number/setpoint/state", "20.0", retain=True)

    def answer(topic: str, payload: bytes) -> None:
        state_topic = topic.rsplit("/", 1)[0] + "/state"
        text = payload.decode()
        if "/number/" in topic:
            text = f"{float(text):.1f}"
        node.client.publish(state_topic, text, qos=1, retain=True)

    node.on(f"{ESP_NODE}/+/+/command", answer)
    return node


def shelly(port: int) -> Emulator:
    device = Emulator(port, SHELLY_ID)
    relay = f"shellies/{SHELLY_ID}/relay/0"
    device.publish(relay, "off")

    def answer(topic: str, payload: bytes) -> None:
        device.client.publish(relay, "on" if payload == b"on" else "off", qos=1)

    device.on(f"{relay}/command", answer)
    return device
