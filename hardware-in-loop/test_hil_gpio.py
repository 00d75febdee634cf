"""GPIO against a real ``hub run``: the chip is ``simulators/gpio_sim.py`` in its own process, reached
through the fake ``gpiod`` package (first on the hub's ``PYTHONPATH``) with gpiod 2.x's API, so the
driver runs unchanged; PWM and 1-Wire are sysfs trees in a temporary folder laid out as the kernel's.
With ``HIL_GPIO_CHIP`` set, the same scenarios run on a real board (README.md, "GPIO on a Pi 5").

One board and one hub serve the module; each scenario leaves the lines as it found them.
"""

from __future__ import annotations

import json
import time

import pytest
from websockets.sync.client import connect

from gpio_board import DS18B20, LINES, PWM, REAL_CHIP, GpioBoard
from hil import run_cli, state, wait_state

BUTTON, PIR, DOOR = "button.doorbell", "binary_sensor.hall_pir", "binary_sensor.front_door"
GARAGE, PUMP, FAN = "binary_sensor.garage_door", "switch.pump_relay", "switch.fan_relay"
LED = "light.desk_led"
BOILER, ATTIC = "sensor.boiler_temperature", "sensor.attic_temperature"

RULE = """
- id: doorbell_double_lights_the_desk
  trigger: {trigger: event, event_type: gpio_button, event_data: {entity_id: button.doorbell, press: double}}
  action: [{call: light.turn_on, entity_id: light.desk_led, args: {brightness: 128}}]
"""


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    b = GpioBoard(tmp_path_factory.mktemp("gpio"))
    (b.folder / "hub").mkdir()
    (b.folder / "hub" / "automations.yaml").write_text(RULE)
    b.start()
    yield b
    b.stop()


def command(hub, entity_id: str, name: str, **args) -> dict:
    return hub.post(f"/api/entities/{entity_id}/commands/{name}", args or None)


class Events:
    """The hub's events over its WebSocket API, as a dashboard sees them."""

    def __init__(self, hub, event_type: str) -> None:
        self._connection = connect(f"ws://127.0.0.1:{hub.port}/api/ws",
                                   additional_headers={"Authorization": f"Bearer {hub.token}"})
        self.ws = self._connection.__enter__()
        self.ws.send(json.dumps({"id": 1, "type": "subscribe_events", "event_type": event_type}))
        while json.loads(self.ws.recv(timeout=10)).get("type") != "result":
            pass

    def next(self, timeout: float = 5) -> dict:
        while True:
            msg = json.loads(self.ws.recv(timeout=timeout))
            if msg.get("type") == "event":
                return msg["event"]

    def quiet(self, seconds: float) -> list[dict]:
        """Every event in the next ``seconds`` (none expected, usually)."""
        seen, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                seen.append(self.next(left))
            except TimeoutError:
                break
        return seen

    def close(self) -> None:
        self._connection.__exit__(None, None, None)


def tap(board: GpioBoard, hold: float = 0.05) -> None:
    board.press("button")
    time.sleep(hold)
    board.release("button")


def test_button_single_double_and_long_presses_are_events_and_a_rule_acts_on_them(board):
    board.needs_sim()
    hub = board.hub
    wait_state(hub, BUTTON, lambda s: s["available"], what="the doorbell button to be available")
    events = Events(hub, "gpio_button")
    try:
        tap(board)
        assert events.next()["data"]["press"] == "single"
        assert state(hub, BUTTON)["attributes"]["press"] == "single"
        tap(board)
        time.sleep(0.05)
        tap(board)
        assert events.next()["data"] == {"entity_id": BUTTON, "name": "Doorbell", "press": "double"}
        # The rule turned the desk light on at half brightness, through the real PWM files.
        wait_state(hub, LED, lambda s: s["value"] == "on" and s["attributes"]["brightness"] == 128)
        assert int(board.pwm("duty_cycle")) == 1_000_000 * 128 // 255 and board.pwm("enable") == "1"
        board.press("button")
        assert events.next()["data"]["press"] == "long"  # while still held, as a user waits for it
        board.release("button")
        assert events.quiet(0.5) == []  # the release of a long press is not another press
    finally:
        events.close()
        command(hub, LED, "turn_off")


def test_pir_input_is_a_motion_binary_sensor(board):
    board.needs_sim()
    hub = board.hub
    s = wait_state(hub, PIR, lambda s: s["available"])
    assert s["value"] == "off" and s["attributes"]["device_class"] == "motion"
    board.call("drive", line=27, level=1)
    wait_state(hub, PIR, lambda s: s["value"] == "on", what="motion on")
    board.call("drive", line=27, level=0)
    wait_state(hub, PIR, lambda s: s["value"] == "off", what="motion off")


