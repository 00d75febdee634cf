"""BLE through a real ``hub run`` and the fake BlueZ: the hub's driver runs bleak's real BlueZ backend
over D-Bus (``DBUS_SYSTEM_BUS_ADDRESS`` points at the fake's private dbus-daemon), exactly as on a Pi
with bluetoothd.

One fake and one hub serve the scenarios that do not disturb each other; the adapter scenarios get
their own. Entities are found the way the API shows them (platform ``ble``, unique id
``ADDRESS:key``), not by a guessed entity id.
"""

from __future__ import annotations

import pytest

from hil import HubProcess, run_cli, wait_state
from hil_ble import DEFAULT_BIND_KEY, FakeBluez, address_of, fake_bluez  # noqa: F401

pytestmark = pytest.mark.xdist_group("hil_ble")

DEVICES = {"kitchen": "bthome_thermometer", "shed": "bthome_encrypted", "cellar": "bthome_encrypted",
           "bedroom": "xiaomi_lywsdcgq", "porch": "bthome_thermometer", "desk": "lbs", "lamp": "lbs"}
WRONG_KEY = "00112233445566778899aabbccddeeff"


def ble_config(devices: list[dict], *, adapter: str = "hci0", availability: float = 2) -> str:
    lines = ["ble:", f"  adapter: {adapter}", f"  availability: {availability}", "  reconnect_max: 1",
             "  devices:"]
    for device in devices:
        lines.append(f"    - address: \"{device['address']}\"")
        for key, value in device.items():
            if key != "address":
                lines.append(f"      {key}: \"{value}\"" if key == "bind_key" else f"      {key}: {value}")
    return "\n".join(lines) + "\n"


