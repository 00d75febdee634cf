"""The board's GPIO chips and lines as gpiod sees them: what ``hub gpio chips`` / ``lines`` print."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def chip_path(chip: str, dev_dir: str = "/dev") -> str:
    """``gpiochip0`` -> ``/dev/gpiochip0``; a path is taken as it is."""
    return chip if "/" in chip else str(Path(dev_dir) / chip)


def list_chips(dev_dir: str = "/dev") -> list[dict]:
    import gpiod

    found = []
    for path in sorted(Path(dev_dir).glob("gpiochip*"), key=lambda p: (len(p.name), p.name)):
        if not gpiod.is_gpiochip_device(str(path)):
            continue
        try:
            with gpiod.Chip(str(path)) as chip:
                info = chip.get_info()
        except OSError as exc:
            found.append({"path": str(path), "name": path.name, "label": "", "lines": 0,
                          "error": exc.strerror or str(exc)})
            continue
        found.append({"path": str(path), "name": info.name, "label": info.label, "lines": info.num_lines})
    return found


def _enum(value) -> str:
    return value.name.lower() if hasattr(value, "name") else str(value)


def list_lines(chip: str, dev_dir: str = "/dev") -> list[dict]:
    import gpiod

    with gpiod.Chip(chip_path(chip, dev_dir)) as c:
        rows = []
        for offset in range(c.get_info().num_lines):
            info = c.get_line_info(offset)
            rows.append({"offset": info.offset, "name": info.name, "used": info.used, "consumer": info.consumer,
                         "direction": _enum(info.direction), "active_low": info.active_low,
                         "bias": _enum(info.bias), "edge": _enum(info.edge_detection),
                         "debounce": info.debounce_period.total_seconds()})
        return rows


def describe_oserror(exc: OSError, path: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{path} does not exist"
    if exc.errno == errno.EBUSY:
        return f"{path}: a line is in use by another program (`hub gpio lines` shows by whom)"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied (add the hub's user to the gpio group)"
    return f"{path}: {exc.strerror or exc} ({os.strerror(exc.errno) if exc.errno else type(exc).__name__})"
