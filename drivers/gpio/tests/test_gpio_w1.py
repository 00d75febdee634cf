"""DS18B20 readings from a sysfs tree laid out as the kernel's w1_therm makes it."""

from __future__ import annotations

import pytest

import gpio_testing  # noqa: F401 - puts hardware-in-loop/ on sys.path
from gpio_board import w1_slave
from hub_gpio import w1


def sensor(tmp_path, sensor_id: str, text: str | None):
    folder = tmp_path / sensor_id
    folder.mkdir()
    if text is not None:
        (folder / "w1_slave").write_text(text)
    return tmp_path


def test_a_good_reading_in_degrees():
    assert w1.parse("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n") == 23.125


def test_negative_temperatures():
    assert w1.parse(w1_slave(-10125)) == -10.125


@pytest.mark.parametrize("text, why", [
    (w1_slave(21000, crc_ok=False), "CRC"),
    (w1_slave(85000), "power-on"),
    (w1_slave(127000), "outside"),
    ("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n", "2 lines"),
    ("", "2 lines"),
])
def test_a_reading_that_is_not_a_temperature_says_why(text, why):
    with pytest.raises(w1.BadReading, match=why):
        w1.parse(text)


def test_read_from_the_tree_and_a_sensor_gone_from_the_bus(tmp_path):
    root = sensor(tmp_path, "28-0316a2794aff", w1_slave(19500))
    assert w1.read(root, "28-0316a2794aff") == 19.5
    assert w1.present(root) == ["28-0316a2794aff"]
    with pytest.raises(w1.BadReading, match="not on the bus"):
        w1.read(root, "28-000000000001")
    assert w1.present(tmp_path / "nothing") == []