def start_hub(folder, config: str, fake: FakeBluez) -> HubProcess:
    data = folder / "hub"
    data.mkdir()
    (data / "configuration.yaml").write_text(config)
    return HubProcess(data, extra_env={"PYTHONUNBUFFERED": "1", **fake.env()}).start(timeout=30)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The fake with :data:`DEVICES` (each advertising every 0.3 s while scanned) and a hub with all of
    them configured, the cellar sensor with a wrong bind key."""
    folder = tmp_path_factory.mktemp("ble")
    fake = FakeBluez(folder, DEVICES, interval=0.3).start()
    a = address_of
    config = ble_config([
        {"address": a("kitchen"), "name": "Kitchen", "type": "bthome"},
        {"address": a("shed"), "name": "Shed", "type": "bthome", "bind_key": DEFAULT_BIND_KEY},
        {"address": a("cellar"), "name": "Cellar", "type": "bthome", "bind_key": WRONG_KEY},
        {"address": a("bedroom"), "name": "Bedroom", "type": "xiaomi"},
        {"address": a("porch"), "name": "Porch", "type": "bthome"},
        {"address": a("desk"), "name": "Desk", "type": "lbs"},
        {"address": a("lamp"), "name": "Lamp", "type": "lbs"},
    ])
    hub = None
    try:
        hub = start_hub(folder, config, fake)
        yield fake, hub
    finally:
        if hub is not None:
            hub.stop()
        fake.stop()


def entity(hub: HubProcess, device: str, key: str, timeout: float = 10) -> str:
    """The entity id of the device's entity ``key`` (a BTHome sensor's appear with its first values)."""
    unique = f"{address_of(device)}:{key}"

    def found():
        return next((e["entity_id"] for e in hub.get("/api/entities")
                     if e["platform"] == "ble" and e["unique_id"] == unique), None)

    return hub.wait_for(found, timeout, f"the ble entity {unique} ({device})")


def ble_device(hub: HubProcess, device: str) -> dict:
    rows = hub.get("/api/plugins/ble/devices")["devices"]
    return next(d for d in rows if d["address"] == address_of(device))


def command(hub: HubProcess, entity_id: str, name: str) -> dict:
    return hub.post(f"/api/entities/{entity_id}/commands/{name}")


def test_bthome_values_reach_states(home):
    fake, hub = home
    fake.advertise("kitchen", {"temperature": 24.25, "humidity": 40.5, "battery": 81})
    temperature = entity(hub, "kitchen", "temperature")
    wait_state(hub, temperature, lambda s: s["available"] and s["value"] == 24.25)
    wait_state(hub, entity(hub, "kitchen", "humidity"), lambda s: s["value"] == 40.5)
    wait_state(hub, entity(hub, "kitchen", "battery"), lambda s: s["value"] == 81)
    fake.advertise("kitchen", {"temperature": -2.5})
    wait_state(hub, temperature, lambda s: s["value"] == -2.5, what="the next advertisement's temperature")
    # The GATT devices' connections and the scanner share bluetoothd's one discovery session per
    # client: no "adapter down" was reported at start for an adapter that was there all along.
    assert "BLE entities unavailable" not in hub.log() and "InProgress" not in hub.log()


def test_encrypted_bthome_with_its_bind_key_and_a_wrong_key_is_a_clear_error(home):
    fake, hub = home
    fake.advertise("shed", {"temperature": 6.75})
    wait_state(hub, entity(hub, "shed", "temperature"), lambda s: s["available"] and s["value"] == 6.75)
    fake.advertise("cellar", {"temperature": 11.0})
    hub.wait_for(lambda: ble_device(hub, "cellar")["key_ok"] is False, 10, "the cellar's key to be found wrong")
    hub.wait_for(lambda: "Cellar" in hub.log() and "bind key does not decrypt" in hub.log(), 10,
                 "a log line naming the device whose key is wrong")
    assert WRONG_KEY not in hub.log() and DEFAULT_BIND_KEY not in hub.log()  # secrets never logged
    cellar = ble_device(hub, "cellar")
    assert not any(e.endswith("temperature") for e in cellar["entities"]), cellar  # no values without the key


def test_xiaomi_thermometer_values_reach_states(home):
    fake, hub = home
    fake.advertise("bedroom", {"temperature": 19.5, "humidity": 62.0})
    wait_state(hub, entity(hub, "bedroom", "temperature"), lambda s: s["available"] and s["value"] == 19.5)
    wait_state(hub, entity(hub, "bedroom", "humidity"), lambda s: s["value"] == 62.0)


def test_lbs_led_is_switched_and_its_button_seen(home):
    fake, hub = home
    led, button = entity(hub, "desk", "led"), entity(hub, "desk", "button")
    wait_state(hub, led, lambda s: s["available"], timeout=20, what="the desk LED to be connected")
    assert command(hub, led, "turn_on")["state"]["value"] == "on"
    assert fake.get("desk", "led")["int"] == 1  # the LED really is on
    assert command(hub, led, "turn_off")["state"]["value"] == "off"
    assert fake.get("desk", "led")["int"] == 0
    wait_state(hub, button, lambda s: s["available"] and s["value"] == "off")
    fake.call("press", device="desk")
    history = lambda: [r["value"] for r in hub.get(f"/api/history/{button}")["states"]]  # noqa: E731
    hub.wait_for(lambda: "on" in history(), 10, "the button press in the button's history")
    wait_state(hub, button, lambda s: s["value"] == "off", what="the button released")


def test_a_device_that_vanishes_mid_connection_is_unavailable_and_reconnects_when_back(home):
    fake, hub = home
    led = entity(hub, "lamp", "led")
    wait_state(hub, led, lambda s: s["available"], timeout=20, what="the lamp to be connected")
    connections = ble_device(hub, "lamp")["connections"]
    fake.call("vanish", device="lamp")
    wait_state(hub, led, lambda s: not s["available"], what="the lamp's LED unavailable")
    status, body = hub.request("POST", f"/api/entities/{led}/commands/turn_on")
    assert 400 <= status < 500, (status, body)  # a clear refusal, not a 500
    fake.call("return", device="lamp")
    wait_state(hub, led, lambda s: s["available"], timeout=20, what="the lamp reconnected")
    assert ble_device(hub, "lamp")["connections"] > connections
    assert command(hub, led, "turn_on")["state"]["value"] == "on"
    assert fake.get("lamp", "led")["int"] == 1


def test_a_passive_sensor_goes_unavailable_after_availability_and_back_when_heard(home):
    fake, hub = home
    fake.advertise("porch", {"temperature": 15.0})
    temperature = entity(hub, "porch", "temperature")
    wait_state(hub, temperature, lambda s: s["available"] and s["value"] == 15.0)
    fake.call("vanish", device="porch")  # out of range: no more advertisements
    wait_state(hub, temperature, lambda s: not s["available"], timeout=10,
               what="the porch sensor unavailable after `availability` (2 s) without an advertisement")
    assert state_of(hub, entity(hub, "kitchen", "temperature"))["available"]  # the others stay
    fake.call("return", device="porch")
    fake.advertise("porch", {"temperature": 14.5})
    wait_state(hub, temperature, lambda s: s["available"] and s["value"] == 14.5)


def state_of(hub: HubProcess, entity_id: str) -> dict:
    return hub.get(f"/api/states/{entity_id}")


def plugin_note(hub: HubProcess) -> str | None:
    return next((p.get("note") for p in hub.get("/api/plugins") if p["name"] == "ble" and p.get("note")), None)


def test_a_missing_adapter_is_unavailable_and_a_line_in_hub_plugins_then_it_comes_back(fake_bluez, tmp_path):
    fake = fake_bluez({"kitchen": "bthome_thermometer", "desk": "lbs"}, interval=0.3)
    fake.call("adapter", powered=False)  # unplugged before the hub starts
    config = ble_config([{"address": address_of("kitchen"), "name": "Kitchen", "type": "bthome"},
                         {"address": address_of("desk"), "name": "Desk", "type": "lbs"}])
    hub = start_hub(tmp_path, config, fake)
    try:
        led = entity(hub, "desk", "led")
        note = hub.wait_for(lambda: plugin_note(hub), 15, "the ble plugin's note about the adapter")
        assert "hci0" in note, note
        plugins = run_cli(hub.data, "plugins")
        assert "hci0" in plugins.stdout, plugins.stdout + plugins.stderr  # `hub plugins` says why
        assert not state_of(hub, led)["available"]
        assert hub.proc.poll() is None  # no crash
        fake.call("adapter", powered=True)  # plugged back in
        wait_state(hub, led, lambda s: s["available"], timeout=30, what="the LED connected once the adapter is back")
        fake.advertise("kitchen", {"temperature": 20.5})
        wait_state(hub, entity(hub, "kitchen", "temperature"), lambda s: s["value"] == 20.5, timeout=15)
        fake.call("adapter", powered=False)  # pulled while running
        wait_state(hub, led, lambda s: not s["available"], what="the LED unavailable with the adapter gone")
        hub.wait_for(lambda: plugin_note(hub), 10, "hub plugins saying the adapter is gone")
        assert hub.proc.poll() is None
        fake.call("adapter", powered=True)
        wait_state(hub, led, lambda s: s["available"], timeout=30, what="the LED back with the adapter")
        fake.advertise("kitchen", {"temperature": 21.0})
        wait_state(hub, entity(hub, "kitchen", "temperature"), lambda s: s["value"] == 21.0, timeout=15,
                   what="advertisements heard again once the adapter is back")
    finally:
        hub.stop()


@pytest.mark.parametrize("how", ["switched", "replugged"])
def test_an_adapter_switched_off_and_on_is_scanned_again(fake_bluez, tmp_path, how):
    fake = fake_bluez({"kitchen": "bthome_thermometer", "desk": "lbs"}, interval=0.3)
    config = ble_config([{"address": address_of("kitchen"), "name": "Kitchen", "type": "bthome"},
                         {"address": address_of("desk"), "name": "Desk", "type": "lbs"}])
    hub = start_hub(tmp_path, config, fake)
    try:
        led, temperature = entity(hub, "desk", "led"), None
        wait_state(hub, led, lambda s: s["available"], timeout=20, what="the LED connected")
        fake.advertise("kitchen", {"temperature": 20.5})
        temperature = entity(hub, "kitchen", "temperature")
        wait_state(hub, temperature, lambda s: s["value"] == 20.5)
        keep = how == "switched"  # switched off (btmgmt power off) and still there, or pulled out
        fake.call("adapter", powered=False, keep=keep)
        wait_state(hub, led, lambda s: not s["available"], what="the LED unavailable with the adapter off")
        assert hub.proc.poll() is None
        fake.call("adapter", powered=True, keep=keep)
        wait_state(hub, led, lambda s: s["available"], timeout=30, what="the LED back with the adapter on")
        fake.advertise("kitchen", {"temperature": 21.5})
        wait_state(hub, temperature, lambda s: s["value"] == 21.5, timeout=6,
                   what="advertisements heard again once the adapter is on")
    finally:
        hub.stop()
