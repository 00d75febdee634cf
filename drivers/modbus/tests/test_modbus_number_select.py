"""A number and a select on holding registers, against a Modbus device in its own process: values
scaled both ways, options mapped to register values, writes confirmed, refusals reported."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient

import hub_modbus
from hub.core.commands import CommandRefused, InvalidArguments
from hub.runtime import Hub
from hub.net.ports import free_port  # below the ephemeral range: no close-then-bind race

SIM = Path(__file__).with_name("modbus_sim.py")


async def wait_for(condition, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def device():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SIM), str(port)])
    try:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        for _ in range(200):
            if await client.connect():
                break
            assert proc.poll() is None, "the simulated device exited"
            await asyncio.sleep(0.05)
        yield port, client
        client.close()
    finally:
        proc.terminate()
        proc.wait(10)


async def register(client: AsyncModbusTcpClient, address: int) -> int:
    return (await client.read_holding_registers(address, count=1, device_id=1)).registers[0]


CONFIG = """
modbus:
  connections:
    boiler: {{type: tcp, host: 127.0.0.1, port: {port}, timeout: 0.5, retries: 1, retry_backoff: 0.01}}
  devices:
    - name: Boiler
      connection: boiler
      poll_interval: 0.05
      entities:
        - {{key: flow_set_point, capability: number, register: holding, address: 10, data_type: int16,
           scale: 0.1, min: 20, max: 95, step: 0.5, device_class: temperature}}
        - {{key: mode, capability: select, register: holding, address: 11, options: ['off', eco, comfort]}}
        - {{key: fan, capability: select, register: holding, address: 12, options: {{low: 10, high: 30}}}}
"""


async def test_number_and_select_on_holding_registers(tmp_path, device):
    port, client = device
    (tmp_path / "configuration.yaml").write_text(CONFIG.format(port=port))
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("modbus", hub_modbus)
    await hub.start()
    try:
        assert hub.plugins.info["modbus"].status == "running", hub.plugins.info["modbus"].error
        await wait_for(lambda: (s := hub.states.get("select.boiler_mode")) is not None and s.available)
        assert hub.states.get("select.boiler_mode").value == "off"  # register 0, the first option
        number = hub.states.get("number.boiler_flow_set_point")
        assert number.value == 0 and number.attributes["unit"] == "°C" and number.attributes["max"] == 95

        result = await hub.commands.call("number.boiler_flow_set_point", "set_value", {"value": 62.5})
        assert result == {"confirmed": True, "value": 62.5}
        assert await register(client, 10) == 625  # tenths, as the device keeps it
        with pytest.raises(InvalidArguments, match="value: Input should be less than or equal to 95"):
            await hub.commands.call("number.boiler_flow_set_point", "set_value", {"value": 96})
        with pytest.raises(InvalidArguments, match="multiple of 0.5"):
            await hub.commands.call("number.boiler_flow_set_point", "set_value", {"value": 62.3})

        await hub.commands.call("select.boiler_mode", "select_option", {"option": "comfort"})
        assert await register(client, 11) == 2
        await hub.commands.call("select.boiler_mode", "select_next")  # comfort -> off, cycling
        assert await register(client, 11) == 0 and hub.states.get("select.boiler_mode").value == "off"
        # Register 12 holds 0, which the fan's map does not name: its option is unknown, not invented.
        assert hub.states.get("select.boiler_fan").value is None and hub.states.get("select.boiler_fan").available
        await hub.commands.call("select.boiler_fan", "select_last")
        assert await register(client, 12) == 30 and hub.states.get("select.boiler_fan").value == "high"
        with pytest.raises(InvalidArguments, match="option: Input should be 'low' or 'high'"):
            await hub.commands.call("select.boiler_fan", "select_option", {"option": "max"})

        # A change at the device (its own panel) shows in the hub at the next poll.
        await client.write_register(10, 450, device_id=1)
        await wait_for(lambda: hub.states.get("number.boiler_flow_set_point").value == 45)
        # A register value outside the map is no option: unknown, with the reason in the status...
        await client.write_register(11, 7, device_id=1)
        await wait_for(lambda: hub.states.get("select.boiler_mode").value is None)
        device_status = hub.contexts["modbus"].data["devices"][0]
        assert "register value 7 is not one of the options" in device_status.health.entity_errors["mode"]
        # ...and still available, so choosing an option sets it right.
        await hub.commands.call("select.boiler_mode", "select_option", {"option": "eco"})
        assert hub.states.get("select.boiler_mode").value == "eco" and "mode" not in device_status.health.entity_errors
    finally:
        await hub.stop()


async def test_a_value_the_device_refuses_is_the_callers_mistake(tmp_path, device):
    port, client = device
    config = CONFIG.format(port=port).replace("min: 20, max: 95", "min: 20, max: 200")
    (tmp_path / "configuration.yaml").write_text(config)
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("modbus", hub_modbus)
    await hub.start()
    try:
        await wait_for(lambda: (s := hub.states.get("number.boiler_flow_set_point")) is not None and s.available)
        with pytest.raises(CommandRefused, match="illegal data value"):
            await hub.commands.call("number.boiler_flow_set_point", "set_value", {"value": 150})  # 1500 > 900
        assert await register(client, 10) == 0
    finally:
        await hub.stop()


def config_issues(tmp_path, entity: str) -> list[str]:
    from hub.config import load_config
    from hub_modbus.config import ModbusConfig

    path = tmp_path / "configuration.yaml"
    path.write_text("modbus:\n  connections:\n    plc: {type: tcp, host: 127.0.0.1}\n  devices:\n"
                    "    - name: Boiler\n      connection: plc\n      entities:\n        - " + entity + "\n")
    return [str(i) for i in load_config(path, {"modbus": ModbusConfig}).issues]


@pytest.mark.parametrize("entity, message", [
    ("{key: m, capability: select, address: 1, options: [off, eco]}", "quote it ('off')"),
    ("{key: m, capability: select, address: 1}", "a select needs options"),
    ("{key: m, capability: select, address: 1, options: {a: 1, b: 1}}", "same register value"),
    ("{key: m, capability: select, register: input, address: 1, options: [a]}", "must be a holding register"),
    ("{key: n, capability: number, address: 1, min: 50, max: 10}", "min (50) must be below max (10)"),
    ("{key: n, capability: number, address: 1, step: -1}", "greater than 0"),
    ("{key: n, capability: number, address: 1, data_type: string, count: 2}", "numeric data_type"),
    ("{key: s, address: 1, min: 0}", "min is for a number, not a sensor"),
])
def test_config_check_names_number_and_select_mistakes(tmp_path, entity, message):
    (issue,) = config_issues(tmp_path, entity)
    assert ":8:" in issue and "modbus.devices[0].entities[0]" in issue and message in issue, issue
