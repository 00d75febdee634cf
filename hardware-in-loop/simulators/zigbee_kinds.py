"""The kinds of virtual Zigbee device: their endpoint's clusters, initial attribute values, node
descriptor and Basic identity (what zigpy's interview and zha-quirks' signature matching see).

Attribute ids and values follow the ZCL specification; see zigbee_devices.py for the behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import zigpy.types as t

# cluster ids
BASIC, POWER, IDENTIFY, ON_OFF, LEVEL, OTA = 0x0000, 0x0001, 0x0003, 0x0006, 0x0008, 0x0019
LOCK, COVER, THERMOSTAT, COLOR = 0x0101, 0x0102, 0x0201, 0x0300
ILLUMINANCE, TEMPERATURE, PRESSURE, HUMIDITY, OCCUPANCY = 0x0400, 0x0402, 0x0403, 0x0405, 0x0406
IAS_ZONE, METERING, ELECTRICAL, XIAOMI = 0x0500, 0x0702, 0x0B04, 0xFFFF

ROUTER_NODE_DESC = bytes.fromhex("01408e3412525200002c5200" + "00")
END_DEVICE_NODE_DESC = bytes.fromhex("0240803412525200000052" + "0000")
XIAOMI_NODE_DESC = bytes([2, 64, 128]) + (4151).to_bytes(2, "little") + bytes([127]) + (100).to_bytes(2, "little") \
    + (0).to_bytes(2, "little") + (100).to_bytes(2, "little") + bytes([0])


@dataclass(frozen=True)
class Kind:
    device_type: int
    mains: bool
    manufacturer: str
    model: str
    in_clusters: tuple[int, ...]
    out_clusters: tuple[int, ...] = ()
    attributes: dict[int, dict[int, Any]] = field(default_factory=dict)
    node_desc: bytes | None = None
    # reports changes without being configured to (Xiaomi devices do; their quirks skip configuration)
    spontaneous: bool = False


def _basic(manufacturer: str, model: str, mains: bool) -> dict[int, Any]:
    return {0x0000: 8, 0x0001: 1, 0x0002: 0, 0x0003: 1, 0x0004: manufacturer, 0x0005: model,
            0x0006: "20260101", 0x0007: 1 if mains else 3, 0x4000: "1.0.0"}


_BATTERY = {0x0020: 30, 0x0021: 200}  # 3.0 V, 100 %


def _kind(device_type, mains, manufacturer, model, clusters: dict[int, dict[int, Any]], out=(), node_desc=None,
          spontaneous=False):
    attrs = {BASIC: _basic(manufacturer, model, mains), **clusters}
    return Kind(device_type, mains, manufacturer, model, tuple(attrs), tuple(out), attrs, node_desc, spontaneous)


KINDS: dict[str, Kind] = {
    "plug": _kind(0x0051, True, "ruffsim", "SIM-PLUG-1", {
        IDENTIFY: {0x0000: 0},
        ON_OFF: {0x0000: False},
        ELECTRICAL: {0x0000: 0x0008, 0x0505: 230, 0x0508: 0, 0x050B: 0, 0x0600: 1, 0x0601: 1, 0x0602: 1,
                     0x0603: 1000, 0x0604: 1, 0x0605: 1},
        METERING: {0x0000: 0, 0x0300: 0, 0x0301: 1, 0x0302: 1000, 0x0303: 0x2B, 0x0306: 0, 0x0400: 0},
    }),
    "light": _kind(0x010D, True, "ruffsim", "SIM-LIGHT-1", {
        IDENTIFY: {0x0000: 0},
        ON_OFF: {0x0000: False},
        LEVEL: {0x0000: 254, 0x0010: 0},
        COLOR: {0x0003: 0x616B, 0x0004: 0x607D, 0x0007: 370, 0x0008: 2, 0x000F: 0, 0x400A: 0x0018,
                0x400B: 153, 0x400C: 500},
    }),
    # The signature of an Aqara motion sensor, so zha-quirks' MotionAQ2 applies (occupancy resets
    # by itself after a while, IAS zone fed from occupancy).
    "motion": _kind(0x0107, False, "LUMI", "lumi.sensor_motion.aq2", {
        XIAOMI: {},
        OCCUPANCY: {0x0000: 0, 0x0001: 0},
        ILLUMINANCE: {0x0000: 10000},
        IAS_ZONE: {0x0000: 0, 0x0001: 0x000D, 0x0002: 0, 0x0010: t.EUI64(bytes(8)), 0x0011: 0xFF},
        POWER: dict(_BATTERY),
        IDENTIFY: {0x0000: 0},
    }, out=(BASIC, OTA), node_desc=XIAOMI_NODE_DESC, spontaneous=True),
    "contact": _kind(0x0402, False, "ruffsim", "SIM-CONTACT-1", {
        POWER: dict(_BATTERY),
        IAS_ZONE: {0x0000: 0, 0x0001: 0x0015, 0x0002: 0, 0x0010: t.EUI64(bytes(8)), 0x0011: 0xFF},
    }),
    "thermostat": _kind(0x0301, True, "ruffsim", "SIM-THERMOSTAT-1", {
        THERMOSTAT: {0x0000: 2100, 0x0011: 2600, 0x0012: 2000, 0x0015: 700, 0x0016: 3000, 0x0017: 1600,
                     0x0018: 3200, 0x001B: 4, 0x001C: 4, 0x0029: 0},
        POWER: dict(_BATTERY),
    }),
    "lock": _kind(0x000A, False, "ruffsim", "SIM-LOCK-1", {
        LOCK: {0x0000: 1, 0x0001: 0, 0x0002: True},
        POWER: dict(_BATTERY),
    }),
    "cover": _kind(0x0202, True, "ruffsim", "SIM-COVER-1", {
        COVER: {0x0000: 0, 0x0007: 0x03, 0x0008: 0},
    }),
    "climate_sensor": _kind(0x0302, False, "ruffsim", "SIM-CLIMATE-1", {
        POWER: dict(_BATTERY),
        TEMPERATURE: {0x0000: 2150, 0x0001: -4000, 0x0002: 8000},
        HUMIDITY: {0x0000: 4500, 0x0001: 0, 0x0002: 10000},
        PRESSURE: {0x0000: 1013, 0x0001: 300, 0x0002: 1100},
        ILLUMINANCE: {0x0000: 30001, 0x0001: 1, 0x0002: 0xFFFE},
    }),
}

# Attributes of client (output) clusters a device answers reads for
CLIENT_ATTRIBUTES = {OTA: {0x0002: 0x00000001}}