def test_relay_with_inverted_logic_starts_off_and_switches(board):
    hub = board.hub
    pump = wait_state(hub, PUMP, lambda s: s["available"])
    fan = wait_state(hub, FAN, lambda s: s["available"])
    assert pump["value"] == "off" and fan["value"] == "on"  # their configured start states
    if board.sim is not None:
        assert board.level("relay") == 1  # inverted: off is a high line (an active-low relay board)
        assert board.level("fan") == 1
    command(hub, PUMP, "turn_on")
    assert state(hub, PUMP)["value"] == "on"
    if board.sim is not None:
        assert board.level("relay") == 0
    command(hub, PUMP, "toggle")
    assert state(hub, PUMP)["value"] == "off"
    if board.sim is not None:
        assert board.level("relay") == 1
    status, body = hub.request("POST", f"/api/entities/{PIR}/commands/turn_on")
    assert 400 <= status < 500, (status, body)  # an input is not commanded (and not a 500)


def test_a_bouncing_contact_changes_the_door_state_once(board):
    board.needs_sim()
    hub = board.hub
    wait_state(hub, DOOR, lambda s: s["available"] and s["value"] == "on")  # pull-up, contact open: door open
    events = Events(hub, "state_changed")
    try:
        board.call("bounce", line=5, level=0, edges=7)  # the reed closes, chattering
        changes = [e for e in events.quiet(0.5) if e["data"]["entity_id"] == DOOR]
        assert [c["data"]["new_state"]["value"] for c in changes] == ["off"], changes
        board.call("bounce", line=5, level=1, edges=5)
        changes = [e for e in events.quiet(0.5) if e["data"]["entity_id"] == DOOR]
        assert [c["data"]["new_state"]["value"] for c in changes] == ["on"], changes
    finally:
        events.close()


def test_pwm_light_brightness_writes_the_duty_cycle(board):
    hub = board.hub
    wait_state(hub, LED, lambda s: s["available"])
    command(hub, LED, "turn_on", brightness=255)
    if board.sim is not None:
        assert board.pwm("period") == "1000000" and board.pwm("duty_cycle") == "1000000"
        assert board.pwm("enable") == "1"
    command(hub, LED, "turn_on", brightness=51)
    assert state(hub, LED)["attributes"]["brightness"] == 51
    if board.sim is not None:
        assert board.pwm("duty_cycle") == "200000"
    command(hub, LED, "turn_off")
    assert state(hub, LED)["value"] == "off"
    if board.sim is not None:
        assert board.pwm("enable") == "0"
    command(hub, LED, "turn_on")  # back at the last brightness
    assert state(hub, LED)["attributes"]["brightness"] == 51
    command(hub, LED, "turn_off")


def test_ds18b20_values_and_a_bad_crc_or_power_on_value_is_unavailable_not_wrong(board):
    hub = board.hub
    if "boiler" not in DS18B20:
        pytest.skip("no DS18B20 in HIL_GPIO_DS18B20")
    boiler = wait_state(hub, BOILER, lambda s: s["available"])
    assert boiler["attributes"]["unit"] == "°C"
    if board.sim is None:
        assert -55 <= boiler["value"] <= 125
        return
    assert boiler["value"] == 61.25
    wait_state(hub, ATTIC, lambda s: s["available"] and s["value"] == -4.5)
    try:
        board.set_temperature("boiler", 99000, crc_ok=False)  # noise on the bus: the kernel's CRC says NO
        wait_state(hub, BOILER, lambda s: not s["available"], what="the boiler sensor unavailable on a bad CRC")
        assert state(hub, BOILER)["value"] == 61.25  # the last good reading, not 99 °C
        board.set_temperature("boiler", 85000)  # the power-on value
        time.sleep(1.5)
        assert not state(hub, BOILER)["available"]
        plugins = {p["name"]: p for p in hub.get("/api/plugins")}
        assert DS18B20["boiler"] in (plugins["gpio"]["note"] or "")
        board.set_temperature("boiler", 60500)
        wait_state(hub, BOILER, lambda s: s["available"] and s["value"] == 60.5)
    finally:
        board.set_temperature("boiler", 61250)


def test_a_missing_chip_is_unavailable_entities_and_a_line_in_hub_plugins(board):
    hub = board.hub
    garage = state(hub, GARAGE)
    assert not garage["available"]
    wait_state(hub, PUMP, lambda s: s["available"])  # the other chip's lines work
    plugins = {p["name"]: p for p in hub.get("/api/plugins")}
    assert plugins["gpio"]["status"] == "running"
    assert "gpiochip9" in plugins["gpio"]["note"] and "does not exist" in plugins["gpio"]["note"]
    shown = run_cli(board.data, "plugins", "--url", hub.url, "--token", hub.token)
    assert "gpiochip9" in shown.stdout, shown.stdout + shown.stderr


