"""The zigbee section: mistakes are named with file, line and key, as `hub config check` shows them."""

from pathlib import Path

from hub.config import load_config
from hub_zigbee.config import ZigbeeConfig
from hub_zigbee.radio import zigpy_config

GOOD = """\
hub: {}
zigbee:
  radio_type: znp
  port: /dev/serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus-if00-port0
  baudrate: 115200
  flow_control: null
  channel: 15
  availability:
    mains: 7200
    battery: 21600
  poll_interval: 60
"""


def issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "configuration.yaml"
    path.write_text(text)
    return [str(i) for i in load_config(path, {"zigbee": ZigbeeConfig}).issues]


def test_the_documented_example_validates(tmp_path):
    assert issues(tmp_path, GOOD) == []


def test_a_typo_is_named_with_its_line(tmp_path):
    (found,) = issues(tmp_path, GOOD.replace("    battery: 21600", "    batery: 21600"))
    assert ":10:" in found and "zigbee.availability.batery" in found


def test_hub_config_check_names_the_key_and_line(tmp_path):
    from tests.hubproc import run_cli

    (tmp_path / "configuration.yaml").write_text(GOOD.replace("  poll_interval: 60", "  poll_intervall: 60"))
    out = run_cli(tmp_path, "config", "check")
    assert out.returncode != 0
    assert "configuration.yaml:11" in out.stdout + out.stderr and "zigbee.poll_intervall" in out.stdout + out.stderr


def test_an_unknown_radio_and_a_channel_out_of_range_are_named(tmp_path):
    found = issues(tmp_path, GOOD.replace("radio_type: znp", "radio_type: deconz").replace("channel: 15", "channel: 27"))
    assert len(found) == 2
    assert any(":3:" in f and "zigbee.radio_type" in f and "znp" in f for f in found)
    assert any(":7:" in f and "zigbee.channel" in f for f in found)


def test_a_missing_port_is_named(tmp_path):
    (found,) = issues(tmp_path, "zigbee:\n  radio_type: ezsp\n")
    assert "zigbee.port" in found


def test_zigpy_never_goes_online_and_keeps_backups(tmp_path):
    cfg = ZigbeeConfig(radio_type="znp", port="/dev/ttyUSB0", flow_control="hardware")
    out = zigpy_config(cfg, tmp_path)
    assert out["ota"]["enabled"] is False and out["ota"]["providers"] == []
    assert out["backup_enabled"] is True
    assert out["device"] == {"path": "/dev/ttyUSB0", "baudrate": 115200, "flow_control": "hardware"}
    assert out["database_path"] == str(tmp_path / "zigbee.db")
    # Each radio library's own schema accepts what we give it.
    from bellows.config import CONFIG_SCHEMA as EZSP_SCHEMA
    from zigpy_znp.config import CONFIG_SCHEMA as ZNP_SCHEMA

    ZNP_SCHEMA(out)
    EZSP_SCHEMA(zigpy_config(cfg.model_copy(update={"radio_type": "ezsp"}), tmp_path))


def test_a_pty_gets_no_bootloader_pin_toggling(tmp_path):
    """socat, ser2net and the emulator give a pty, which has no DTR/RTS lines: zigpy-znp's pin
    toggling fails there, so the stick is pinged directly (a real /dev/ttyUSB0 keeps the toggling)."""
    import os
    import pty

    master, slave = pty.openpty()
    try:
        link = tmp_path / "stick"
        link.symlink_to(os.ttyname(slave))
        cfg = ZigbeeConfig(radio_type="znp", port=str(link))
        assert zigpy_config(cfg, tmp_path)["znp_config"] == {"skip_bootloader": False}
    finally:
        os.close(master)
        os.close(slave)
    assert "znp_config" not in zigpy_config(ZigbeeConfig(radio_type="znp", port="/dev/ttyUSB0"), tmp_path)
