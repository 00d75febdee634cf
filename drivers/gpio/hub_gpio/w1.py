"""DS18B20 temperatures from the kernel's w1_therm driver: ``<root>/28-xxxxxxxxxxxx/w1_slave``.

The file holds two lines, the scratchpad's nine bytes each time::

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

A reading is kept only if the kernel's CRC check says YES, and 85000 (85 °C, the sensor's power-on
value: it lost power or the conversion did not run) or a value outside the sensor's range is not a
temperature: the entity goes unavailable rather than showing a wrong reading that a thermostat rule
would act on.
"""

from __future__ import annotations

import re
from pathlib import Path

POWER_ON = 85000  # millidegrees: the scratchpad's reset value
_T = re.compile(r"t=(-?\d+)\s*$")


class BadReading(Exception):
    """Why a reading is not a temperature (the entity's ``reason`` attribute and the log say it)."""


def parse(text: str) -> float:
    """°C from a w1_slave file's content, or :class:`BadReading` saying why not."""
    lines = text.strip().splitlines()
    if len(lines) != 2:
        raise BadReading(f"expected 2 lines, got {len(lines)}")
    if not lines[0].rstrip().endswith("YES"):
        raise BadReading("CRC check failed (crc=... NO): a noisy or broken bus")
    match = _T.search(lines[1])
    if match is None:
        raise BadReading("no t= value")
    milli = int(match.group(1))
    if milli == POWER_ON:
        raise BadReading("85 °C is the sensor's power-on value: no conversion was done")
    if not -55000 <= milli <= 125000:
        raise BadReading(f"{milli / 1000} °C is outside the DS18B20's range")
    return round(milli / 1000, 3)


def read(root: str | Path, sensor_id: str) -> float:
    """Blocking (the kernel converts while we wait, ~750 ms on a real bus): run it in a thread."""
    path = Path(root) / sensor_id / "w1_slave"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadReading(f"{path} does not exist: the sensor is not on the bus") from None
    except OSError as exc:
        raise BadReading(f"{path}: {exc.strerror or exc}") from None
    return parse(text)


def present(root: str | Path) -> list[str]:
    """The DS18B20s the kernel sees (family 0x28)."""
    folder = Path(root)
    return sorted(p.name for p in folder.glob("28-*")) if folder.is_dir() else []
