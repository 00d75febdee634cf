"""The ble section: mistakes are named with file, line and key, as `hub config check` shows them;
a bind key is never repeated in a message."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from ble_testing import BIND_KEY
from hub.config import load_config
from hub_ble.config import BleConfig, BleDevice

GOOD = f"""\
hub: {{}}
ble:
  adapter: hci0
  availability: 900
  devices:
    - address: "A4:C1:38:12:34:56"
      name: Kitchen thermometer
      type: bthome
      bind_key: "{BIND_KEY}"
    - address: "F0:00:00:00:00:02"
      name: Desk LED
      type: lbs
    - address: "F0:00:00:00:00:03"
      name: Fan relay
      type: gatt
      entities:
        - key: relay
          capability: switch
          service: "0000ffe0-0000-1000-8000-00805f9b34fb"
          characteristic: "0000ffe1-0000-1000-8000-00805f9b34fb"
          decode: {{format: "<B"}}
          notify: true
          commands: {{turn_on: "01", turn_off: "00"}}
"""


def issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "configuration.yaml"
    path.write_text(text)
    return [str(i) for i in load_config(path, {"ble": BleConfig}).issues]


def test_the_documented_example_validates(tmp_path):
    assert issues(tmp_path, GOOD) == []


def test_a_typo_is_named_with_its_line(tmp_path):
    (found,) = issues(tmp_path, GOOD.replace("  availability: 900", "  availabilty: 900"))
    assert ":4:" in found and "ble.availabilty" in found


def test_a_bad_bind_key_is_named_at_its_line_and_not_repeated(tmp_path):
    wrong = BIND_KEY[:-2]  # 30 digits
    (found,) = issues(tmp_path, GOOD.replace(BIND_KEY, wrong))
    assert ":9:" in found and "ble.devices[0].bind_key" in found and "32 hex digits" in found
    assert wrong not in found
    (found,) = issues(tmp_path, GOOD.replace(BIND_KEY, "zz" + BIND_KEY[2:]))
    assert ":9:" in found and "hex" in found and BIND_KEY[2:] not in found


def test_bad_addresses_types_and_gatt_entities_are_named(tmp_path):
    text = (GOOD.replace('"F0:00:00:00:00:03"', '"F0:00:00:00:03"').replace("type: lbs", "type: lbs\n      bind_key: \"" + BIND_KEY + "\"")
            .replace('turn_off: "00"', 'turn_off: "0"').replace('format: "<B"', 'format: "<Q!"'))
    found = issues(tmp_path, text)
    assert any(":14:" in f and "ble.devices[2].address" in f and "Bluetooth address" in f for f in found), found
    assert any("ble.devices[1]" in f and "no bind key" in f for f in found), found
    assert any("entities[0].commands" in f and "hex" in f for f in found), found
    assert any("decode.format" in f and "struct" in f for f in found), found
    assert all(BIND_KEY not in f for f in found)


def test_a_switch_without_commands_and_a_duplicate_address_are_refused():
    with pytest.raises(ValidationError, match="turn_on"):
        BleDevice.model_validate({"address": "F0:00:00:00:00:03", "type": "gatt", "entities": [
            {"key": "relay", "capability": "switch", "service": "ffe0", "characteristic": "ffe1"}]})
    with pytest.raises(ValidationError, match="listed twice"):
        BleConfig.model_validate({"devices": [{"address": "a4c138123456", "type": "xiaomi"},
                                              {"address": "A4:C1:38:12:34:56", "type": "bthome"}]})


def test_the_bind_key_never_shows_in_a_repr_or_the_public_view():
    device = BleDevice.model_validate({"address": "a4-c1-38-12-34-56", "type": "bthome", "bind_key": BIND_KEY.upper()})
    assert device.address == "A4:C1:38:12:34:56"
    assert BIND_KEY not in repr(device) and BIND_KEY.upper() not in repr(device)
    assert device.public() == {"address": "A4:C1:38:12:34:56", "type": "bthome", "encrypted": True}
    assert device.bind_key.get_secret_value() == BIND_KEY


def test_hub_config_check_names_the_key_and_line(tmp_path):
    from tests.hubproc import run_cli

    (tmp_path / "configuration.yaml").write_text(GOOD.replace(BIND_KEY, "abc"))
    out = run_cli(tmp_path, "config", "check")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "configuration.yaml:9" in text and "ble.devices[0].bind_key" in text and "not 3" in text
