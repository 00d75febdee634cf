"""The ``gpio:`` section of ``configuration.yaml``.

Every model forbids unknown keys, so ``hub config check`` names a typo with its file, line and key
instead of silently running on a default (a misspelt ``inverted`` would switch a relay the wrong way).

Example::

    gpio:
      chip: gpiochip0                 # the default chip of the lines below (Raspberry Pi 5: gpiochip0)
      inputs:
        - {name: Doorbell, line: 17, kind: button, bias: pull_up, active_low: true, debounce: 0.01}
        - {name: Hall PIR, line: GPIO27, device_class: motion}
      outputs:
        - {name: Pump relay, line: 22, inverted: true, initial: "off"}
      pwm:
        - {name: Desk LED, chip: 0, channel: 0, frequency: 1000}
      onewire:
        - {name: Boiler, id: 28-00000abcdef0}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.devices.capabilities import BINARY_CLASSES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ButtonTimings(_Strict):
    double: float = Field(0.35, gt=0, le=5, description="Seconds within which a second press makes a double press.")
    long: float = Field(0.8, gt=0, le=30, description="Seconds held down that make a long press.")


class Line(_Strict):
    name: str = Field(min_length=1, max_length=128)
    line: int | str = Field(description="The line's offset on its chip (17) or its name (GPIO17).")
    chip: str | None = Field(None, description="gpiochipN or a path; the section's chip if absent.")

    @property
    def key(self) -> str:
        return f"{self.chip}:{self.line}"


class Input(Line):
    kind: Literal["binary_sensor", "button"] = "binary_sensor"
    device_class: str | None = Field(None, description="A binary sensor's class: door, window, motion, ...")
    bias: Literal["pull_up", "pull_down", "disabled", "as_is"] = "pull_up"
    active_low: bool = Field(False, description="Low means active: a contact or button to ground with a pull-up.")
    debounce: float = Field(0.0, ge=0, le=1, description="Seconds the level must hold before an edge counts "
                                                         "(done by the kernel, or in the chip).")
    timings: ButtonTimings = ButtonTimings()

    @model_validator(mode="after")
    def _class_fits(self) -> "Input":
        if self.device_class is not None:
            if self.kind == "button":
                raise ValueError("device_class: a button has none (it is for binary sensors)")
            if self.device_class not in BINARY_CLASSES:
                raise ValueError(f"device_class: {self.device_class!r} is not a binary sensor class; "
                                 f"valid: {', '.join(sorted(BINARY_CLASSES))}")
        return self


class Output(Line):
    inverted: bool = Field(False, description="The relay is on when the line is low (most relay boards).")
    initial: Literal["on", "off", "restore"] = Field(
        "off", description="The state the output starts in; restore: the last one the hub recorded.")
    device_class: Literal["outlet", "switch"] | None = None


class Pwm(_Strict):
    name: str = Field(min_length=1, max_length=128)
    chip: int = Field(0, ge=0, description="N of /sys/class/pwm/pwmchipN.")
    channel: int = Field(0, ge=0, description="The chip's channel (pwmN under it).")
    frequency: float = Field(1000, gt=0, le=10_000_000, description="Hz.")
    inverted: bool = Field(False, description="Full duty cycle is off (a driver stage that inverts).")


class OneWire(_Strict):
    name: str = Field(min_length=1, max_length=128)
    id: str = Field(pattern=r"^28-[0-9a-f]{12}$", description="The DS18B20's folder under w1 devices: 28-...")


class GpioConfig(_Strict):
    chip: str = Field("gpiochip0", min_length=1, description="The default chip: gpiochipN or a /dev path.")
    dev_dir: str = Field("/dev", description="Where gpiochipN nodes live.")
    pwm_root: str = Field("/sys/class/pwm", description="The PWM sysfs class folder.")
    w1_root: str = Field("/sys/bus/w1/devices", description="The 1-Wire sysfs devices folder.")
    onewire_interval: float = Field(30, ge=1, le=3600, description="Seconds between DS18B20 readings.")
    retry: float = Field(10, gt=0, le=600, description="Seconds between attempts to open a missing chip.")
    inputs: list[Input] = []
    outputs: list[Output] = []
    pwm: list[Pwm] = []
    onewire: list[OneWire] = []

    @model_validator(mode="after")
    def _one_use_per_line(self) -> "GpioConfig":
        seen: dict[tuple[str, str], str] = {}
        for item in [*self.inputs, *self.outputs]:
            if item.chip is None:
                item.chip = self.chip
            where = (item.chip, str(item.line))
            if where in seen:
                raise ValueError(f"line {item.line} of {item.chip} is used twice: by {seen[where]!r} and {item.name!r}")
            seen[where] = item.name
        channels = [(p.chip, p.channel) for p in self.pwm]
        if len(set(channels)) != len(channels):
            raise ValueError("pwm: the same chip and channel appear twice")
        ids = [o.id for o in self.onewire]
        if len(set(ids)) != len(ids):
            raise ValueError("onewire: the same sensor id appears twice")
        return self
