"""Ruff Hub's GPIO driver: libgpiod v2 (Raspberry Pi 5, routers with a GPIO chip), not RPi.GPIO.
gpiod is imported lazily so that ``hub --help`` does not need the C library's chips.
"""

from __future__ import annotations

__version__ = "0.1.0"
