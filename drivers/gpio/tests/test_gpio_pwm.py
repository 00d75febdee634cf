"""A PWM channel written through a sysfs tree laid out as the kernel's /sys/class/pwm."""

from __future__ import annotations

import pytest

from hub_gpio.pwm import PwmChannel, PwmError


def tree(tmp_path, exported: bool = True):
    chip = tmp_path / "pwmchip0"
    chip.mkdir()
    (chip / "export").write_text("")
    if exported:
        (chip / "pwm0").mkdir()
        for name in ("period", "duty_cycle", "enable"):
            (chip / "pwm0" / name).write_text("0\n")
    return tmp_path


def read(root, name: str) -> str:
    return (root / "pwmchip0/pwm0" / name).read_text().strip()


def test_brightness_is_the_duty_cycle_of_the_period(tmp_path):
    root = tree(tmp_path)
    channel = PwmChannel(root, 0, 0, frequency=500)
    channel.open()
    assert read(root, "period") == "2000000" and read(root, "enable") == "0"
    channel.apply(255)
    assert read(root, "duty_cycle") == "2000000" and read(root, "enable") == "1"
    channel.apply(51)
    assert read(root, "duty_cycle") == "400000"
    channel.apply(0)
    assert read(root, "duty_cycle") == "0" and read(root, "enable") == "0"


def test_inverted_output_keeps_the_line_driven_at_the_off_level(tmp_path):
    root = tree(tmp_path)
    channel = PwmChannel(root, 0, 0, frequency=1000, inverted=True)
    channel.open()
    assert read(root, "duty_cycle") == "1000000" and read(root, "enable") == "1"  # off: always high
    channel.apply(255)
    assert read(root, "duty_cycle") == "0"


def test_an_unexported_channel_is_exported(tmp_path):
    root = tree(tmp_path, exported=False)
    with pytest.raises(PwmError, match="pwm0"):  # the tmp tree has no kernel to create pwm0
        PwmChannel(root, 0, 0, frequency=1000).open()
    assert (root / "pwmchip0/export").read_text() == "0\n"


def test_a_missing_pwm_chip_names_the_folder(tmp_path):
    with pytest.raises(PwmError, match="pwmchip3 does not exist"):
        PwmChannel(tmp_path, 3, 0, frequency=1000).open()
