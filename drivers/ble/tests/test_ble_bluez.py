"""The driver in a real ``hub run`` against the fake BlueZ: bleak's real BlueZ backend over D-Bus, the
real parsers, real advertisements (BTHome v2, encrypted BTHome, Xiaomi MiBeacon) and a GATT device
(the Nordic LED Button Service) that notifies, takes writes, and vanishes mid-connection."""

from __future__ import annotations

import sqlite3

from ble_testing import BIND_KEY, ble_yaml
from hil_ble import fake_bluez  # noqa: F401 - the fixture
from tests.hubproc import HubProcess, run_cli


def device_yaml(address: str, name: str, kind: str, bind_key: str | None = None) -> str:
    text = f'    - address: "{address}"\n      name: {name}\n      type: {kind}\n'
    return text + (f'      bind_key: "{bind_key}"\n' if bind_key else "")


def state(hub: HubProcess, entity_id: str) -> dict | None:
    status, body = hub.request("GET", f"/api/states/{entity_id}")
    return body if status == 200 else None


def value(hub: HubProcess, entity_id: str):
    s = state(hub, entity_id)
    return s["value"] if s and s["available"] else None


def noted(hub: HubProcess, text: str) -> dict | None:
    """The ble plugin's row in ``GET /api/plugins`` if its note says ``text``."""
    return next((p for p in hub.get("/api/plugins") if p["name"] == "ble" and text in (p["note"] or "")), None)


def test_passive_sensors_reach_the_hub_and_a_heard_one_is_offered_then_added(tmp_path, hub_data, fake_bluez):
    fake = fake_bluez({"kitchen": "bthome_thermometer", "cellar": "bthome_encrypted", "door": "xiaomi_lywsdcgq",
                       "remote": "bthome_button"}, bind_key=BIND_KEY, interval=0.5)
    devices = (device_yaml(fake.address("kitchen"), "Kitchen", "bthome")
               + device_yaml(fake.address("cellar"), "Cellar", "bthome", BIND_KEY)
               + device_yaml(fake.address("remote"), "Remote", "bthome"))
    (hub_data / "configuration.yaml").write_text(ble_yaml(devices))
    (hub_data / "automations.yaml").write_text(
        "- id: pressed\n  trigger: [{trigger: event, event_type: ble_button}]\n  actions: [{log: remote button seen}]\n")
    hub = HubProcess(hub_data, extra_env=fake.env()).start()
    try:
        hub.wait_for(lambda: value(hub, "sensor.kitchen_temperature") == 21.5, what="the kitchen thermometer")
        kitchen = state(hub, "sensor.kitchen_temperature")
        assert kitchen["attributes"]["unit"] == "°C" and kitchen["attributes"]["device_class"] == "temperature"
        assert value(hub, "sensor.kitchen_humidity") == 48.0 and value(hub, "sensor.kitchen_battery") == 97

        fake.advertise("kitchen", {"temperature": 23.25, "humidity": 51.0})
        hub.wait_for(lambda: value(hub, "sensor.kitchen_temperature") == 23.25, what="a new reading")
        # Encrypted with the configured bind key: decrypted by bthome-ble.
        hub.wait_for(lambda: value(hub, "sensor.cellar_temperature") == 19.25, what="the encrypted sensor")

        fake.call("press", device="remote")
        hub.wait_for(lambda: "remote button seen" in hub.log(), what="the ble_button event running a rule")

        # The unconfigured Xiaomi thermometer is offered by `hub ble scan`, with what it says.
        env = {"HUB_URL": hub.url}
        door = fake.address("door")
        hub.wait_for(lambda: any(d["address"] == door for d in hub.get("/api/plugins/ble/discovered")["devices"]),
                     what="the Xiaomi thermometer heard")
        out = run_cli(hub_data, "ble", "scan", env=env)
        assert out.returncode == 0, out.stderr
        assert door in out.stdout and "xiaomi" in out.stdout and "temperature=22.4" in out.stdout
        assert f"hub ble add {door} --type xiaomi" in out.stdout

        out = run_cli(hub_data, "ble", "add", door.lower(), "--type", "xiaomi", "--name", "Front door", env=env)
        assert out.returncode == 0, out.stderr
        assert "added Front door" in out.stdout
        fake.advertise("door", {"temperature": 18.5})
        hub.wait_for(lambda: value(hub, "sensor.front_door_temperature") == 18.5, what="the added sensor")
        out = run_cli(hub_data, "ble", "add", door, "--type", "xiaomi", env=env)
        assert out.returncode == 1 and "already" in out.stderr
        out = run_cli(hub_data, "ble", "devices", env=env)
        assert "Front door" in out.stdout and "encrypted" in out.stdout and "available" in out.stdout
    finally:
        hub.stop()
    # A restart keeps the added device; the bind key is in no database row and no log line.
    hub = HubProcess(hub_data, extra_env=fake.env()).start()
    try:
        names = [d["name"] for d in hub.get("/api/plugins/ble/devices")["devices"]]
        assert names == ["Kitchen", "Cellar", "Remote", "Front door"]
        hub.wait_for(lambda: value(hub, "sensor.front_door_temperature") is not None, what="the added sensor again")
    finally:
        hub.stop()
    assert BIND_KEY not in hub.log()
    db = next(hub_data.glob("*.db"))
    with sqlite3.connect(db) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                assert BIND_KEY not in repr(row), table


