"""The gpio: section refuses what would silently misbehave, naming the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub_gpio.config import GpioConfig


def check(**section):
    return GpioConfig.model_validate(section)


def test_lines_default_to_the_section_chip():
    config = check(chip="gpiochip4", inputs=[{"name": "Door", "line": 5}], outputs=[{"name": "R", "line": "GPIO6"}])
    assert config.inputs[0].chip == "gpiochip4" and config.outputs[0].chip == "gpiochip4"


@pytest.mark.parametrize("section, words", [
    ({"inputs": [{"name": "A", "line": 5}], "outputs": [{"name": "B", "line": 5}]}, "used twice"),
    ({"inputs": [{"name": "A", "line": 5, "kind": "button", "device_class": "door"}]}, "button has none"),
    ({"inputs": [{"name": "A", "line": 5, "device_class": "doorbell"}]}, "not a binary sensor class"),
    ({"inputs": [{"name": "A", "line": 5, "pull": "up"}]}, "pull"),
    ({"outputs": [{"name": "A", "line": 5, "initial": "high"}]}, "initial"),
    ({"onewire": [{"name": "A", "id": "10-000000000001"}]}, "id"),
    ({"pwm": [{"name": "A", "channel": 0}, {"name": "B", "channel": 0}]}, "twice"),
])
def test_mistakes_are_named(section, words):
    with pytest.raises(ValidationError, match=words):
        check(**section)
