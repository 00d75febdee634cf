"""The modbus section: mistakes are reported with file, line and key, as `hub config check` shows them."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.config import load_config
from hub_modbus import profiles
from hub_modbus.config import DeviceConfig, ModbusConfig, RtuConnection
from hub_modbus.entity_config import EntityConfig

GOOD = """\
modbus:
  connections:
    meters: {type: rtu, port: /dev/serial/by-id/usb-FTDI-if00-port0, baudrate: 9600}
    plc: {type: tcp, host: 10.0.0.5}
    gateway: {type: rtu_over_tcp, host: 10.0.0.6, port: 4001}
  devices:
    - {name: Main meter, connection: meters, device_id: 1, profile: sdm120}
    - name: Boiler
      connection: plc
      device_id: 3
      entities:
        - {key: flow_temp, register: input, address: 10, data_type: int16, scale: 0.1, device_class: temperature}
        - {key: pump, capability: switch, register: coil, address: 0}
"""


def issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "configuration.yaml"
    path.write_text(text)
    return [str(i) for i in load_config(path, {"modbus": ModbusConfig}).issues]


def test_a_good_configuration_validates(tmp_path):
    assert issues(tmp_path, GOOD) == []


def test_a_typo_is_located_by_file_line_and_key(tmp_path):
    found = issues(tmp_path, GOOD.replace("baudrate: 9600", "baudrat: 9600"))
    assert len(found) == 1
    assert ":3:" in found[0] and "modbus.connections.meters" in found[0] and "baudrat" in found[0]


def test_an_entity_mistake_points_at_the_entity(tmp_path):
    found = issues(tmp_path, GOOD.replace("address: 10, data_type: int16", "address: 10, data_type: int17"))
    assert len(found) == 1
    assert ":12:" in found[0] and "modbus.devices[1].entities[0].data_type" in found[0]


def test_an_unknown_profile_lists_the_shipped_ones(tmp_path):
    (found,) = issues(tmp_path, GOOD.replace("profile: sdm120", "profile: sdm121"))
    assert "modbus.devices[0]" in found and "sdm121" in found and "sdm120" in found


def test_an_undefined_connection_is_named_at_its_key(tmp_path):
    (found,) = issues(tmp_path, GOOD.replace("connection: plc", "connection: plc2"))
    assert found.endswith(":9:7: modbus.devices[1].connection: connection 'plc2' is not defined; "
                          "defined: gateway, meters, plc")


def test_one_pass_lists_a_type_error_and_an_unknown_connection_beside_it(tmp_path):
    # Before: the unknown connection appeared only once the type error was fixed, and at 1:1.
    found = issues(tmp_path, GOOD.replace("connection: plc", "connection: plc2")
                   .replace("address: 10, data_type: int16", "address: 10, data_type: int17")
                   .replace("connection: meters, device_id: 1", "connection: meterz, device_id: 1"))
    assert [f.split(": ", 2)[0].rsplit(":", 2)[-2:] + [f.split(": ", 2)[1]] for f in found] == [
        ["7", "26"] + ["modbus.devices[0].connection"],
        ["9", "7"] + ["modbus.devices[1].connection"],
        ["12", "58"] + ["modbus.devices[1].entities[0].data_type"],
    ], found
    assert "'meterz' is not defined" in found[0] and "'plc2' is not defined" in found[1]


def test_a_value_past_the_last_register_is_refused(tmp_path):
    (found,) = issues(tmp_path, GOOD.replace("address: 10, data_type: int16", "address: 65535, data_type: int32"))
    assert ":12:" in found and "modbus.devices[1].entities[0].address" in found
    assert "2 registers from 65535 end at 65536, past the last address, 65535" in found
    assert issues(tmp_path, GOOD.replace("address: 10, data_type: int16", "address: 65534, data_type: int32")) == []


def test_two_devices_with_one_name_are_refused_at_both(tmp_path):
    found = issues(tmp_path, GOOD.replace("name: Boiler", "name: main METER"))
    assert [f.split(": ")[1] for f in found] == ["modbus.devices[0].name", "modbus.devices[1].name"]
    assert "also used by devices[1] (main METER)" in found[0] and "also used by devices[0] (Main meter)" in found[1]
    # The same meter twice: one mistake, not one per entity.
    copied = GOOD.replace("profile: sdm120}", "profile: sdm120}\n    - {name: Main meter, connection: meters, device_id: 2, profile: sdm120}")
    assert len(issues(tmp_path, copied)) == 2


def test_entity_ids_that_collide_across_devices_are_refused(tmp_path):
    # "Boiler" + "flow temp" and "Boiler flow" + "temp" are both sensor.boiler_flow_temp.
    text = GOOD + """    - name: Boiler flow
      connection: plc
      device_id: 4
      entities:
        - {key: temp, register: input, address: 1}
