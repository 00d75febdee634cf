"""A machine without BlueZ (no system D-Bus at all): the hub runs, the BLE entities are unavailable,
`hub plugins` says why, commands are refused as unavailable and the CLI says it is not scanning."""

from ble_testing import ble_yaml
from tests.hubproc import HubProcess, run_cli


def test_no_bluez_leaves_the_hub_up_and_says_why(tmp_path, hub_data):
    devices = ('    - {address: "A4:C1:38:00:00:01", name: Kitchen, type: xiaomi}\n'
               '    - {address: "F0:00:00:00:00:02", name: Desk, type: lbs}\n')
    (hub_data / "configuration.yaml").write_text(ble_yaml(devices))
    env = {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}"}
    hub = HubProcess(hub_data, extra_env=env).start()
    try:
        ble = hub.wait_for(lambda: next((p for p in hub.get("/api/plugins") if p["name"] == "ble"
                                          and "BlueZ is not reachable" in (p["note"] or "")), None), what="the note")
        assert ble["status"] == "running" and "no-bus" in ble["note"] and ble["stalls"] == 0
        for entity_id in ("sensor.kitchen_signal_strength", "switch.desk_led", "binary_sensor.desk_button"):
            assert hub.get(f"/api/states/{entity_id}")["available"] is False
        status, body = hub.request("POST", "/api/entities/switch.desk_led/commands/turn_on", {})
        assert status == 409 and "unavailable" in body["message"]
        cli_env = {"HUB_URL": hub.url}
        out = run_cli(hub_data, "ble", "scan", env=cli_env)
        assert out.returncode == 0 and "not scanning" in out.stderr and "BlueZ is not reachable" in out.stderr
        out = run_cli(hub_data, "ble", "devices", env=cli_env)
        assert out.returncode == 0 and "Kitchen" in out.stdout and "unavailable" in out.stdout
        out = run_cli(hub_data, "ble", "add", "F0:00:00:00:00", "--type", "lbs", env=cli_env)
        assert out.returncode == 1 and "Bluetooth address" in out.stderr
    finally:
        hub.stop()
