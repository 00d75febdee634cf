"""Helpers of the zigbee driver's tests (a module of its own name: several test folders have a
conftest.py, and only one of them can be imported as ``conftest``)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HIL = REPO / "hardware-in-loop"
for path in (REPO, HIL):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def zigbee_yaml(port: str, *, radio: str = "znp", extra: str = "") -> str:
    return f"hub: {{}}\nzigbee:\n  radio_type: {radio}\n  port: {port}\n  reconnect_max: 1\n{extra}"
