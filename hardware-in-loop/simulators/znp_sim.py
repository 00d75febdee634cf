#!/usr/bin/env python3
"""A TI Z-Stack 3.x coordinator (a CC2652 on Z-Stack 3.30+) on one end of a pty pair, with virtual
Zigbee devices behind it.

    python znp_sim.py --port /tmp/ttyZNP [--baudrate 115200] --control 127.0.0.1:PORT \\
        [--state /tmp/znp-state.json] --device plug1=plug --device light1=light ... [--fleet 200=motion]

It speaks TI's MT protocol (mt.py) as the firmware does to zigpy-znp: the NV items and BDB
commissioning a network formation and restore go through (znp_nvram.py), AF data requests to the
devices with their data confirms and incoming messages, ZDO requests answered through ZDO callbacks,
device announce / TC device / leave indications. The devices (zigbee_devices.py) answer real ZDO and
ZCL frames. ``--state`` keeps the NV memory and which devices have joined across restarts. The pty
may vanish (socat ended: the stick pulled) and come back: the emulator waits and reopens it, booting
as a stick that was just plugged in. Prints ``ready`` once it serves. The control protocol (one JSON
object a line on ``--control``) is described in hardware-in-loop/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import struct
import sys
import time
from pathlib import Path

import zigpy.types as zigpy_types

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mt  # noqa: E402
import znp_nvram as nv  # noqa: E402
from mt import AF, APP_CNF, SYS, UTIL, ZDO, Frame, Reader  # noqa: E402
from zigbee_devices import KINDS, Network, VirtualDevice  # noqa: E402
from pty_port import PtyPort  # noqa: E402
from zigbee_control import serve_control  # noqa: E402

SUCCESS, FAILURE, INVALID_PARAMETER, NV_ITEM_UNINIT, NV_OPER_FAILED = 0x00, 0x01, 0x02, 0x09, 0x0A
MAC_NO_ACK = 0xE9
STARTING_AS_COORDINATOR, STARTED_AS_COORDINATOR, NOT_STARTED = 0x08, 0x09, 0x00
BDB_SUCCESS, BDB_IN_PROGRESS, BDB_NETWORK_RESTORED = 0x00, 0x01, 0x0D
BDB_NONE, BDB_STEERING, BDB_FORMATION = 0x00, 0x02, 0x04
CAPABILITIES = 0x0001 | 0x0008 | 0x0010 | 0x0040 | 0x0200 | 0x0400  # SYS AF ZDO UTIL GP APP_CNF
VERSION = (2, 1, 2, 7, 1)  # transport rev, product id (1: CC26x2), major, minor, maint
CODE_REVISION = 20230507  # a Z-Stack 3.30+ build as the Sonoff ZBDongle-P ships
COORDINATOR_NODE_DESC = bytes([0x00, 0x40, 0x8F]) + struct.pack("<HBHHHB", 0x0000, 0x50, 0x00A0, 0x2C01, 0x00A0, 0)
# ZDO request cluster -> response cluster, for those the coordinator answers about itself
ZDO_RSP = 0x8000


class ZStack:
    """The firmware: MT requests in, responses and callbacks out, through ``self.send``."""

    def __init__(self, network: Network, nvram: nv.NvStore, save) -> None:
        self.network = network
        self.nv = nvram
        self.save = save
        self.state = NOT_STARTED
        self.endpoints: dict[int, dict] = {}
        self.send = lambda frame: None
        self.frames_in = 0
        self.frames_out = 0
        network.radio = self
        self.handlers = {
            (SYS, 0x00): self.sys_reset, (SYS, 0x01): self.sys_ping, (SYS, 0x02): self.sys_version,
            (SYS, 0x07): self.osal_item_init, (SYS, 0x08): self.osal_read, (SYS, 0x09): self.osal_write,
            (SYS, 0x12): self.osal_delete, (SYS, 0x13): self.osal_length, (SYS, 0x14): self.set_tx_power,
            (SYS, 0x1C): self.osal_read_ext, (SYS, 0x1D): self.osal_write_ext,
            (SYS, 0x30): self.nv_create, (SYS, 0x31): self.nv_delete, (SYS, 0x32): self.nv_length,
            (SYS, 0x33): self.nv_read, (SYS, 0x34): self.nv_write,
            (UTIL, 0x00): self.util_device_info, (UTIL, 0x0A): self.util_led, (UTIL, 0x49): self.util_assoc_find,
            (APP_CNF, 0x05): self.bdb_start_commissioning, (APP_CNF, 0x08): self.bdb_set_channel,
            (APP_CNF, 0x09): self.simple_success, (APP_CNF, 0x04): self.simple_success,
            (ZDO, 0x36): self.zdo_permit_join, (ZDO, 0x3E): self.simple_success, (ZDO, 0x45): self.simple_success,
            (ZDO, 0x46): self.zdo_route_check,
            (AF, 0x00): self.af_register, (AF, 0x01): self.af_data_request, (AF, 0x02): self.af_data_request_ext,
            (AF, 0x03): self.af_data_request_src_rtg, (AF, 0x04): self.af_delete,
        }

    # -- transport ------------------------------------------------------------------------------
    def on_frame(self, frame: Frame) -> None:
        self.frames_in += 1
        handler = self.handlers.get((frame.subsystem, frame.cmd1))
        if handler is None:
            if frame.kind == mt.SREQ:  # RPC error: command not recognised, echoing the header
                self.reply(mt.srsp(mt.RPC_ERROR, 0x00, bytes([0x02, frame.cmd0, frame.cmd1])))
            return
        try:
            handler(frame, Reader(frame.payload))
        except (ValueError, struct.error, IndexError) as error:  # a malformed request, as the firmware sees it
            print(f"znp_sim: bad {frame.cmd0:02x} {frame.cmd1:02x} frame: {error}", file=sys.stderr, flush=True)
            if frame.kind == mt.SREQ:
                self.reply(mt.srsp(frame.subsystem, frame.cmd1, bytes([INVALID_PARAMETER])))

    def reply(self, frame: Frame) -> None:
        self.frames_out += 1
        self.send(frame)

    def callback(self, subsystem: int, cmd1: int, payload: bytes) -> None:
        self.reply(mt.areq(subsystem, cmd1, payload))

    def simple_success(self, frame: Frame, r: Reader) -> None:
        self.reply(mt.srsp(frame.subsystem, frame.cmd1, bytes([SUCCESS])))

    def power_up(self) -> None:
        """A stick just plugged in (or the emulator started): not started, says it reset."""
        self.state = NOT_STARTED
        self.endpoints.clear()
        self.network.permit(0)
        self.callback(SYS, 0x80, bytes([0x00]) + bytes(VERSION[:5]))

    # -- SYS ------------------------------------------------------------------------------------
    def sys_reset(self, frame: Frame, r: Reader) -> None:
        self.nv.on_reset()
        self.save()
        self.state = NOT_STARTED
        self.endpoints.clear()
        self.network.permit(0)
        self.callback(SYS, 0x80, bytes([0x00]) + bytes(VERSION[:5]))

    def sys_ping(self, frame: Frame, r: Reader) -> None:
        self.reply(mt.srsp(SYS, 0x01, struct.pack("<H", CAPABILITIES)))

    def sys_version(self, frame: Frame, r: Reader) -> None:
        self.reply(mt.srsp(SYS, 0x02, bytes(VERSION) + struct.pack("<IBI", CODE_REVISION, 0, 0xFFFFFFFF)))

    def set_tx_power(self, frame: Frame, r: Reader) -> None:
        self.reply(mt.srsp(SYS, 0x14, bytes([SUCCESS])))

    def osal_length(self, frame: Frame, r: Reader) -> None:
        value = self.nv.get(r.take("H"))
        self.reply(mt.srsp(SYS, 0x13, struct.pack("<H", len(value or b""))))

    def _osal_read(self, frame: Frame, nvid: int, offset: int) -> None:
        value = self.nv.get(nvid)
        if value is None or offset > len(value):
            self.reply(mt.srsp(SYS, frame.cmd1, bytes([INVALID_PARAMETER, 0])))
            return
        chunk = value[offset:offset + 244]
        self.reply(mt.srsp(SYS, frame.cmd1, bytes([SUCCESS, len(chunk)]) + chunk))

    def osal_read(self, frame: Frame, r: Reader) -> None:
        nvid, offset = r.take("HB")
        self._osal_read(frame, nvid, offset)

    def osal_read_ext(self, frame: Frame, r: Reader) -> None:
        nvid, offset = r.take("HH")
        self._osal_read(frame, nvid, offset)

    def _osal_write(self, frame: Frame, nvid: int, offset: int, data: bytes) -> None:
        value = self.nv.get(nvid)
        if value is None or offset + len(data) > len(value):
            self.reply(mt.srsp(SYS, frame.cmd1, bytes([INVALID_PARAMETER])))
            return
        self.nv.put(nvid, value[:offset] + data + value[offset + len(data):])
        self.save()
        self.reply(mt.srsp(SYS, frame.cmd1, bytes([SUCCESS])))

    def osal_write(self, frame: Frame, r: Reader) -> None:
        nvid, offset, length = r.take("HBB")
        self._osal_write(frame, nvid, offset, r.bytes(length))

    def osal_write_ext(self, frame: Frame, r: Reader) -> None:
        nvid, offset, length = r.take("HHH")
        self._osal_write(frame, nvid, offset, r.bytes(length))

    def osal_item_init(self, frame: Frame, r: Reader) -> None:
        nvid, item_len, length = r.take("HHB")
        data = r.bytes(length)
        if self.nv.get(nvid) is not None:
            self.reply(mt.srsp(SYS, 0x07, bytes([SUCCESS])))
            return
        if len(data) > item_len:
            self.reply(mt.srsp(SYS, 0x07, bytes([INVALID_PARAMETER])))
            return
        self.nv.put(nvid, data.ljust(item_len, b"\xff"))
        self.save()
        self.reply(mt.srsp(SYS, 0x07, bytes([NV_ITEM_UNINIT])))

    def osal_delete(self, frame: Frame, r: Reader) -> None:
        nvid, item_len = r.take("HH")
        value = self.nv.get(nvid)
        if value is None or len(value) != item_len:
            self.reply(mt.srsp(SYS, 0x12, bytes([INVALID_PARAMETER])))
            return
        self.nv.delete(nvid)
        self.save()
        self.reply(mt.srsp(SYS, 0x12, bytes([SUCCESS])))

    def nv_length(self, frame: Frame, r: Reader) -> None:
        _sys_id, item, sub = r.take("BHH")
        self.reply(mt.srsp(SYS, 0x32, struct.pack("<I", len(self.nv.get(sub, item) or b""))))

    def nv_read(self, frame: Frame, r: Reader) -> None:
        _sys_id, item, sub, offset, length = r.take("BHHHB")
        value = self.nv.get(sub, item)
        if value is None:
            self.reply(mt.srsp(SYS, 0x33, bytes([FAILURE, 0])))
            return
        chunk = value[offset:offset + min(length, 244)]
        self.reply(mt.srsp(SYS, 0x33, bytes([SUCCESS, len(chunk)]) + chunk))

    def nv_write(self, frame: Frame, r: Reader) -> None:
        _sys_id, item, sub, offset, length = r.take("BHHHB")
        data = r.bytes(length)
        value = self.nv.get(sub, item)
        if value is None or offset + len(data) > len(value):
            self.reply(mt.srsp(SYS, 0x34, bytes([FAILURE])))
            return
        self.nv.put(sub, value[:offset] + data + value[offset + len(data):], item)
        if item == nv.ADDRMGR:
            self._adopt_restored_devices()
        self.save()
        self.reply(mt.srsp(SYS, 0x34, bytes([SUCCESS])))

    def _adopt_restored_devices(self) -> None:
        """A backup written onto the stick lists devices of the network: they never left it (they
        hold the network key), so they talk to this coordinator as they did to the old one."""
        known = self.nv.known_devices()
        for device in self.network.devices.values():
            if not device.joined and device.ieee.serialize() in known:
                device.joined = True
                self.network.dirty()

    def nv_create(self, frame: Frame, r: Reader) -> None:
        _sys_id, item, sub, length = r.take("BHHI")
        if self.nv.get(sub, item) is not None:
            self.reply(mt.srsp(SYS, 0x30, bytes([SUCCESS])))
            return
        self.nv.put(sub, bytes(length), item)
        self.save()
        self.reply(mt.srsp(SYS, 0x30, bytes([NV_ITEM_UNINIT])))

    def nv_delete(self, frame: Frame, r: Reader) -> None:
        _sys_id, item, sub = r.take("BHH")
        status = SUCCESS if self.nv.delete(sub, item) else NV_OPER_FAILED
        self.save()
        self.reply(mt.srsp(SYS, 0x31, bytes([status])))

    # -- UTIL -----------------------------------------------------------------------------------
    def util_device_info(self, frame: Frame, r: Reader) -> None:
        nwk = 0x0000 if self.state == STARTED_AS_COORDINATOR else 0xFFFE
        self.reply(mt.srsp(UTIL, 0x00, bytes([SUCCESS]) + self.nv.get(nv.EXTADDR) + struct.pack("<HBBB", nwk, 0x07,
                                                                                               self.state, 0)))

    def util_led(self, frame: Frame, r: Reader) -> None:
        self.reply(mt.srsp(UTIL, 0x0A, bytes([SUCCESS])))

    def util_assoc_find(self, frame: Frame, r: Reader) -> None:
        # associated_devices_t as the CC2652's compiler lays it out (36 bytes): the one reply
        # zigpy-znp learns the struct alignment from
        self.reply(mt.srsp(UTIL, 0x49, b"\xff" * 36))

    # -- APP_CNF (BDB) --------------------------------------------------------------------------
    def bdb_set_channel(self, frame: Frame, r: Reader) -> None:
        primary, mask = r.take("BI")
        if primary:
            self.nv.primary_channels = mask
        self.reply(mt.srsp(APP_CNF, 0x08, bytes([SUCCESS])))

    def bdb_start_commissioning(self, frame: Frame, r: Reader) -> None:
        mode = r.take("B")
        self.reply(mt.srsp(APP_CNF, 0x05, bytes([SUCCESS])))
        if not mode & BDB_FORMATION:
            self.callback(APP_CNF, 0x80, bytes([BDB_SUCCESS, mode, BDB_NONE]))
            return
        if self.nv.on_network:
            self.state = STARTED_AS_COORDINATOR
            self.callback(ZDO, 0xC0, bytes([STARTED_AS_COORDINATOR]))
            self.callback(APP_CNF, 0x80, bytes([BDB_NETWORK_RESTORED, BDB_NONE, BDB_FORMATION]))
            self.callback(APP_CNF, 0x80, bytes([BDB_SUCCESS, BDB_FORMATION, BDB_NONE]))
            return
        self.state = STARTING_AS_COORDINATOR
        self.callback(ZDO, 0xC0, bytes([STARTING_AS_COORDINATOR]))
        self.callback(APP_CNF, 0x80, bytes([BDB_IN_PROGRESS, BDB_FORMATION, BDB_STEERING]))
        self.nv.form()
        self.save()
        self.state = STARTED_AS_COORDINATOR
        self.callback(ZDO, 0xC0, bytes([STARTED_AS_COORDINATOR]))
        self.callback(APP_CNF, 0x80, bytes([BDB_SUCCESS, BDB_STEERING, BDB_NONE]))

    # -- ZDO ------------------------------------------------------------------------------------
    def zdo_route_check(self, frame: Frame, r: Reader) -> None:
        dst = r.take("H")
        device = self.network.by_nwk.get(dst)
        status = SUCCESS if device is not None and device.joined else 0x01  # RTG_INVALID_PATH
        self.reply(mt.srsp(ZDO, 0x46, bytes([status])))

    def zdo_permit_join(self, frame: Frame, r: Reader) -> None:
        mode, dst, duration, _tc = r.take("BHBB")
        self.reply(mt.srsp(ZDO, 0x36, bytes([SUCCESS])))
        if self.state != STARTED_AS_COORDINATOR:
            return
        if dst in (0x0000, 0xFFFC, 0xFFFD, 0xFFFF):
            self.network.permit(min(duration, 254))
            self.callback(ZDO, 0xB6, struct.pack("<HB", 0x0000, SUCCESS))
        else:
            device = self.network.by_nwk.get(dst)
            if device is not None and device.joined and not device.muted:
                self.network.permit(min(duration, 254))
                self.callback(ZDO, 0xB6, struct.pack("<HB", dst, SUCCESS))

    # -- AF -------------------------------------------------------------------------------------
    def af_register(self, frame: Frame, r: Reader) -> None:
        endpoint, profile, device_type, version, _latency = r.take("BHHBB")
        inputs = [r.take("H") for _ in range(r.take("B"))]
        outputs = [r.take("H") for _ in range(r.take("B"))]
        if endpoint in self.endpoints:
            self.reply(mt.srsp(AF, 0x00, bytes([0xB8])))  # ZApsDuplicateEntry
            return
        self.endpoints[endpoint] = dict(profile=profile, device_type=device_type, version=version,
                                        inputs=inputs, outputs=outputs)
        self.reply(mt.srsp(AF, 0x00, bytes([SUCCESS])))

    def af_delete(self, frame: Frame, r: Reader) -> None:
        self.endpoints.pop(r.take("B"), None)
        self.reply(mt.srsp(AF, 0x04, bytes([SUCCESS])))

    def af_data_request(self, frame: Frame, r: Reader) -> None:
        dst, dst_ep, src_ep, cluster, tsn, _options, _radius, length = r.take("HBBHBBBB")
        self._data_request(frame, 2, dst, dst_ep, src_ep, cluster, tsn, r.bytes(length))

    def af_data_request_src_rtg(self, frame: Frame, r: Reader) -> None:
        dst, dst_ep, src_ep, cluster, tsn, _options, _radius, hops = r.take("HBBHBBBB")
        r.bytes(2 * hops)
        self._data_request(frame, 2, dst, dst_ep, src_ep, cluster, tsn, r.bytes(r.take("B")))

    def af_data_request_ext(self, frame: Frame, r: Reader) -> None:
        mode = r.take("B")
        address = r.bytes(8)
        dst_ep, _pan, src_ep, cluster, tsn, _options, _radius, length = r.take("BHBHBBBH")
        data = r.bytes(length)
        if mode == 3:  # IEEE
            device = self.network.by_ieee(zigpy_types.EUI64(address))
            dst = device.nwk if device is not None else 0xFFFE
        else:
            dst = int.from_bytes(address[:2], "little")
        if mode == 1:  # group: nobody is in a group here
            self.reply(mt.srsp(AF, frame.cmd1, bytes([SUCCESS])))
            return
        self._data_request(frame, mode, dst, dst_ep, src_ep, cluster, tsn, data)

    def _data_request(self, frame: Frame, mode: int, dst: int, dst_ep: int, src_ep: int, cluster: int,
                      tsn: int, data: bytes) -> None:
        if self.state != STARTED_AS_COORDINATOR:
            self.reply(mt.srsp(AF, frame.cmd1, bytes([0xC2])))  # ZNwkInvalidRequest
            return
        self.reply(mt.srsp(AF, frame.cmd1, bytes([SUCCESS])))
        broadcast = mode == 15 or dst >= 0xFFF8
        if dst_ep == 0:
            if dst == 0x0000 or broadcast:
                self._zdo_to_coordinator(cluster, data, broadcast)
            if not broadcast and dst != 0x0000:
                self.network.unicast(dst, src_ep, 0, cluster, 0, data)
            return
        if broadcast:
            return
        delivered = self.network.unicast(dst, src_ep, dst_ep, cluster, 0x0104, data)
        if delivered:
            self.callback(AF, 0x80, bytes([SUCCESS, src_ep, tsn]))
        else:
            self.network.loop.call_later(0.05, self.callback, AF, 0x80, bytes([MAC_NO_ACK, src_ep, tsn]))

    def _zdo_to_coordinator(self, cluster: int, data: bytes, broadcast: bool) -> None:
        """ZDO requests the coordinator answers about itself, through the ZDO message callback."""
        if not data:
            return
        tsn, payload = data[0], data[1:]
        ok = bytes([SUCCESS])
        if cluster == 0x0002:  # Node_Desc_req
            rsp = ok + b"\x00\x00" + COORDINATOR_NODE_DESC
        elif cluster == 0x0005:  # Active_EP_req
            rsp = ok + b"\x00\x00" + bytes([len(self.endpoints)]) + bytes(sorted(self.endpoints))
        elif cluster == 0x0004:  # Simple_Desc_req
            ep = payload[2] if len(payload) >= 3 else 0
            desc = self.endpoints.get(ep)
            if desc is None:
                rsp = bytes([0x83]) + b"\x00\x00\x00"  # NOT_ACTIVE
            else:
                body = struct.pack("<BHHB", ep, desc["profile"], desc["device_type"], desc["version"])
                body += bytes([len(desc["inputs"])]) + b"".join(struct.pack("<H", c) for c in desc["inputs"])
                body += bytes([len(desc["outputs"])]) + b"".join(struct.pack("<H", c) for c in desc["outputs"])
                rsp = ok + b"\x00\x00" + bytes([len(body)]) + body
        elif cluster == 0x0038:  # Mgmt_NWK_Update_req: an energy scan
            mask, duration = struct.unpack_from("<IB", payload)
            if duration > 5:
                return
            channels = nv.channels_of(mask)
            rsp = ok + struct.pack("<IHH", mask, 0, 0) + bytes([len(channels)]) + bytes(
                (20 + 7 * ch) % 60 for ch in channels)
        elif cluster in (0x0031, 0x0032):  # Mgmt_Lqi_req, Mgmt_Rtg_req: empty tables
            start = payload[0] if payload else 0
            rsp = ok + bytes([0, start, 0])
        elif cluster == 0x0001:  # IEEE_addr_req
            rsp = ok + self.nv.get(nv.EXTADDR) + b"\x00\x00"
        else:
            return
        self.network.loop.call_soon(self._zdo_callback, 0x0000, cluster | ZDO_RSP, tsn, rsp, False)

    def _zdo_callback(self, src: int, cluster: int, tsn: int, payload: bytes, broadcast: bool) -> None:
        self.callback(ZDO, 0xFF, struct.pack("<HBHBBH", src, int(broadcast), cluster, 0, tsn, 0x0000) + payload)

    # -- from the devices (zigbee_devices.Radio) --------------------------------------------------
    def device_joined(self, device: VirtualDevice, rejoin: bool) -> None:
        if self.state != STARTED_AS_COORDINATOR:
            return
        ieee = device.ieee.serialize()
        self.nv.remember_device(device.nwk, ieee, is_child=not device.is_router)
        self.save()
        self.callback(ZDO, 0xCA, struct.pack("<H", device.nwk) + ieee + struct.pack("<H", 0x0000))
        capability = 0x8E if device.is_router else 0x80
        announce = struct.pack("<H", device.nwk) + ieee + bytes([capability])
        self.network.loop.call_later(0.02, self._announce, device, announce, capability)

    def _announce(self, device: VirtualDevice, announce: bytes, capability: int) -> None:
        self.callback(ZDO, 0xC1, struct.pack("<HH", device.nwk, device.nwk) + device.ieee.serialize()
                      + bytes([capability]))
        self._zdo_callback(device.nwk, 0x0013, device.next_tsn(), announce, True)

    def device_left(self, device: VirtualDevice) -> None:
        ieee = device.ieee.serialize()
        self.nv.forget_device(ieee)
        self.save()
        self.callback(ZDO, 0xC9, struct.pack("<H", device.nwk) + ieee + bytes([0, 1, 0]))

    def zdo_from_device(self, device: VirtualDevice, cluster: int, data: bytes) -> None:
        self._zdo_callback(device.nwk, cluster, data[0], data[1:], False)

    def aps_from_device(self, device: VirtualDevice, src_ep: int, dst_ep: int, cluster: int, profile: int,
                        data: bytes) -> None:
        if self.state != STARTED_AS_COORDINATOR or dst_ep not in self.endpoints:
            return
        lqi = 200 + device.nwk % 50
        tsn = data[1] if len(data) > 1 else 0
        self.callback(AF, 0x81, struct.pack("<HHHBBBBBIBB", 0x0000, cluster, device.nwk, src_ep, dst_ep, 0, lqi, 0,
                                            int(time.monotonic() * 1000) & 0xFFFFFFFF, tsn, len(data))
                      + data + struct.pack("<HB", device.nwk, 0))


class State:
    """The --state file: NV memory and joined devices, written (0600, it holds the network key)
    shortly after each change."""

    def __init__(self, path: str | None, ieee: bytes) -> None:
        self.path = Path(path) if path else None
        self.ieee = ieee
        self.nvram: nv.NvStore | None = None
        self.network: Network | None = None
        self._pending: asyncio.TimerHandle | None = None

    def load(self) -> tuple[nv.NvStore, dict]:
        if self.path is not None and self.path.exists():
            data = json.loads(self.path.read_text())
            return nv.NvStore.from_json(self.ieee, data["nvram"]), data.get("devices", {})
        return nv.NvStore(self.ieee), {}

    def schedule(self) -> None:
        if self.path is None or self._pending is not None:
            return
        self._pending = asyncio.get_running_loop().call_later(0.2, self.write)

    def write(self) -> None:
        self._pending = None
        if self.path is None or self.nvram is None:
            return
        data = {"nvram": self.nvram.to_json(), "devices": self.network.state() if self.network else {}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)


def device_arg(text: str) -> tuple[str, str]:
    name, sep, kind = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--device wants NAME=KIND, got {text!r}")
    if kind not in KINDS:
        raise argparse.ArgumentTypeError(f"unknown kind {kind!r} in {text!r}; kinds: {', '.join(KINDS)}")
    return name, kind


def fleet_arg(text: str) -> tuple[int, str]:
    count, sep, kind = text.partition("=")
    if not sep or not count.isdigit() or kind not in KINDS:
        raise argparse.ArgumentTypeError(f"--fleet wants COUNT=KIND (kinds: {', '.join(KINDS)}), got {text!r}")
    return int(count), kind


def control_arg(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--control wants HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


async def amain(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    hardware_ieee = bytes.fromhex("00124b0000ffee01")[::-1] if not args.ieee else bytes.fromhex(
        args.ieee.replace(":", ""))[::-1]
    state = State(args.state, hardware_ieee)
    nvram, saved_devices = state.load()
    network = Network(loop, on_change=state.schedule)
    for name, kind in args.device:
        network.add(name, kind)
    for count, kind in args.fleet:
        network.add_fleet(count, kind, args.fleet_period)
    network.restore(saved_devices)
    state.nvram, state.network = nvram, network
    zstack = ZStack(network, nvram, state.schedule)
    parser = mt.Parser()

    def plugged(first: bool) -> None:
        if not first:
            print(f"znp_sim: {args.port} is back", file=sys.stderr, flush=True)
            zstack.power_up()

    def pulled() -> None:
        zstack.state = NOT_STARTED
        print(f"znp_sim: {args.port} went away; waiting for it to come back", file=sys.stderr, flush=True)

    port = PtyPort(args.port, args.baudrate, lambda data: [zstack.on_frame(f) for f in parser.feed(data)],
                   plugged, pulled)
    zstack.send = lambda frame: port.write(frame.encode())
    network.start()
    server = await serve_control(network, *args.control) if args.control else None
    port_task = loop.create_task(port.run())
    await asyncio.wait_for(port.opened.wait(), 30)
    zstack.power_up()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    print("ready", flush=True)
    await stop
    port_task.cancel()
    if server is not None:
        server.close()
    state.write()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="the pty (socat's device end) to serve on")
    parser.add_argument("--baudrate", type=int, default=115200, help="pace of outgoing bytes; 0 for no pacing")
    parser.add_argument("--control", type=control_arg, help="HOST:PORT of the JSON-lines control socket")
    parser.add_argument("--state", help="file keeping NV memory and joined devices across restarts")
    parser.add_argument("--device", type=device_arg, action="append", default=[], metavar="NAME=KIND")
    parser.add_argument("--fleet", type=fleet_arg, action="append", default=[], metavar="COUNT=KIND")
    parser.add_argument("--fleet-period", type=float, default=1.0, help="seconds between a fleet device's reports")
    parser.add_argument("--ieee", help="the stick's IEEE address (default 00:12:4b:00:00:ff:ee:01)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(amain(args))
    except TimeoutError:
        sys.exit(f"znp_sim: {args.port} did not appear")


if __name__ == "__main__":
    main()