def test_a_line_name_the_chip_does_not_have_is_unavailable_and_named(board):
    hub = board.hub
    wait_state(hub, PIR, lambda s: s["available"])  # found by its name, GPIO27
    assert not state(hub, "binary_sensor.ghost")["available"]
    note = {p["name"]: p for p in hub.get("/api/plugins")}["gpio"]["note"]
    assert "'GPIO99' (Ghost) is not on gpiochip0" in note, note


def test_hub_gpio_chips_and_lines_list_the_board(board):
    env = board.env()
    chips = run_cli(board.data, "gpio", "chips", "--json", env=env)
    assert chips.returncode == 0, chips.stderr
    listed = {c["name"]: c for c in json.loads(chips.stdout)}
    assert (REAL_CHIP or "gpiochip0") in listed
    lines = run_cli(board.data, "gpio", "lines", REAL_CHIP or "gpiochip0", "--json", env=env)
    assert lines.returncode == 0, lines.stderr
    rows = json.loads(lines.stdout)[REAL_CHIP or "gpiochip0"]
    relay = rows[LINES["relay"]]
    assert relay["used"] and relay["consumer"] == "ruffhub" and relay["direction"] == "output"
    missing = run_cli(board.data, "gpio", "lines", "gpiochip9", env=env)
    assert missing.returncode == 1 and "gpiochip9" in missing.stderr and "does not exist" in missing.stderr


def test_no_chips_on_this_machine_is_a_clear_line(tmp_path):
    shown = run_cli(tmp_path, "gpio", "chips", "--dev", str(tmp_path))
    assert shown.returncode == 0 and "no GPIO chips found" in shown.stdout, shown


def test_a_chip_that_goes_away_comes_back_and_a_restored_relay_keeps_its_state(tmp_path):
    """A USB GPIO expander pulled out and plugged back in (here: the simulated chip's process ended
    and started again); then a hub restart with ``initial: restore``."""
    if REAL_CHIP:
        pytest.skip("needs the simulated chip to go away")
    b = GpioBoard(tmp_path, outputs=[{"name": "Pump relay", "line": 22, "inverted": True, "initial": "restore"}],
                  inputs=[{"name": "Hall PIR", "line": 27, "bias": "pull_down", "device_class": "motion"}],
                  pwm=[], onewire=[])
    try:
        b.start()
        hub = b.hub
        wait_state(hub, PUMP, lambda s: s["available"] and s["value"] == "off")
        command(hub, PUMP, "turn_on")
        b.sim.stop()
        wait_state(hub, PIR, lambda s: not s["available"], what="the PIR unavailable with its chip gone")
        assert not state(hub, PUMP)["available"]
        plugins = {p["name"]: p for p in hub.get("/api/plugins")}
        assert plugins["gpio"]["status"] == "running" and "gpiochip0" in plugins["gpio"]["note"]
        b.sim.start()  # plugged back in: a fresh chip, every line at its default
        wait_state(hub, PIR, lambda s: s["available"] and s["value"] == "off", what="the PIR back")
        wait_state(hub, PUMP, lambda s: s["available"] and s["value"] == "on", what="the relay back, still on")
        assert b.level("relay") == 0
        assert hub.get("/api/plugins") and not {p["name"]: p for p in hub.get("/api/plugins")}["gpio"]["note"]
        b.call("drive", line=27, level=1)
        wait_state(hub, PIR, lambda s: s["value"] == "on", what="edges read again from the new request")
        hub.stop()
        b.hub.start(timeout=30)
        wait_state(b.hub, PUMP, lambda s: s["available"] and s["value"] == "on", what="the relay restored on")
        assert b.level("relay") == 0
    finally:
        b.stop()


def test_devices_are_the_chip_the_pwm_channel_and_each_sensor(board):
    devices = {d["id"]: d for d in board.hub.get("/api/devices")}
    chip = REAL_CHIP or "gpiochip0"
    assert {PUMP, FAN, PIR, DOOR, BUTTON} <= set(devices[f"gpio:{chip}"]["entities"])
    assert devices["gpio:gpiochip9"]["entities"] == [GARAGE]
    assert LED in devices[f"gpio:pwmchip{0 if REAL_CHIP is None else PWM['chip']}:pwm{PWM['channel']}"]["entities"]
    if "boiler" in DS18B20:
        assert devices[f"gpio:{DS18B20['boiler']}"]["model"] == "DS18B20"
