"""A PWM channel through the kernel's sysfs class: ``<root>/pwmchipN/{export, pwmM/{period,duty_cycle,enable}}``.

Brightness 0-255 maps to the duty cycle; ``inverted`` is done here (duty = period - duty) rather
than with the ``polarity`` file, which many chips (the Pi 5's RP1 among them) do not support.
"""

from __future__ import annotations

import time
from pathlib import Path


class PwmError(Exception):
    pass


class PwmChannel:
    def __init__(self, root: str | Path, chip: int, channel: int, frequency: float, inverted: bool = False) -> None:
        self.chip_dir = Path(root) / f"pwmchip{chip}"
        self.dir = self.chip_dir / f"pwm{channel}"
        self.channel = channel
        self.period = int(round(1e9 / frequency))
        self.inverted = inverted
        self.last = 255  # the brightness a plain turn_on returns to

    def _write(self, name: str, value: int | str) -> None:
        try:
            (self.dir / name).write_text(f"{value}\n")
        except OSError as exc:
            raise PwmError(f"{self.dir / name}: {exc.strerror or exc}") from None

    def open(self) -> None:
        """Export the channel if needed (the kernel creates pwmM; udev may take a moment to let us
        write it), then set the period with the output off."""
        if not self.chip_dir.is_dir():
            raise PwmError(f"{self.chip_dir} does not exist (is the PWM overlay enabled?)")
        if not self.dir.is_dir():
            try:
                (self.chip_dir / "export").write_text(f"{self.channel}\n")
            except OSError as exc:
                raise PwmError(f"{self.chip_dir / 'export'}: {exc.strerror or exc}") from None
            deadline = time.monotonic() + 1
            while not (self.dir / "period").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._write("duty_cycle", 0)  # a duty cycle above the new period would be refused
        self._write("period", self.period)
        self.apply(0)

    def apply(self, brightness: int) -> None:
        """0 switches the output off; 1-255 sets the duty cycle and enables it."""
        duty = self.period * brightness // 255
        if self.inverted:
            duty = self.period - duty
        if brightness == 0 and not self.inverted:
            self._write("duty_cycle", 0)
            self._write("enable", 0)
            return
        self._write("duty_cycle", duty)
        self._write("enable", 1)
