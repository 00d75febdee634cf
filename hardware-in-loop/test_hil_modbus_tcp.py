"""Modbus TCP: a real ``hub run`` against the pymodbus simulator in its own process.

One hub and one simulator go through the whole story (readings, commands, a refused address, a device
that stops answering while its neighbours go on, a frozen gateway), because starting processes is
the expensive part and the scenario is one story anyway.
"""

from __future__ import annotations

import json

from hil import available, free_port, run_cli, state, wait_state

CONFIG = """\
modbus:
  connections:
    plc: {{type: tcp, host: 127.0.0.1, port: {port}, timeout: 0.25, retries: 1, retry_backoff: 0.01}}
  devices:
    - {{name: Main meter, connection: plc, device_id: 1, profile: sdm120, poll_interval: 0.2, unavailable_after: 2}}
    - {{name: Relays, connection: plc, device_id: 2, profile: relay_board_8ch, poll_interval: 0.2, unavailable_after: 2}}
    - name: Boiler
      connection: plc
      device_id: 3
      poll_interval: 0.2
      unavailable_after: 2
      entities:
        - {{key: setpoint, capability: climate, register: holding, address: 300, data_type: int16, scale: 0.1, min_temp: 5, max_temp: 30}}
        - {{key: wave, register: input, address: 198}}
        - {{key: missing, register: input, address: 203}}
        - {{key: after_hole, register: input, address: 211}}
"""


def cli_read(data, port: int, *args: str) -> dict:
    """``hub modbus read``: an independent client checking what the hub wrote."""
    result = run_cli(data, "modbus", "read", f"127.0.0.1:{port}", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_modbus_tcp_scenario(simulator, hub_process, tmp_path):
    port = free_port()
    sim = simulator("modbus_sim.py", ["tcp", "--port", str(port), "--speed", "2000",
                                      "--device", "1=sdm120", "--device", "2=relay8", "--device", "3=generic"])
    hub = hub_process(CONFIG.format(port=port))

    # Readings arrive, plausible, and the meter counts up.
    volts = wait_state(hub, "sensor.main_meter_voltage", available, what="the meter's voltage")
    assert 220 < volts["value"] < 240 and volts["attributes"]["unit"] == "V"
    # Its own request, maybe not answered yet when the voltage's was (a fresh-clone CI run under load).
    energy = wait_state(hub, "meter.main_meter_total_active_energy", available, what="the meter's energy")["value"]
    wait_state(hub, "meter.main_meter_total_active_energy", lambda s: s["available"] and s["value"] > energy,
               what="energy to rise")
    assert state(hub, "climate.boiler_setpoint")["attributes"]["target_temperature"] == 30.0

    # Coalesced: 14 meter entities cost 3 requests a cycle (one per cluster of addresses).
    status = hub.get("/api/plugins/modbus/status")
    meter = next(d for d in status["devices"] if d["device_id"] == 1)
    assert meter["requests_per_cycle"] == 3 and meter["entities"] == 14

    # A refused address costs that entity only; the block around it was split for good.
    boiler = next(d for d in status["devices"] if d["device_id"] == 3)
    assert "illegal data address" in boiler["entity_errors"]["missing"]
    assert not state(hub, "sensor.boiler_missing")["available"]
    assert available(state(hub, "sensor.boiler_after_hole")) and available(state(hub, "sensor.boiler_wave"))

    # Commands write, read back, and are visible to an independent client.
    answer = hub.post("/api/entities/switch.relays_relay_3/commands/turn_on")
    assert answer["state"]["value"] == "on"
    assert cli_read(tmp_path, port, "-i", "2", "--register", "coil", "-c", "4")["values"] == [False, False, True, False]
    hub.post("/api/entities/switch.relays_relay_3/commands/toggle")
    assert state(hub, "switch.relays_relay_3")["value"] == "off"
    hub.post("/api/entities/climate.boiler_setpoint/commands/set_temperature", {"temperature": 22.5})
    assert cli_read(tmp_path, port, "-i", "3", "-a", "300")["values"] == [225]
    status_code, body = hub.request("POST", "/api/entities/climate.boiler_setpoint/commands/set_temperature",
                                    {"temperature": 31})
    assert status_code == 422  # checked by the hub against the entity's max_temp, naming the field
    assert body["errors"] == [{"field": "temperature", "message": "Input should be less than or equal to 30"}]

    # The meter stops answering; the relay board on the same link goes on, commands included.
    sim.mute(1)
    wait_state(hub, "sensor.main_meter_voltage", lambda s: not s["available"], what="the meter to go unavailable")
    hub.post("/api/entities/switch.relays_relay_1/commands/turn_on")
    assert state(hub, "switch.relays_relay_1")["available"]
    sim.mute()
    wait_state(hub, "sensor.main_meter_voltage", available, what="the meter to come back")

    # The whole gateway freezes: everything goes unavailable, then comes back by itself.
    sim.pause()
    try:
        wait_state(hub, "switch.relays_relay_1", lambda s: not s["available"], what="the relays to go unavailable")
        status_code, body = hub.request("POST", "/api/entities/switch.relays_relay_1/commands/turn_off")
        assert status_code == 409
    finally:
        sim.resume()
    wait_state(hub, "switch.relays_relay_1", lambda s: s["available"] and s["value"] == "on", what="relays back")
    wait_state(hub, "sensor.main_meter_voltage", available, what="the meter back after the freeze")
    assert hub.proc.poll() is None


def test_modbus_scan_finds_the_ids_that_answer(simulator, tmp_path):
    port = free_port()
    simulator("modbus_sim.py", ["tcp", "--port", str(port), "--device", "1=sdm120", "--device", "3=relay4"])
    result = run_cli(tmp_path, "modbus", "scan", f"127.0.0.1:{port}", "--ids", "1-4", "--timeout", "0.2", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)["found"]
    assert [row["device_id"] for row in found] == [1, 3]
    # The meter has no holding register 0: it answers with an exception, which still proves it is there.
    assert "illegal data address" in found[0]["answer"]
