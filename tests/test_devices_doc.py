"""docs/devices.md is where a user looks up a device class and its unit: it must list every
capability and every device class the model accepts, with the unit the hub really defaults to."""

import re
from pathlib import Path

from hub.devices.capabilities import BINARY_CLASSES, CAPABILITIES, METER_UNITS, SENSOR_UNITS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "devices.md").read_text()


def test_every_capability_is_in_the_table_with_its_commands():
    for name, cap in CAPABILITIES.items():
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, name
        for command in cap.commands:
            assert f"`{command}" in row, (name, command)


def test_every_device_class_is_listed_with_its_default_unit():
    for units in (SENSOR_UNITS, METER_UNITS):
        for device_class, unit in units.items():
            match = re.search(rf"\| `{device_class}`[^|]*\| ([^|]+) \|", DOC)
            assert match, device_class
            assert match.group(1).strip().split(" ")[0] == (unit or "none"), device_class
    for device_class in BINARY_CLASSES:
        assert f"`{device_class}`" in DOC, device_class
