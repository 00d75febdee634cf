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


# --- real payloads, from the formats' specifications -----------------------------------------------

#: BTHome v2 (bthome.io/format): device information 0x40 (v2, unencrypted, regular interval), then
#: objects in id order: battery 0x01 (uint8 %), temperature 0x02 (sint16, 0.01 °C), humidity 0x03
#: (uint16, 0.01 %): 97 %, 25.06 °C, 50.55 %.
BTHOME_THERMOMETER = bytes.fromhex("40016102ca0903bf13")
#: A button (object 0x3a): 0x01 press, 0x02 double press, 0x04 long press.
BTHOME_PRESS = bytes.fromhex("403a01")
BTHOME_DOUBLE_PRESS = bytes.fromhex("403a02")
#: The bind key of BTHome's own encryption example.
BIND_KEY = "231d39c1d7cc1ab1aee224cd096db932"


def bthome_encrypted(address: str, objects: bytes, key_hex: str = BIND_KEY, counter: int = 0x33221100) -> bytes:
    """BTHome v2 encryption: AES-CCM, 4-byte MIC; nonce = address + UUID 0xfcd2 (little endian) +
    device information + counter; the advertisement is device information, ciphertext, counter, MIC."""
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    info = 0x41  # v2, encrypted
    count = counter.to_bytes(4, "little")
    nonce = bytes.fromhex(address.replace(":", "")) + b"\xd2\xfc" + bytes([info]) + count
    sealed = AESCCM(bytes.fromhex(key_hex), tag_length=4).encrypt(nonce, objects, None)
    return bytes([info]) + sealed[:-4] + count + sealed[-4:]


def mibeacon_lywsdcgq(address: str, temperature: float, humidity: float, counter: int = 7) -> bytes:
    """A Xiaomi MiBeacon v2 frame as the LYWSDCGQ thermometer sends it: frame control 0x2050
    (object and address included, version 2), product id 0x01aa, frame counter, the address
    reversed, then object 0x100d (temperature and humidity, int16 and uint16 in tenths)."""
    return (bytes.fromhex("5020aa01") + bytes([counter]) + bytes.fromhex(address.replace(":", ""))[::-1]
            + bytes.fromhex("0d1004") + round(temperature * 10).to_bytes(2, "little", signed=True)
            + round(humidity * 10).to_bytes(2, "little"))