def test_an_lbs_device_is_a_switch_and_a_button_and_reconnects_after_vanishing(tmp_path, hub_data, fake_bluez):
    fake = fake_bluez({"led": "lbs"}, interval=0.5)
    (hub_data / "configuration.yaml").write_text(
        ble_yaml(device_yaml(fake.address("led"), "Desk", "lbs"), extra="  reconnect_max: 1\n"))
    (hub_data / "automations.yaml").write_text(
        "- id: pressed\n  trigger: [{trigger: event, event_type: ble_button}]\n  actions: [{log: desk button seen}]\n")
    hub = HubProcess(hub_data, extra_env=fake.env()).start()
    try:
        hub.wait_for(lambda: value(hub, "switch.desk_led") == "off", what="the LED read on connect")
        assert value(hub, "binary_sensor.desk_button") == "off"

        status, body = hub.request("POST", "/api/entities/switch.desk_led/commands/turn_on", {})
        assert status == 200, body
        assert fake.get("led", "led")["value"] == "01" and value(hub, "switch.desk_led") == "on"
        hub.request("POST", "/api/entities/switch.desk_led/commands/toggle", {})
        assert fake.get("led", "led")["value"] == "00"

        fake.call("press", device="led")  # notifies 1, then 0
        hub.wait_for(lambda: "desk button seen" in hub.log(), what="the press event")
        history = hub.get("/api/history/binary_sensor.desk_button")
        assert "on" in [row["state"] for row in history["states"]]  # the press, between two "off"s

        fake.call("vanish", device="led")
        hub.wait_for(lambda: state(hub, "switch.desk_led")["available"] is False, what="unavailable after vanishing")
        status, body = hub.request("POST", "/api/entities/switch.desk_led/commands/turn_on", {})
        assert status == 409 and "unavailable" in body["message"]
        fake.call("return", device="led")
        hub.wait_for(lambda: value(hub, "switch.desk_led") == "off", 20, what="reconnected")
        status, body = hub.request("POST", "/api/entities/switch.desk_led/commands/turn_on", {})
        assert status == 200 and fake.get("led", "led")["value"] == "01"
        (desk,) = hub.get("/api/plugins/ble/devices")["devices"]
        assert desk["connected"] and desk["connections"] == 2
    finally:
        hub.stop()


