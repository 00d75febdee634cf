"""Ruff Hub's BLE driver: passive sensors from their advertisements (BTHome v2, Xiaomi MiBeacon)
and connected GATT devices, through bleak. bleak is imported lazily so that ``hub --help`` (which
loads every plugin to collect its subcommands) does not pay for it.
"""

from __future__ import annotations

__version__ = "0.1.0"
