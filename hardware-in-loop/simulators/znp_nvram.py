"""The emulated CC2652's non-volatile memory (Z-Stack 3.30+ NV items) and network formation.

Z-Stack 3.30 keeps "legacy" OSAL items (NIB, keys, PAN id...) as sub-items of item 0 and tables
(address manager, TC link keys, security material) as other items with numbered sub-items; both the
OSAL and the extended NV commands reach the same store. Items are kept as the bytes the firmware
would hold (structs padded as the CC2652's ARM compiler lays them out), so zigpy-znp reads back what
it wrote and a backup taken from the emulator restores onto it. Layouts are written here from
Z-Stack's headers (nwk.h's nwkIB_t, ZComDef.h's nwkActiveKeyItems...), not imported from zigpy-znp.
"""

from __future__ import annotations

import os
import struct

LEGACY, ADDRMGR, TCLK_TABLE, APS_KEY_DATA_TABLE, NWK_SEC_MATERIAL_TABLE = 0x0000, 0x0001, 0x0004, 0x0006, 0x0007

# OSAL item ids (legacy sub-items) this emulator gives meaning to
EXTADDR, STARTUP_OPTION, NIB = 0x0001, 0x0003, 0x0021
EXTENDED_PAN_ID, BCAST_DELIVERY_TIME = 0x002D, 0x0030
CONCENTRATOR_ENABLE, CONCENTRATOR_DISCOVERY, CONCENTRATOR_RC, SRC_RTG_EXPIRY_TIME = 0x0032, 0x0033, 0x0036, 0x0038
NWK_ACTIVE_KEY_INFO, NWK_ALTERN_KEY_INFO, NWK_CHILD_AGE_ENABLE = 0x003A, 0x003B, 0x003E
APS_USE_EXT_PANID, APS_LINK_KEY_TABLE, BDBNODEISONANETWORK = 0x0047, 0x004C, 0x0055
PRECFGKEY, PRECFGKEYS_ENABLE = 0x0062, 0x0063
NWKKEY, PANID, CHANLIST, LOGICAL_TYPE, ZDO_DIRECT_CB = 0x0082, 0x0083, 0x0084, 0x0087, 0x008F
TCLK_SEED = 0x0101

STARTUP_CLEAR_CONFIG, STARTUP_CLEAR_STATE = 0x01, 0x02
NWK_INIT, NWK_ROUTER = 0, 8

# Table sizes: smaller than a real stick's (which zigpy-znp walks item by item) to keep restores fast
ADDRMGR_ENTRIES, TCLK_ENTRIES, APS_KEY_ENTRIES = 64, 16, 16