def test_a_missing_adapter_is_unavailable_entities_and_a_line_in_hub_plugins(tmp_path, hub_data, fake_bluez):
    fake = fake_bluez({"kitchen": "bthome_thermometer", "led": "lbs"}, interval=0.5)
    devices = device_yaml(fake.address("kitchen"), "Kitchen", "bthome") + device_yaml(fake.address("led"), "Desk", "lbs")
    # hci1 does not exist (the fake has hci0 only): the hub runs and says why nothing arrives.
    (hub_data / "configuration.yaml").write_text(ble_yaml(devices, adapter="hci1"))
    hub = HubProcess(hub_data, extra_env=fake.env()).start()
    try:
        ble = hub.wait_for(lambda: noted(hub, "adapter hci1"), what="the note")
        assert ble["status"] == "running" and "not found" in ble["note"]
        assert state(hub, "switch.desk_led")["available"] is False
        assert state(hub, "sensor.kitchen_signal_strength")["available"] is False
        out = run_cli(hub_data, "plugins", env={"HUB_URL": hub.url})
        assert "adapter hci1" in out.stdout
    finally:
        hub.stop()

    # The right adapter, pulled out while the hub runs, then plugged back in.
    (hub_data / "configuration.yaml").write_text(ble_yaml(devices, extra="  reconnect_max: 1\n"))
    hub = HubProcess(hub_data, extra_env=fake.env()).start()
    try:
        hub.wait_for(lambda: value(hub, "sensor.kitchen_temperature") is not None and value(hub, "switch.desk_led"),
                     what="both devices")
        fake.call("adapter", powered=False)
        hub.wait_for(lambda: state(hub, "sensor.kitchen_temperature")["available"] is False
                     and state(hub, "switch.desk_led")["available"] is False, what="unavailable without the adapter")
        ble = hub.wait_for(lambda: noted(hub, "adapter hci0"), what="the note")
        assert ble["status"] == "running" and "removed" in ble["note"]
        fake.call("adapter", powered=True)
        hub.wait_for(lambda: value(hub, "sensor.kitchen_temperature") is not None and value(hub, "switch.desk_led"),
                     20, what="both devices back")
        # (A note may only be left by the hub's stall watchdog on a starved machine, never the adapter's.)
        assert noted(hub, "adapter") is None
    finally:
        hub.stop()


def test_the_generic_gatt_configuration_drives_a_device_it_describes(tmp_path, hub_data, fake_bluez):
    """The LBS device again, described by hand as a `gatt` device: service, characteristics, struct
    format and command bytes from the configuration, nothing from the built-in profile."""
    fake = fake_bluez({"relay": "lbs"}, interval=0.5)
    entities = (
        "      entities:\n"
        "        - {key: relay, capability: switch, service: 00001523-1212-efde-1523-785feabcd123,\n"
        "           characteristic: 00001525-1212-efde-1523-785feabcd123, decode: {format: '<B'},\n"
        "           commands: {turn_on: '01', turn_off: '00'}}\n"
        "        - {key: contact, capability: binary_sensor, device_class: door, notify: true,\n"
        "           service: 00001523-1212-efde-1523-785feabcd123,\n"
        "           characteristic: 00001524-1212-efde-1523-785feabcd123}\n")
    (hub_data / "configuration.yaml").write_text(ble_yaml(device_yaml(fake.address("relay"), "Fan", "gatt") + entities))
    hub = HubProcess(hub_data, extra_env=fake.env()).start()
    try:
        hub.wait_for(lambda: value(hub, "switch.fan_relay") == "off", what="the relay read on connect")
        assert state(hub, "binary_sensor.fan_contact")["attributes"]["device_class"] == "door"
        status, body = hub.request("POST", "/api/entities/switch.fan_relay/commands/turn_on", {})
        assert status == 200, body
        assert fake.get("relay", "led")["value"] == "01" and value(hub, "switch.fan_relay") == "on"
        fake.call("press", device="relay")
        hub.wait_for(lambda: "on" in [r["state"] for r in hub.get("/api/history/binary_sensor.fan_contact")["states"]],
                     what="the notified value")
    finally:
        hub.stop()


def test_a_gatt_device_added_through_the_api_connects_at_once(tmp_path, hub_data, fake_bluez):
    """``hub ble add ... --type lbs`` on a running hub: the device is connected and switchable
    without a restart (the route once ran off the event loop and could not start the connection)."""
    fake = fake_bluez({"led": "lbs"}, interval=0.5)
    (hub_data / "configuration.yaml").write_text(ble_yaml(""))
    hub = HubProcess(hub_data, extra_env=fake.env()).start()
    try:
        status, body = hub.request("POST", "/api/plugins/ble/devices",
                                   {"address": fake.address("led"), "name": "Desk", "type": "lbs"})
        assert status == 201, body
        hub.wait_for(lambda: value(hub, "switch.desk_led") == "off", what="the added LED read on connect")
        status, body = hub.request("POST", "/api/entities/switch.desk_led/commands/turn_on", {})
        assert status == 200, body
        assert fake.get("led", "led")["value"] == "01"
    finally:
        hub.stop()
