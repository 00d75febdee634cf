"""Modbus RTU over a real serial line: a socat pty pair with the simulator on one end, paced at the
line's baud rate, and ``hub run`` on the other; or, with ``HIL_MODBUS_PORT`` set, a real RS-485 adapter
with an SDM120 (id ``HIL_METER_ID``, default 1) and a relay board (id ``HIL_RELAY_ID``, default 2)."""

from __future__ import annotations

import os

import pytest

from hil import REAL_MODBUS_PORT, available, state, wait_state

BAUD = int(os.environ.get("HIL_MODBUS_BAUD", "19200"))
METER_ID = int(os.environ.get("HIL_METER_ID", "1"))
RELAY_ID = int(os.environ.get("HIL_RELAY_ID", "2"))

CONFIG = """\
modbus:
  connections:
    rs485: {{type: rtu, port: "{port}", baudrate: {baud}, timeout: 0.3, retries: 1, retry_backoff: 0.01, reconnect_max: 0.5}}
  devices:
    - {{name: Meter, connection: rs485, device_id: {meter}, profile: sdm120, poll_interval: 0.3, unavailable_after: 2}}
    - {{name: Board, connection: rs485, device_id: {relay}, profile: relay_board_4ch, poll_interval: 0.3, unavailable_after: 2}}
"""


def start_line(pty_pair, simulator):
    if REAL_MODBUS_PORT:
        return REAL_MODBUS_PORT, None, None
    line = pty_pair("rs485")
    sim = simulator("modbus_sim.py", ["rtu", "--port", str(line.device_end), "--baudrate", str(BAUD),
                                      "--device", f"{METER_ID}=sdm120", "--device", f"{RELAY_ID}=relay8"])
    return str(line.hub_end), line, sim


def test_modbus_rtu_readings_commands_and_a_silent_neighbour(pty_pair, simulator, hub_process):
    port, line, sim = start_line(pty_pair, simulator)
    hub = hub_process(CONFIG.format(port=port, baud=BAUD, meter=METER_ID, relay=RELAY_ID))

    volts = wait_state(hub, "sensor.meter_voltage", available, what="the meter's voltage")
    assert 90 < volts["value"] < 260  # 120 V and 230 V mains both pass on real hardware
    wait_state(hub, "switch.board_relay_2", available, what="the relay board")
    hub.post("/api/entities/switch.board_relay_2/commands/turn_on")
    assert state(hub, "switch.board_relay_2")["value"] == "on"
    hub.post("/api/entities/switch.board_relay_2/commands/turn_off")
    assert state(hub, "switch.board_relay_2")["value"] == "off"
    if sim is None:
        return  # the rest needs a peer we can silence

    sim.mute(METER_ID)
    wait_state(hub, "sensor.meter_voltage", lambda s: not s["available"], what="the meter to go unavailable")
    # The silent meter costs a timeout per cycle, never the line: the board still obeys.
    hub.post("/api/entities/switch.board_relay_2/commands/turn_on")
    assert state(hub, "switch.board_relay_2")["available"]
    sim.mute()
    wait_state(hub, "sensor.meter_voltage", available, what="the meter to come back")


@pytest.mark.skipif(bool(REAL_MODBUS_PORT), reason="unplugging a real adapter needs a human: see README")
def test_modbus_rtu_adapter_unplugged_and_replugged(pty_pair, simulator, hub_process):
    port, line, sim = start_line(pty_pair, simulator)
    hub = hub_process(CONFIG.format(port=port, baud=BAUD, meter=METER_ID, relay=RELAY_ID))
    wait_state(hub, "sensor.meter_voltage", available, what="the meter's voltage")

    sim.stop()
    line.unplug()
    wait_state(hub, "sensor.meter_voltage", lambda s: not s["available"], what="the meter to go unavailable")
    assert not state(hub, "switch.board_relay_1")["available"]

    line.replug()
    simulator("modbus_sim.py", ["rtu", "--port", str(line.device_end), "--baudrate", str(BAUD),
                                "--device", f"{METER_ID}=sdm120", "--device", f"{RELAY_ID}=relay8"])
    wait_state(hub, "sensor.meter_voltage", available, timeout=15, what="the meter after the replug")
    wait_state(hub, "switch.board_relay_1", available, what="the board after the replug")
    assert hub.proc.poll() is None
    status = hub.get("/api/plugins/modbus/status")
    assert status["connections"]["rs485"]["reconnects"] >= 2
