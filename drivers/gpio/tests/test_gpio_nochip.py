"""The real gpiod on a machine without the configured chip (this one has none): the hub runs, the
lines are unavailable, ``hub plugins`` says which chip is missing; PWM and 1-Wire without their
sysfs folders likewise."""

from __future__ import annotations

import gpio_testing  # noqa: F401 - puts the repository on sys.path
from tests.hubproc import HubProcess, run_cli


def test_a_missing_chip_pwm_and_sensor_are_unavailable_and_noted_never_a_crash(tmp_path):
    data = tmp_path / "hub"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        "gpio:\n"
        f"  dev_dir: {tmp_path}/dev\n  pwm_root: {tmp_path}/pwm\n  w1_root: {tmp_path}/w1\n  retry: 0.2\n"
        "  inputs: [{name: Front door, line: 5, device_class: door}]\n"
        "  outputs: [{name: Pump relay, line: 22}]\n"
        "  pwm: [{name: Desk LED}]\n"
        "  onewire: [{name: Boiler, id: 28-0316a2794aff}]\n")
    hub = HubProcess(data).start(timeout=30)
    try:
        def noted():
            gpio = {p["name"]: p for p in hub.get("/api/plugins")}["gpio"]
            return gpio["note"] and "28-0316a2794aff" in gpio["note"] and gpio
        gpio = hub.wait_for(noted, 10, "the gpio plugin's note")
        assert gpio["status"] == "running"
        assert "gpiochip0" in gpio["note"] and "does not exist" in gpio["note"] and "pwmchip0" in gpio["note"]
        for entity_id in ("binary_sensor.front_door", "switch.pump_relay", "light.desk_led", "sensor.boiler"):
            assert not hub.get(f"/api/states/{entity_id}")["available"], entity_id
        status, body = hub.request("POST", "/api/entities/switch.pump_relay/commands/turn_on")
        assert status in (409, 502), (status, body)  # unavailable: refused, not a 500
        shown = run_cli(data, "plugins", "--url", hub.url, "--token", hub.token)
        assert "gpiochip0" in shown.stdout, shown.stdout
        assert "Traceback" not in hub.log()
    finally:
        hub.stop()