def _layout(fields: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """A little-endian struct format with the padding a 32-bit ARM compiler inserts."""
    fmt, offset, names, widest = "<", 0, [], 1
    for name, code in fields:
        size = struct.calcsize("<" + code)
        align = size if code in ("H", "I") else 1
        widest = max(widest, align)
        pad = (-offset) % align
        fmt += "x" * pad + code
        offset += pad + size
        names.append(name)
    fmt += "x" * ((-offset) % widest)
    return fmt, names


# nwkIB_t. nwkState is an enum, 16 bits wide on this platform.
NIB_FORMAT, NIB_FIELDS = _layout([
    ("SequenceNum", "B"), ("PassiveAckTimeout", "B"), ("MaxBroadcastRetries", "B"), ("MaxChildren", "B"),
    ("MaxDepth", "B"), ("MaxRouters", "B"), ("dummyNeighborTable", "B"), ("BroadcastDeliveryTime", "B"),
    ("ReportConstantCost", "B"), ("RouteDiscRetries", "B"), ("dummyRoutingTable", "B"),
    ("SecureAllFrames", "B"), ("SecurityLevel", "B"), ("SymLink", "B"), ("CapabilityFlags", "B"),
    ("TransactionPersistenceTime", "H"), ("nwkProtocolVersion", "B"), ("RouteDiscoveryTime", "B"),
    ("RouteExpiryTime", "B"), ("nwkDevAddress", "H"), ("nwkLogicalChannel", "B"), ("nwkCoordAddress", "H"),
    ("nwkCoordExtAddress", "8s"), ("nwkPanId", "H"), ("nwkState", "H"), ("channelList", "I"),
    ("beaconOrder", "B"), ("superFrameOrder", "B"), ("scanDuration", "B"), ("battLifeExt", "B"),
    ("allocatedRouterAddresses", "I"), ("allocatedEndDeviceAddresses", "I"), ("nodeDepth", "B"),
    ("extendedPANID", "8s"), ("nwkKeyLoaded", "B"), ("spare1", "17s"), ("spare2", "17s"), ("spare3", "B"),
    ("spare4", "B"), ("nwkLinkStatusPeriod", "B"), ("nwkRouterAgeLimit", "B"), ("nwkUseMultiCast", "B"),
    ("nwkIsConcentrator", "B"), ("nwkConcentratorDiscoveryTime", "B"), ("nwkConcentratorRadius", "B"),
    ("nwkAllFresh", "B"), ("nwkManagerAddr", "H"), ("nwkTotalTransmissions", "H"), ("nwkUpdateId", "B"),
])

DEFAULT_NIB = dict(
    SequenceNum=0, PassiveAckTimeout=5, MaxBroadcastRetries=2, MaxChildren=0, MaxDepth=20, MaxRouters=0,
    dummyNeighborTable=0, BroadcastDeliveryTime=30, ReportConstantCost=0, RouteDiscRetries=0,
    dummyRoutingTable=0, SecureAllFrames=1, SecurityLevel=5, SymLink=1, CapabilityFlags=143,
    TransactionPersistenceTime=7, nwkProtocolVersion=2, RouteDiscoveryTime=5, RouteExpiryTime=30,
    nwkDevAddress=0xFFFE, nwkLogicalChannel=0, nwkCoordAddress=0xFFFE, nwkCoordExtAddress=bytes(8),
    nwkPanId=0xFFFF, nwkState=NWK_INIT, channelList=0, beaconOrder=15, superFrameOrder=15, scanDuration=0,
    battLifeExt=0, allocatedRouterAddresses=0, allocatedEndDeviceAddresses=0, nodeDepth=0,
    extendedPANID=bytes(8), nwkKeyLoaded=0, spare1=bytes(17), spare2=bytes(17), spare3=0, spare4=0,
    nwkLinkStatusPeriod=60, nwkRouterAgeLimit=3, nwkUseMultiCast=0, nwkIsConcentrator=1,
    nwkConcentratorDiscoveryTime=120, nwkConcentratorRadius=10, nwkAllFresh=1, nwkManagerAddr=0x0000,
    nwkTotalTransmissions=0, nwkUpdateId=0,
)


def pack_nib(nib: dict) -> bytes:
    return struct.pack(NIB_FORMAT, *(nib[name] for name in NIB_FIELDS))


def unpack_nib(data: bytes) -> dict:
    return dict(zip(NIB_FIELDS, struct.unpack(NIB_FORMAT, data)))


def key_info(seq: int, key: bytes) -> bytes:
    """nwkKeyDesc: key sequence number and the key."""
    return bytes([seq]) + key


def active_key_items(seq: int, key: bytes, frame_counter: int) -> bytes:
    """nwkActiveKeyItems: a key descriptor then a 32-bit frame counter (aligned to 4)."""
    return key_info(seq, key) + bytes(3) + struct.pack("<I", frame_counter)


def sec_material(frame_counter: int, ext_pan_id: bytes) -> bytes:
    return struct.pack("<I8s", frame_counter, ext_pan_id)


def addrmgr_entry(user_type: int, nwk: int, ieee: bytes) -> bytes:
    """AddrMgrEntry_t: user type, (pad), NWK address, IEEE address."""
    return struct.pack("<BxH8s", user_type, nwk, ieee)


EMPTY_ADDRMGR_ENTRY = b"\xff" * 12
EMPTY_TCLK_ENTRY = bytes(20)
EMPTY_APS_KEY_ENTRY = bytes(24)


def channels_of(mask: int) -> list[int]:
    return [ch for ch in range(11, 27) if mask & (1 << ch)]


class NvStore:
    """Items keyed by (item id, sub id); the legacy OSAL items are item 0."""

    def __init__(self, ieee: bytes, items: dict[tuple[int, int], bytes] | None = None) -> None:
        self.hardware_ieee = ieee
        self.items: dict[tuple[int, int], bytes] = items if items is not None else {}
        self.primary_channels: int | None = None
        if not self.items:
            self.factory_reset()

    # -- persistence ------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {f"{item:04x}:{sub:04x}": value.hex() for (item, sub), value in sorted(self.items.items())}

    @classmethod
    def from_json(cls, ieee: bytes, data: dict) -> "NvStore":
        items = {}
        for key, value in data.items():
            item, sub = key.split(":")
            items[(int(item, 16), int(sub, 16))] = bytes.fromhex(value)
        return cls(ieee, items)

    # -- access -----------------------------------------------------------------------------
    def get(self, sub: int, item: int = LEGACY) -> bytes | None:
        return self.items.get((item, sub))

    def put(self, sub: int, value: bytes, item: int = LEGACY) -> None:
        self.items[(item, sub)] = bytes(value)

    def delete(self, sub: int, item: int = LEGACY) -> bool:
        return self.items.pop((item, sub), None) is not None

    @property
    def nib(self) -> dict:
        return unpack_nib(self.items[(LEGACY, NIB)])

    @nib.setter
    def nib(self, value: dict) -> None:
        self.put(NIB, pack_nib(value))

    # -- the firmware's behaviour -----------------------------------------------------------
    def factory_reset(self) -> None:
        """A freshly flashed stick: default configuration, no network."""
        self.items.clear()
        legacy = {
            EXTADDR: self.hardware_ieee,
            STARTUP_OPTION: b"\x00",
            NIB: pack_nib(DEFAULT_NIB),
            PANID: struct.pack("<H", 0xFFFF),
            CHANLIST: struct.pack("<I", 1 << 11),
            EXTENDED_PAN_ID: bytes(8),
            APS_USE_EXT_PANID: bytes(8),
            PRECFGKEY: bytes(16),
            PRECFGKEYS_ENABLE: b"\x00",
            LOGICAL_TYPE: b"\x00",
            CONCENTRATOR_ENABLE: b"\x00",
            CONCENTRATOR_DISCOVERY: bytes([120]),
            CONCENTRATOR_RC: b"\x00",
            SRC_RTG_EXPIRY_TIME: bytes([255]),
            NWK_CHILD_AGE_ENABLE: b"\x00",
            BCAST_DELIVERY_TIME: bytes([30]),
            ZDO_DIRECT_CB: b"\x00",
            NWK_ACTIVE_KEY_INFO: key_info(0, bytes(16)),
            NWK_ALTERN_KEY_INFO: key_info(0, bytes(16)),
            NWKKEY: active_key_items(0, bytes(16), 0),
            TCLK_SEED: os.urandom(16),
            APS_LINK_KEY_TABLE: b"\xff" * 20,
            BDBNODEISONANETWORK: b"\x00",
        }
        for sub, value in legacy.items():
            self.put(sub, value)
        self._reset_tables()

    def _reset_tables(self) -> None:
        for item in (ADDRMGR, TCLK_TABLE, APS_KEY_DATA_TABLE, NWK_SEC_MATERIAL_TABLE):
            for key in [k for k in self.items if k[0] == item]:
                del self.items[key]
        for sub in range(ADDRMGR_ENTRIES):
            self.put(sub, EMPTY_ADDRMGR_ENTRY, ADDRMGR)
        for sub in range(TCLK_ENTRIES):
            self.put(sub, EMPTY_TCLK_ENTRY, TCLK_TABLE)
        for sub in range(APS_KEY_ENTRIES):
            self.put(sub, EMPTY_APS_KEY_ENTRY, APS_KEY_DATA_TABLE)

    def on_reset(self) -> None:
        """What the firmware does at boot with the startup option zigpy-znp set before a reset."""
        option = (self.get(STARTUP_OPTION) or b"\x00")[0]
        if option & (STARTUP_CLEAR_STATE | STARTUP_CLEAR_CONFIG):
            keep = {sub: self.get(sub) for sub in (EXTADDR,) if self.get(sub) is not None}
            self.factory_reset()
            for sub, value in keep.items():
                self.put(sub, value)
        if self.get(EXTADDR) is None:  # deleted on purpose: the firmware puts the chip's address back
            self.put(EXTADDR, self.hardware_ieee)
        self.primary_channels = None

    @property
    def on_network(self) -> bool:
        return (self.get(BDBNODEISONANETWORK) or b"\x00")[0] == 1 and self.nib["nwkLogicalChannel"] != 0

    def form(self) -> None:
        """BDB network formation: a NIB, keys and security material from the configured items."""
        mask = self.primary_channels or struct.unpack("<I", self.get(CHANLIST))[0]
        channels = channels_of(mask) or [11]
        pan_id = struct.unpack("<H", self.get(PANID))[0]
        if pan_id in (0xFFFF, 0xFFFE, 0x0000):
            pan_id = int.from_bytes(os.urandom(2), "little") % 0xFFF0 + 1
        ext_pan_id = self.get(APS_USE_EXT_PANID) or bytes(8)
        if ext_pan_id in (bytes(8), b"\xff" * 8):
            ext_pan_id = self.get(EXTADDR)
        key = self.get(PRECFGKEY)
        if key == bytes(16):
            key = os.urandom(16)
        nib = dict(DEFAULT_NIB)
        nib.update(nwkState=NWK_ROUTER, channelList=mask, nwkLogicalChannel=channels[0], nwkPanId=pan_id,
                   extendedPANID=ext_pan_id, nwkKeyLoaded=1, nwkDevAddress=0x0000, nwkCoordAddress=0x0000)
        self.nib = nib
        self.put(PANID, struct.pack("<H", pan_id))
        self.put(EXTENDED_PAN_ID, ext_pan_id)
        self.put(PRECFGKEY, key)
        self.put(NWK_ACTIVE_KEY_INFO, key_info(0, key))
        self.put(NWK_ALTERN_KEY_INFO, key_info(0, key))
        self.put(NWKKEY, active_key_items(0, key, 0))
        self.put(BDBNODEISONANETWORK, b"\x01")
        self.put(0, sec_material(1, ext_pan_id), NWK_SEC_MATERIAL_TABLE)
        self.put(1, sec_material(0xFFFFFFFF, b"\xff" * 8), NWK_SEC_MATERIAL_TABLE)

    def remember_child(self, nwk: int, ieee: bytes, is_child: bool) -> None:
        """The address manager entry Z-Stack writes when a device joins (read back by backups)."""
        free = None
        for sub in range(ADDRMGR_ENTRIES):
            value = self.get(sub, ADDRMGR)
            if value is None:
                break
            if value[4:12] == ieee:
                free = sub
                break
            if free is None and value[4:12] in (b"\xff" * 8, bytes(8)):
                free = sub
        if free is not None:
            self.put(free, addrmgr_entry(0x01 if is_child else 0x02, nwk, ieee), ADDRMGR)

    def forget_child(self, ieee: bytes) -> None:
        for sub in range(ADDRMGR_ENTRIES):
            value = self.get(sub, ADDRMGR)
            if value is not None and value[4:12] == ieee:
                self.put(sub, EMPTY_ADDRMGR_ENTRY, ADDRMGR)