"""
    found = issues(tmp_path, text)
    assert len(found) == 2 and all("entity id 'sensor.boiler_flow_temp' is also used" in f for f in found)
    assert "modbus.devices[1].entities[0]:" in found[0] and "modbus.devices[2].entities[0]:" in found[1]


@pytest.mark.parametrize(("change", "key", "message"), [
    ("pump, capability: switch, register: coil, address: 0",
     "pump, capability: switch, register: holding, address: 0, on_value: 70000", "on_value: 70000 does not fit uint16"),
    ("device_class: temperature}", "device_class: temprature}", "device_class: device_class 'temprature' is not valid"),
    ("register: input, address: 10, data_type: int16, scale: 0.1,",
     "register: holding, address: 10, data_type: int16, scale: 0.1, capability: climate, min_temp: 40, max_temp: 30,",
     "min_temp: min_temp 40 is above max_temp 30"),
    ("register: input, address: 10, data_type: int16, scale: 0.1,",
     "register: holding, address: 10, data_type: int16, scale: 0.001, capability: climate, max_temp: 40,",
     "max_temp: a set-point of 40 cannot be written: 40000 does not fit int16"),
    ("device_id: 1, profile: sdm120}", "device_id: 0, profile: sdm120}", "device_id: device_id 0 cannot be polled"),
    ("device_id: 1, profile: sdm120}", "device_id: 1, profile: sdm120, max_registers: 1}",
     "max_registers: max_registers 1 is less than the registers of voltage, current"),
    ("connection: plc\n      device_id: 3", "connection: meters\n      device_id: 1",
     "devices[1].device_id: device_id 1 on meters is also used by devices[0] (Main meter)"),
    ("baudrate: 9600}", "baudrate: 9600, bytesize: 7}", "bytesize: Value error, Modbus RTU frames are 8 data bits"),
    ("plc: {type: tcp, host: 10.0.0.5}", "plc: {type: rtu, port: /dev/serial/by-id/usb-FTDI-if00-port0}",
     "port: serial port '/dev/serial/by-id/usb-FTDI-if00-port0' is also used by connections.meters"),
])
def test_what_would_fail_at_run_time_fails_config_check(tmp_path, change, key, message):
    found = issues(tmp_path, GOOD.replace(change, key))
    assert found and any(message in f for f in found), found


def test_entity_rules():
    with pytest.raises(ValidationError, match="coil holds one bit"):
        EntityConfig(key="x", register="coil", address=0, data_type="uint16")
    with pytest.raises(ValidationError, match="switch must be on a coil or a holding"):
        EntityConfig(key="x", register="input", address=0, capability="switch")
    with pytest.raises(ValidationError, match="needs bit"):
        EntityConfig(key="x", address=0, data_type="bit")
    with pytest.raises(ValidationError, match="count"):
        EntityConfig(key="x", address=0, data_type="string", capability="binary_sensor")
    assert EntityConfig(key="x", register="discrete_input", address=3).data_type == "bool"


def test_device_rules():
    with pytest.raises(ValidationError, match="profile or at least one entity"):
        DeviceConfig(name="d", connection="c")
    with pytest.raises(ValidationError, match="used twice"):
        DeviceConfig(name="d", connection="c", entities=[{"key": "a", "address": 0}, {"key": "a", "address": 1}])
    with pytest.raises(ValidationError, match="not have: nope"):
        DeviceConfig(name="d", connection="c", profile="sdm120", exclude=["nope"])
    device = DeviceConfig(name="d", connection="c", profile="sdm120", exclude=["phase_angle"],
                          entities=[{"key": "voltage", "register": "input", "address": 0, "data_type": "float32",
                                     "poll_interval": 1}])
    keys = [e.key for e in device.resolved]
    assert "phase_angle" not in keys and len(keys) == 13
    assert next(e for e in device.resolved if e.key == "voltage").poll_interval == 1


def test_rtu_gap_is_three_and_a_half_characters_with_the_fixed_floor_above_19200():
    assert RtuConnection(type="rtu", port="/dev/x", baudrate=9600).gap == pytest.approx(3.5 * 10 / 9600)
    assert RtuConnection(type="rtu", port="/dev/x", baudrate=9600, parity="E").gap == pytest.approx(3.5 * 11 / 9600)
    assert RtuConnection(type="rtu", port="/dev/x", baudrate=115200).gap == 0.00175


@pytest.mark.parametrize("name", profiles.available())
def test_every_shipped_profile_is_valid_and_cites_its_source(name):
    data = profiles.load(name)
    assert data["source"] and data["manufacturer"] and data["model"]
    device = DeviceConfig(name="d", connection="c", profile=name)
    assert len(device.resolved) == len(data["entities"]) > 0
