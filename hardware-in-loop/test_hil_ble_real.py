"""The BLE scenarios that a real adapter and real devices can run by themselves (README.md, "Runbook:
BLE on a Pi"): skipped unless ``HIL_BLE_ADAPTER`` is set. The hub uses the system's bluetoothd (no
``DBUS_SYSTEM_BUS_ADDRESS`` override), so what the fake cannot show is covered here: the radio, the
controller's and bluetoothd's own behaviour, and the real devices' timing.

``HIL_BLE_BTHOME`` is a BTHome v2 sensor's address (``HIL_BLE_BTHOME_KEY`` its bind key if it
encrypts), ``HIL_BLE_XIAOMI`` a Xiaomi thermometer's, ``HIL_BLE_LBS`` an nRF board running Nordic's
``peripheral_lbs`` sample; a scenario whose device is not given is skipped. ``HIL_BLE_PRESS=1``: the
button scenario waits for a person to press the board's button 1.
"""

from __future__ import annotations

import os

import pytest

from hil import HubProcess, run_cli, wait_state

ADAPTER = os.environ.get("HIL_BLE_ADAPTER")
BTHOME = os.environ.get("HIL_BLE_BTHOME", "").upper()
BTHOME_KEY = os.environ.get("HIL_BLE_BTHOME_KEY")
XIAOMI = os.environ.get("HIL_BLE_XIAOMI", "").upper()
LBS = os.environ.get("HIL_BLE_LBS", "").upper()

pytestmark = pytest.mark.skipif(not ADAPTER, reason="HIL_BLE_ADAPTER is not set (README.md: Runbook: BLE on a Pi)")


def need(address: str, what: str) -> None:
    if not address:
        pytest.skip(f"no {what} given")


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("ble-real") / "hub"
    data.mkdir()
    lines = ["ble:", f"  adapter: {ADAPTER}", "  devices:"]
    if BTHOME:
        lines += [f"    - {{address: \"{BTHOME}\", name: BTHome sensor, type: bthome"
                  + (f", bind_key: \"{BTHOME_KEY}\"}}" if BTHOME_KEY else "}")]
    if XIAOMI:
        lines += [f"    - {{address: \"{XIAOMI}\", name: Xiaomi thermometer, type: xiaomi}}"]
    if LBS:
        lines += [f"    - {{address: \"{LBS}\", name: nRF board, type: lbs}}"]
    if lines[-1] == "  devices:":
        lines[-1] = "  devices: []"
    (data / "configuration.yaml").write_text("\n".join(lines) + "\n")
    hub = HubProcess(data, extra_env={"PYTHONUNBUFFERED": "1"}).start(timeout=30)
    try:
        yield hub
    finally:
        hub.stop()


def entity(hub: HubProcess, address: str, key: str, timeout: float) -> str:
    unique = f"{address}:{key}"
    return hub.wait_for(lambda: next((e["entity_id"] for e in hub.get("/api/entities")
                                      if e["platform"] == "ble" and e["unique_id"] == unique), None),
                        timeout, f"the entity {unique}")


def test_the_adapter_scans(real_hub):
    answer = real_hub.wait_for(lambda: (a := real_hub.get("/api/plugins/ble/devices"))["scanning"] and a, 20,
                               "the hub scanning")
    assert answer["error"] is None
    assert real_hub.wait_for(lambda: real_hub.get("/api/plugins/ble/discovered")["devices"], 30,
                             "anything heard at all")


def test_a_real_bthome_sensor_reaches_states_and_hub_ble_scan(real_hub):
    need(BTHOME, "HIL_BLE_BTHOME sensor")
    temperature = entity(real_hub, BTHOME, "temperature", 120)  # sensors advertise every few seconds to a minute
    state = wait_state(real_hub, temperature, lambda s: s["available"], timeout=120)
    assert -40 <= state["value"] <= 85
    scan = run_cli(real_hub.data, "ble", "scan", "--json")
    assert BTHOME in scan.stdout and "bthome" in scan.stdout, scan.stdout + scan.stderr


def test_a_real_xiaomi_thermometer_reaches_states(real_hub):
    need(XIAOMI, "HIL_BLE_XIAOMI thermometer")
    temperature = entity(real_hub, XIAOMI, "temperature", 120)
    assert -40 <= wait_state(real_hub, temperature, lambda s: s["available"], timeout=120)["value"] <= 85


def test_a_real_lbs_board_led_and_button(real_hub):
    need(LBS, "HIL_BLE_LBS board")
    led, button = entity(real_hub, LBS, "led", 30), entity(real_hub, LBS, "button", 30)
    wait_state(real_hub, led, lambda s: s["available"], timeout=60, what="the board connected")
    # The driver reads the LED characteristic back after writing it: the state is the board's.
    assert real_hub.post(f"/api/entities/{led}/commands/turn_on")["state"]["value"] == "on"  # LED 3 lights
    assert real_hub.post(f"/api/entities/{led}/commands/turn_off")["state"]["value"] == "off"
    if os.environ.get("HIL_BLE_PRESS") != "1":
        return
    print("\n>>> press button 1 on the nRF board within 30 s", flush=True)
    history = lambda: [r["value"] for r in real_hub.get(f"/api/history/{button}")["states"]]  # noqa: E731
    real_hub.wait_for(lambda: "on" in history(), 30, "a press of button 1")
