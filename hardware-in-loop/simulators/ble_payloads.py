"""Advertisement payloads built byte by byte from their specifications, not copied from a parser.

The fake BlueZ sends these as a real sensor would, so the hub's parsers (bthome-ble, xiaomi-ble) meet
the same bytes they meet on air; if a parser and the specification disagree, the test says so.

- BTHome v2 (https://bthome.io/format/): service data under UUID 0xFCD2; first byte the device
  information (bit 0 encrypted, bit 2 trigger-based, bits 5-7 version 2), then objects ``id, value``
  in ascending id order, values little-endian with the factor of the object table. Encrypted:
  AES-CCM (tag 4 bytes) over the objects, nonce = MAC (6, as written) + ``d2 fc`` + device
  information byte + counter (4, little-endian); the frame ends with counter and MIC.
- Xiaomi MiBeacon v2 (the LYWSDCGQ thermometer): service data under UUID 0xFE95; frame control
  (little-endian: 0x0010 MAC included, 0x0040 object included, version 2 in bits 12-15), product id
  0x01AA, frame counter, MAC reversed, then object 0x100D (temperature int16 x10, humidity uint16 x10).
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
XIAOMI_UUID = "0000fe95-0000-1000-8000-00805f9b34fb"

# BTHome v2 object ids: (id, struct format, factor). Only those the fake's kinds send.
BTHOME_OBJECTS = {
    "battery": (0x01, "<B", 1),
    "temperature": (0x02, "<h", 0.01),
    "humidity": (0x03, "<H", 0.01),
    "button": (0x3A, "<B", 1),
}
BUTTON_EVENTS = {"none": 0x00, "press": 0x01, "double_press": 0x02, "triple_press": 0x03,
                 "long_press": 0x04, "long_double_press": 0x05, "long_triple_press": 0x06}

XIAOMI_LYWSDCGQ = 0x01AA
_XIAOMI_TEMP_HUMI = 0x100D


def bthome_objects(values: dict) -> bytes:
    """The object part of a BTHome v2 frame, ids ascending as the specification asks."""
    out = b""
    for name in sorted(values, key=lambda n: BTHOME_OBJECTS[n][0]):
        object_id, fmt, factor = BTHOME_OBJECTS[name]
        value = values[name]
        if name == "button":
            value = BUTTON_EVENTS[value] if isinstance(value, str) else int(value)
        else:
            value = round(value / factor)
        out += bytes([object_id]) + struct.pack(fmt, value)
    return out


def bthome(values: dict, *, trigger: bool = False) -> bytes:
    """An unencrypted BTHome v2 service data payload."""
    info = 0x40 | (0x04 if trigger else 0)
    return bytes([info]) + bthome_objects(values)


def bthome_encrypted(values: dict, mac: str, bind_key: bytes, counter: int, *, trigger: bool = False) -> bytes:
    """An encrypted BTHome v2 service data payload (the MAC is the advertiser's, as a real sensor's)."""
    info = 0x41 | (0x04 if trigger else 0)
    counter_bytes = struct.pack("<I", counter & 0xFFFFFFFF)
    nonce = bytes.fromhex(mac.replace(":", "")) + b"\xd2\xfc" + bytes([info]) + counter_bytes
    sealed = AESCCM(bind_key, tag_length=4).encrypt(nonce, bthome_objects(values), None)
    ciphertext, mic = sealed[:-4], sealed[-4:]
    return bytes([info]) + ciphertext + counter_bytes + mic


def xiaomi_lywsdcgq(values: dict, mac: str, frame_counter: int) -> bytes:
    """A MiBeacon v2 frame of the LYWSDCGQ thermometer with its temperature + humidity object."""
    frame_control = 0x0010 | 0x0040 | (2 << 12)
    temperature = round(values.get("temperature", 21.0) * 10)
    humidity = round(values.get("humidity", 50.0) * 10)
    obj = struct.pack("<HB", _XIAOMI_TEMP_HUMI, 4) + struct.pack("<hH", temperature, humidity)
    return (struct.pack("<HHB", frame_control, XIAOMI_LYWSDCGQ, frame_counter & 0xFF)
            + bytes.fromhex(mac.replace(":", ""))[::-1] + obj)
