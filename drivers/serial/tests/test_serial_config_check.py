"""``hub config check`` on the serial section: every problem in one pass, each at its key, and what
would fail once the driver runs (opening the port, a line arriving, a command) fails here instead."""

from pathlib import Path

import pytest

from hub.config import load_config
from hub_serial.config import SerialConfig

GOOD = """\
serial:
  ports:
    - name: Stove
      port: /dev/ttyA
      entities:
        - {key: temperature, device_class: temperature, pattern: 'T=(?P<value>-?[0-9.]+)'}
        - key: relay
          capability: switch
          pattern: 'R=(?P<value>\\w+)'
          value_map: {ajar: "on"}
        - {key: setpoint, capability: climate, commands: {set_temperature: {send: 'SP {temperature}'}}}
    - name: Hall
      port: /dev/ttyB
      entities:
        - {key: temperature, pattern: 'T=(?P<value>-?[0-9.]+)'}
"""


def issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "configuration.yaml"
    path.write_text(text)
    return [str(i) for i in load_config(path, {"serial": SerialConfig}).issues]


def test_a_good_configuration_validates(tmp_path):
    assert issues(tmp_path, GOOD) == []


def test_one_pass_lists_a_type_error_and_the_duplicates_beside_it_each_at_its_key(tmp_path):
    found = issues(tmp_path, GOOD.replace("port: /dev/ttyB", "port: /dev/ttyA\n      baudrate: fast"))
    assert [f.split(": ")[0].split(":", 1)[1] + " " + f.split(": ")[1] for f in found] == [
        "4:7 serial.ports[0].port", "13:7 serial.ports[1].port", "14:7 serial.ports[1].baudrate"], found
    assert "port '/dev/ttyA' is also used by ports[1] (Hall)" in found[0]


def test_two_ports_with_one_name_are_one_mistake_named_at_both(tmp_path):
    found = issues(tmp_path, GOOD.replace("name: Hall", "name: stove"))
    assert len(found) == 2 and all("device id (from the name when no id is given) 'stove'" in f for f in found)
    assert ":3:7: serial.ports[0].name" in found[0] and ":12:7: serial.ports[1].name" in found[1]


def test_entity_ids_that_collide_across_ports_are_refused(tmp_path):
    # "Stove" + "temperature" and "Stove temperature" + "" ... are one id: sensor.stove_temperature.
    found = issues(tmp_path, GOOD.replace("name: Hall", "name: Stove temperature").replace(
        "- {key: temperature, pattern", "- {key: temperature, name: ' ', pattern"))
    assert len(found) == 2 and all("entity id 'sensor.stove_temperature' is also used" in f for f in found), found


@pytest.mark.parametrize(("change", "to", "message"), [
    ('value_map: {ajar: "on"}', "value_map: {ajar: on}",  # YAML 1.1: unquoted on is true, and "1.0" no switch state
     "entities[1].value_map.ajar: a switch is on or off; 1.0 is neither (quote 'on'"),
    ('value_map: {ajar: "on"}', "value_map: {ajar: half}", "a switch is on or off; 'half' is neither"),
    ("{key: setpoint, capability: climate,", "{key: setpoint, capability: climate, hvac_mode: hat,",
     "hvac_mode: 'hat' is not a mode"),
    ("{key: setpoint, capability: climate,", "{key: setpoint, capability: climate, min_temp: 40, max_temp: 30,",
     "min_temp: min_temp 40 is above max_temp 30"),
    ("send: 'SP {temperature}'", "send: 'SP° {temperature}'", "commands.set_temperature.send: cannot be written in ascii"),
    ("port: /dev/ttyA", "port: /dev/ttyA\n      terminator: '¶'", "terminator: the terminator cannot be written in ascii"),
    ("device_class: temperature,", "device_class: temprature,", "device_class: device_class 'temprature' is not valid"),
])
def test_what_would_fail_at_run_time_fails_config_check(tmp_path, change, to, message):
    found = issues(tmp_path, GOOD.replace(change, to))
    assert found and any(message in f for f in found), found
