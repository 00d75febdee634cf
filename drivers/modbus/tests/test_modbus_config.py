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


def test_an_undefined_connection_is_named(tmp_path):
    (found,) = issues(tmp_path, GOOD.replace("connection: plc", "connection: plc2"))
    assert "devices[1] (Boiler): connection 'plc2' is not defined" in found


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
