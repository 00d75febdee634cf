"""A number and a select on a serial device over a real pty: state from a pattern, commands from a
template with an acknowledgement, values checked by the hub before anything is sent."""

import asyncio

import pytest
from pydantic import ValidationError
from test_serial_port import pty, wait_for  # noqa: F401  (pty is a fixture)

import hub_serial
from hub.core.commands import InvalidArguments
from hub.runtime import Hub
from hub_serial import patterns
from hub_serial.config import EntityConfig

CONFIG = """
serial:
  ports:
    - name: Heater
      port: {path}
      entities:
        - key: set_point
          capability: number
          device_class: temperature
          min: 10
          max: 30
          step: 0.5
          pattern: 'SP=(?P<value>[0-9.]+)'
          commands:
            set_value: {{send: 'SP {{value}}', expect: '^OK SP=(?P<value>[0-9.]+)', error: '^ERR', timeout: 0.5}}
        - key: mode
          capability: select
          options: ['off', eco, comfort]
          pattern: 'MODE=(?P<value>\\w+)'
          value_map: {{'0': 'off', '1': eco, '2': comfort}}
          commands:
            select_option: {{send: 'MODE {{option}}'}}
"""


async def test_number_and_select_over_a_pty(tmp_path, pty):  # noqa: F811
    peer, path = pty
    (tmp_path / "configuration.yaml").write_text(CONFIG.format(path=path))
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("serial", hub_serial)
    await hub.start()
    try:
        assert hub.plugins.info["serial"].status == "running", hub.plugins.info["serial"].error
        await wait_for(lambda: hub.contexts["serial"].data["devices"][0].stats.open)
        peer.write(b"SP=21.5 MODE=2\n")
        await wait_for(lambda: hub.states.get("select.heater_mode").value == "comfort")
        number = hub.states.get("number.heater_set_point")
        assert number.value == 21.5 and number.attributes["step"] == 0.5 and number.attributes["unit"] == "°C"
        assert hub.states.get("select.heater_mode").attributes["options"] == ["off", "eco", "comfort"]

        responder = asyncio.create_task(peer.answer(b"OK SP=23\n"))
        result = await hub.commands.call("number.heater_set_point", "set_value", {"value": 23})
        assert await responder == b"SP 23\n" and result["answer"] == "OK SP=23"
        assert hub.states.get("number.heater_set_point").value == 23  # from the device's answer

        # Refused by the hub: nothing reaches the port.
        with pytest.raises(InvalidArguments, match="value: Input should be less than or equal to 30"):
            await hub.commands.call("number.heater_set_point", "set_value", {"value": 31})
        with pytest.raises(InvalidArguments, match="option: Input should be 'off', 'eco' or 'comfort'"):
            await hub.commands.call("select.heater_mode", "select_option", {"option": "boost"})

        await hub.commands.call("select.heater_mode", "select_next")  # comfort -> off: no acknowledgement
        assert await peer.read() == b"MODE off\n"
        assert hub.states.get("select.heater_mode").value == "off"
        await hub.commands.call("select.heater_mode", "select_option", {"option": "eco"})
        assert await peer.read() == b"MODE eco\n"
        assert hub.states.get("select.heater_mode").value == "eco"
    finally:
        await hub.stop()


def test_a_select_shows_only_its_options():
    e = EntityConfig(key="m", capability="select", options=["eco", "boost"], pattern="M=(?P<value>\\w+)",
                     value_map={"E": "eco"})
    assert patterns.convert(e, "E") == ("eco", {})
    assert patterns.convert(e, "boost") == ("boost", {})
    with pytest.raises(ValueError, match="'turbo' is not one of the options"):
        patterns.convert(e, "turbo")


@pytest.mark.parametrize("fields, message", [
    ({"capability": "select", "options": [False, "eco"]}, "quote it ('off')"),
    ({"capability": "select"}, "a select needs options"),
    ({"capability": "select", "options": ["eco"], "value_map": {"1": "boost"}}, "maps to boost, which are not options"),
    ({"capability": "select", "options": ["eco"], "commands": {"select_next": {"send": "NEXT"}}},
     "select_next is carried out by the hub through select_option"),
    ({"capability": "number", "min": 30, "max": 10}, "min (30) must be below max (10)"),
    ({"capability": "number", "commands": {"set_value": {"send": "SP {temperature}"}}}, "set_value has value"),
    ({"capability": "sensor", "step": 1}, "step is for a number, not a sensor"),
])
def test_configuration_mistakes_are_named(fields, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EntityConfig(key="x", pattern="(?P<value>.*)", **fields)
