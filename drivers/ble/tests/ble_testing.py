"""Helpers of the BLE driver's tests (a module of its own name: several test folders have a
conftest.py, and only one of them can be imported as ``conftest``)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HIL = REPO / "hardware-in-loop"
for path in (REPO, HIL):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
XIAOMI_UUID = "0000fe95-0000-1000-8000-00805f9b34fb"


def advertisement(address: str, service_data: dict[str, bytes], *, name: str | None = None, rssi: int = -60):
    """What bleak's scanner hands a detection callback: a BLEDevice and its AdvertisementData."""
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    return (BLEDevice(address, name, {"path": f"/org/bluez/hci0/dev_{address.replace(':', '_')}"}),
            AdvertisementData(name, {}, service_data, list(service_data), None, rssi, ()))


def ble_yaml(devices: str = "", *, adapter: str = "hci0", extra: str = "") -> str:
    return f"hub: {{}}\nble:\n  adapter: {adapter}\n{extra}" + (f"  devices:\n{devices}" if devices else "")
