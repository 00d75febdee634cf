"""The driver inside a hub, against a pymodbus server in the same process: writes confirmed by
reading back, busy devices retried, refused values reported as the caller's mistake."""

import asyncio

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

import hub_modbus
from hub.core.commands import CommandFailed, CommandRefused
from hub.runtime import Hub
from hub.net.ports import free_port  # below the ephemeral range: no close-then-bind race

STUBBORN, BUSY, PICKY = 10, 20, 30


@pytest.fixture
async def server():
    busy_left = [2]

    async def action(function_code, start, address, count, registers, values):
        if values and address == STUBBORN:
            values[0] = 0  # a device that acknowledges writes it ignores
        if values and address == PICKY and values[0] > 60:
            return ExcCodes.ILLEGAL_VALUE
        if function_code == 3 and address <= BUSY < address + count and busy_left[0]:
            busy_left[0] -= 1
            return ExcCodes.DEVICE_BUSY
        return None

    device = SimDevice(1, ([SimData(0, count=1, values=0, datatype=DataType.BITS)],
                           [SimData(0, count=1, values=0, datatype=DataType.BITS)],
                           [SimData(0, count=40, values=0, datatype=DataType.REGISTERS)],
                           [SimData(0, count=1, datatype=DataType.INVALID)]), action=action)
    port = free_port()
    srv = ModbusTcpServer([device], address=("127.0.0.1", port))
    await srv.serve_forever(background=True)
    yield port
    await srv.shutdown()


async def start_hub(tmp_path, port: int) -> Hub:
    (tmp_path / "configuration.yaml").write_text(f"""
modbus:
  connections:
    plc: {{type: tcp, host: 127.0.0.1, port: {port}, timeout: 0.5, retries: 2, retry_backoff: 0.01}}
  devices:
    - name: Box
      connection: plc
      poll_interval: 0.05
      entities:
        - {{key: stubborn, capability: switch, register: holding, address: {STUBBORN}}}
        - {{key: busy, register: holding, address: {BUSY}}}
        - {{key: picky, capability: climate, register: holding, address: {PICKY}, min_temp: 0, max_temp: 90}}
        - {{key: relay, register: coil, address: 0}}
""")
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("modbus", hub_modbus)
    await hub.start()
    assert hub.plugins.info["modbus"].status == "running", hub.plugins.info["modbus"].error
    return hub


async def wait_for(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_writes_busy_devices_and_refusals(tmp_path, server):
    hub = await start_hub(tmp_path, server)
    try:
        # The first two reads of the busy register got "device busy"; the retries got through.
        await wait_for(lambda: (s := hub.states.get("sensor.box_busy")) is not None and s.available)
        assert hub.states.get("sensor.box_busy").value == 0
        bus = hub.contexts["modbus"].data["buses"]["plc"]
        assert bus.stats.exceptions >= 2

        result = await hub.commands.call("switch.box_relay", "turn_on")
        assert result == {"confirmed": True, "value": "on"}

        with pytest.raises(CommandFailed, match="read back"):
            await hub.commands.call("switch.box_stubborn", "turn_on")
        assert hub.states.get("switch.box_stubborn").value == "off"  # what the device really holds

        await hub.commands.call("climate.box_picky", "set_temperature", {"temperature": 50})
        assert hub.states.get("climate.box_picky").attributes["target_temperature"] == 50
        with pytest.raises(CommandRefused, match="illegal data value"):
            await hub.commands.call("climate.box_picky", "set_temperature", {"temperature": 61})
        with pytest.raises(CommandRefused, match="only runs in heat"):
            await hub.commands.call("climate.box_picky", "set_hvac_mode", {"hvac_mode": "cool"})
    finally:
        await hub.stop()


async def test_a_device_that_is_not_there_goes_unavailable_and_costs_one_timeout_per_cycle(tmp_path):
    (tmp_path / "configuration.yaml").write_text(f"""
modbus:
  connections:
    nowhere: {{type: tcp, host: 127.0.0.1, port: {free_port()}, timeout: 0.1, retries: 0, reconnect_max: 0.2}}
  devices:
    - {{name: Ghost, connection: nowhere, poll_interval: 0.05, unavailable_after: 2, entities: [{{key: x, address: 0}}]}}
""")
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("modbus", hub_modbus)
    await hub.start()
    try:
        device = hub.contexts["modbus"].data["devices"][0]
        await wait_for(lambda: device.health.available is False)
        assert "cannot open" in device.health.last_error or "not open" in device.health.last_error
        assert not hub.states.get("sensor.ghost_x").available
        assert hub.plugins.info["modbus"].status == "running"  # an absent device is not a crashed driver
    finally:
        await hub.stop()
