"""Virtual Zigbee devices behind an emulated coordinator, independent of the coordinator's protocol.

Each device answers ZDO requests (descriptors, bind, leave) and ZCL frames (read/write attributes,
configure reporting, cluster commands with default responses) on its endpoint, and sends attribute
reports at the configured intervals. ZDO and ZCL payloads are encoded with zigpy's own ZDO/ZCL type
definitions (the standard's layouts), so the frames are real ones; the radio emulators (ZNP's MT in
znp_sim.py, EZSP in ezsp_sim.py) only carry them. A radio implements :class:`Radio`; the
:class:`Network` holds the devices, permit-join and the control operations of the README.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import zigpy.types as t
import zigpy.zcl
import zigpy.zcl.clusters  # noqa: F401  (fills the cluster registry)
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation

from zigbee_kinds import (  # noqa: F401  (KINDS re-exported for the radio emulators)
    BASIC, CLIENT_ATTRIBUTES, COLOR, COVER, ELECTRICAL, END_DEVICE_NODE_DESC, IAS_ZONE, IDENTIFY, KINDS, LEVEL,
    LOCK, METERING, OCCUPANCY, ON_OFF, ROUTER_NODE_DESC, THERMOSTAT)

HA_PROFILE = 0x0104
ZDO_PROFILE = 0x0000
ZCL_SUCCESS, ZCL_UNSUP_CLUSTER_COMMAND, ZCL_UNSUP_GENERAL_COMMAND = 0x00, 0x81, 0x82
ZCL_UNSUPPORTED_ATTRIBUTE, ZCL_INVALID_VALUE, ZCL_READ_ONLY, ZCL_UNSUPPORTED_CLUSTER = 0x86, 0x87, 0x88, 0xC3

class Radio(Protocol):
    """What a coordinator emulator does for the devices behind it."""

    def device_joined(self, device: "VirtualDevice", rejoin: bool) -> None: ...
    def device_left(self, device: "VirtualDevice") -> None: ...
    def zdo_from_device(self, device: "VirtualDevice", cluster: int, data: bytes) -> None: ...
    def aps_from_device(self, device: "VirtualDevice", src_ep: int, dst_ep: int, cluster: int,
                        profile: int, data: bytes) -> None: ...


def cluster_class(cluster_id: int):
    return zigpy.zcl.Cluster._registry.get(cluster_id)


def attribute_type(cluster_id: int, attr_id: int, value: Any):
    cls = cluster_class(cluster_id)
    if cls is not None and attr_id in cls.attributes:
        return cls.attributes[attr_id].type
    if isinstance(value, bool):
        return t.Bool
    if isinstance(value, str):
        return t.CharacterString
    return t.uint16_t


def resolve_cluster(name: Any) -> int:
    if isinstance(name, int):
        return name
    if isinstance(name, str) and name.lower().startswith("0x"):
        return int(name, 16)
    for cid, cls in zigpy.zcl.Cluster._registry.items():
        if cls.ep_attribute == name or cls.__name__ == name or getattr(cls, "name", None) == name:
            return cid
    raise KeyError(f"unknown cluster {name!r}")


def resolve_attribute(cluster_id: int, name: Any) -> int:
    if isinstance(name, int):
        return name
    if isinstance(name, str) and name.lower().startswith("0x"):
        return int(name, 16)
    cls = cluster_class(cluster_id)
    if cls is not None and name in cls.attributes_by_name:
        return cls.attributes_by_name[name].id
    raise KeyError(f"unknown attribute {name!r} of cluster 0x{cluster_id:04x}")


def zcl_header(tsn: int, command: int, *, cluster_specific: bool, to_client: bool,
               disable_default_response: bool = True) -> bytes:
    control = (1 if cluster_specific else 0) | (0x08 if to_client else 0) | (0x10 if disable_default_response else 0)
    return bytes([control, tsn, command])


def encode_attribute(cluster_id: int, attr_id: int, value: Any) -> bytes:
    """Data type id then the value, as in read responses and reports."""
    pytype = attribute_type(cluster_id, attr_id, value)
    type_id = foundation.DataType.from_python_type(pytype).type_id
    return bytes([type_id]) + pytype(value).serialize()


@dataclass
class Reporting:
    min_interval: int
    max_interval: int
    change: float
    last_value: Any = None
    last_sent: float = 0.0
    pending: asyncio.TimerHandle | None = None


@dataclass
class Transition:
    start: float
    target: float
    began: float
    duration: float


class VirtualDevice:
    def __init__(self, network: "Network", name: str, kind: str, nwk: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown device kind {kind!r}; kinds: {', '.join(KINDS)}")
        self.network = network
        self.name = name
        self.kind_name = kind
        self.kind = KINDS[kind]
        digest = hashlib.sha256(name.encode()).digest()
        self.ieee = t.EUI64(digest[:8])
        self.nwk = nwk
        self.joined = False
        self.muted = False
        self.endpoint = 1
        self.attrs: dict[int, dict[int, Any]] = {c: dict(a) for c, a in self.kind.attributes.items()}
        self.reporting: dict[tuple[int, int], Reporting] = {}
        self.bindings: set[tuple[int, int]] = set()
        self.transitions: dict[tuple[int, int], Transition] = {}
        self.tsn = digest[10]
        self.load_w = 60  # what the plug powers while on
        self.energy_wh = 0.0
        self.energy_at = time.monotonic()
        self.fleet_period: float | None = None

    # -- identity -----------------------------------------------------------------------------
    @property
    def ieee_str(self) -> str:
        return str(self.ieee).lower()

    @property
    def is_router(self) -> bool:
        return self.kind.mains

    def next_tsn(self) -> int:
        self.tsn = (self.tsn + 1) & 0xFF
        return self.tsn

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind_name, "ieee": self.ieee_str, "nwk": self.nwk,
                "joined": self.joined, "muted": self.muted,
                "manufacturer": self.kind.manufacturer, "model": self.kind.model,
                "reporting": [{"cluster": c, "attribute": a, "min": r.min_interval, "max": r.max_interval}
                              for (c, a), r in sorted(self.reporting.items())]}

    def state(self) -> dict:
        return {"name": self.name, "kind": self.kind_name, "nwk": self.nwk, "joined": self.joined,
                "attrs": {f"{c:04x}": {f"{a:04x}": _jsonable(v) for a, v in attrs.items()}
                          for c, attrs in self.attrs.items()},
                "energy_wh": self.energy_wh,
                # the devices are not restarted with the emulator: what the hub configured stays
                "reporting": [[c, a, r.min_interval, r.max_interval, r.change] for (c, a), r in self.reporting.items()],
                "bindings": sorted(self.bindings)}

    def restore(self, saved: dict) -> None:
        self.joined = bool(saved.get("joined"))
        for c, attrs in saved.get("attrs", {}).items():
            cluster = int(c, 16)
            for a, v in attrs.items():
                attr = int(a, 16)
                if cluster in self.attrs and attr in self.attrs[cluster]:
                    self.attrs[cluster][attr] = _from_json(self.attrs[cluster][attr], v)
        self.energy_wh = float(saved.get("energy_wh", 0.0))
        now = time.monotonic()
        for cluster, attr, low, high, change in saved.get("reporting", []):
            self.reporting[(cluster, attr)] = Reporting(low, high, change, last_sent=now)
        self.bindings = {tuple(b) for b in saved.get("bindings", [])}

    # -- attribute values -----------------------------------------------------------------------
    def value(self, cluster: int, attr: int) -> Any:
        self._settle(time.monotonic())
        transition = self.transitions.get((cluster, attr))
        if transition is not None:
            done = min(1.0, (time.monotonic() - transition.began) / transition.duration)
            return round(transition.start + (transition.target - transition.start) * done)
        return self.attrs[cluster][attr]

    def set_value(self, cluster: int, attr: int, value: Any) -> None:
        """A change in the device (the physical world or a command); reported if configured."""
        self.transitions.pop((cluster, attr), None)
        old = self.attrs[cluster].get(attr)
        self.attrs[cluster][attr] = value
        if cluster == ON_OFF and self.kind_name == "plug":
            self._settle(time.monotonic())
            self._update_power()
        if old != value:
            self._changed(cluster, attr)
            self.network.dirty()

    def transition(self, cluster: int, attr: int, target: float, tenths: int) -> None:
        if tenths <= 0:
            self.set_value(cluster, attr, int(target))
            return
        start = self.value(cluster, attr)
        self.transitions[(cluster, attr)] = Transition(float(start), float(target), time.monotonic(), tenths / 10)
        self.network.loop.call_later(tenths / 10, self._finish_transition, cluster, attr, target)

    def _finish_transition(self, cluster: int, attr: int, target: float) -> None:
        current = self.transitions.get((cluster, attr))
        if current is not None and current.target == target:
            self.set_value(cluster, attr, int(target))

    def _update_power(self) -> None:
        on = bool(self.attrs[ON_OFF][0x0000])
        power = self.load_w if on else 0
        for attr, value in ((0x050B, power), (0x0508, int(power * 1000 / 230))):
            if self.attrs[ELECTRICAL][attr] != value:
                self.attrs[ELECTRICAL][attr] = value
                self._changed(ELECTRICAL, attr)
        if self.attrs[METERING][0x0400] != power:
            self.attrs[METERING][0x0400] = power
            self._changed(METERING, 0x0400)

    def _settle(self, now: float) -> None:
        """Energy a plug used since the last look (its meter runs continuously)."""
        if self.kind_name != "plug":
            return
        self.energy_wh += self.attrs[ELECTRICAL][0x050B] * (now - self.energy_at) / 3600
        self.energy_at = now
        self.attrs[METERING][0x0000] = int(self.energy_wh)

    # -- reporting ------------------------------------------------------------------------------
    def _changed(self, cluster: int, attr: int) -> None:
        if cluster == IAS_ZONE and attr == 0x0002:
            self._zone_status_notification()
        config = self.reporting.get((cluster, attr))
        if config is None and self.kind.spontaneous and cluster not in (BASIC, IAS_ZONE) and self.joined:
            self.report([(cluster, attr)])
            return
        if config is None or config.max_interval == 0xFFFF or not self.joined:
            return
        now = time.monotonic()
        value = self.attrs[cluster][attr]
        if config.last_value is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and config.change and abs(value - config.last_value) < config.change:
            return
        wait = config.min_interval - (now - config.last_sent)
        if wait <= 0:
            self.report([(cluster, attr)])
        elif config.pending is None:
            config.pending = self.network.loop.call_later(wait, self._report_pending, cluster, attr)

    def _report_pending(self, cluster: int, attr: int) -> None:
        config = self.reporting.get((cluster, attr))
        if config is not None:
            config.pending = None
            self.report([(cluster, attr)])

    def tick(self, now: float) -> None:
        """Called four times a second: max-interval reports and the plug's meter."""
        if self.kind_name == "plug" and self.attrs[ON_OFF][0x0000]:
            self._settle(now)
            metering = self.reporting.get((METERING, 0x0000))
            if metering is not None and self.attrs[METERING][0x0000] != metering.last_value:
                self._changed(METERING, 0x0000)
        due = [key for key, config in self.reporting.items()
               if config.max_interval not in (0, 0xFFFF) and now - config.last_sent >= config.max_interval]
        if due:
            self.report(due)

    def report(self, keys: list[tuple[int, int]]) -> None:
        if self.muted or not self.joined:
            return
        now = time.monotonic()
        by_cluster: dict[int, list[int]] = {}
        for cluster, attr in keys:
            by_cluster.setdefault(cluster, []).append(attr)
        for cluster, attrs in by_cluster.items():
            body = b""
            for attr in attrs:
                value = self.value(cluster, attr)
                body += attr.to_bytes(2, "little") + encode_attribute(cluster, attr, value)
                config = self.reporting.get((cluster, attr))
                if config is not None:
                    config.last_value = value
                    config.last_sent = now
            frame = zcl_header(self.next_tsn(), 0x0A, cluster_specific=False, to_client=True) + body
            self.network.send_aps(self, cluster, frame)

    def _zone_status_notification(self) -> None:
        if self.muted or not self.joined:
            return
        zone = self.attrs[IAS_ZONE]
        payload = int(zone[0x0002]).to_bytes(2, "little") + b"\x00" + bytes([zone[0x0011] & 0xFF]) + b"\x00\x00"
        frame = zcl_header(self.next_tsn(), 0x00, cluster_specific=True, to_client=True) + payload
        self.network.send_aps(self, IAS_ZONE, frame)

    # -- ZDO ------------------------------------------------------------------------------------
    def handle_zdo(self, cluster: int, data: bytes) -> None:
        """A ZDO request addressed to this device (data starts with the ZDO sequence number)."""
        if self.muted or not data:
            return
        tsn, payload = data[0], data[1:]
        try:
            names, types = zdo_t.CLUSTERS[cluster]
            args, _ = t.deserialize(payload, types)
        except (KeyError, ValueError):
            return
        request = dict(zip(names, args))
        reply = self._zdo_reply(zdo_t.ZDOCmd(cluster), request)
        if reply is None:
            return
        rsp_cluster, rsp_payload, after = reply
        self.network.send_zdo(self, rsp_cluster, bytes([tsn]) + rsp_payload)
        if after is not None:
            self.network.loop.call_later(0.05, after)

    def _zdo_reply(self, cmd, request):
        ok = bytes([zdo_t.Status.SUCCESS])
        nwk = self.nwk.to_bytes(2, "little")
        if cmd == zdo_t.ZDOCmd.Node_Desc_req:
            desc = self.kind.node_desc or (ROUTER_NODE_DESC if self.is_router else END_DEVICE_NODE_DESC)
            return zdo_t.ZDOCmd.Node_Desc_rsp, ok + nwk + desc, None
        if cmd == zdo_t.ZDOCmd.Active_EP_req:
            return zdo_t.ZDOCmd.Active_EP_rsp, ok + nwk + bytes([1, self.endpoint]), None
        if cmd == zdo_t.ZDOCmd.Simple_Desc_req:
            if request["EndPoint"] != self.endpoint:
                return zdo_t.ZDOCmd.Simple_Desc_rsp, bytes([zdo_t.Status.NOT_ACTIVE]) + nwk + b"\x00", None
            desc = zdo_t.SimpleDescriptor(
                endpoint=self.endpoint, profile=HA_PROFILE, device_type=self.kind.device_type, device_version=1,
                input_clusters=list(self.kind.in_clusters), output_clusters=list(self.kind.out_clusters)).serialize()
            return zdo_t.ZDOCmd.Simple_Desc_rsp, ok + nwk + bytes([len(desc)]) + desc, None
        if cmd in (zdo_t.ZDOCmd.Bind_req, zdo_t.ZDOCmd.Unbind_req):
            key = (request["SrcEndpoint"], request["ClusterID"])
            (self.bindings.add if cmd == zdo_t.ZDOCmd.Bind_req else self.bindings.discard)(key)
            self.network.dirty()
            return cmd | 0x8000, ok, None
        if cmd == zdo_t.ZDOCmd.Mgmt_Leave_req:
            return zdo_t.ZDOCmd.Mgmt_Leave_rsp, ok, lambda: self.network.leave(self, requested=True)
        if cmd == zdo_t.ZDOCmd.Mgmt_Permit_Joining_req:
            return zdo_t.ZDOCmd.Mgmt_Permit_Joining_rsp, ok, None
        if cmd == zdo_t.ZDOCmd.Mgmt_Lqi_req:
            return zdo_t.ZDOCmd.Mgmt_Lqi_rsp, ok + bytes([0, request["StartIndex"], 0]), None
        if cmd == zdo_t.ZDOCmd.Mgmt_Rtg_req:
            return zdo_t.ZDOCmd.Mgmt_Rtg_rsp, ok + bytes([0, request["StartIndex"], 0]), None
        if cmd == zdo_t.ZDOCmd.IEEE_addr_req:
            return zdo_t.ZDOCmd.IEEE_addr_rsp, ok + self.ieee.serialize() + nwk, None
        if cmd == zdo_t.ZDOCmd.NWK_addr_req:
            return zdo_t.ZDOCmd.NWK_addr_rsp, ok + self.ieee.serialize() + nwk, None
        return None

    # -- ZCL ------------------------------------------------------------------------------------
    def handle_zcl(self, cluster: int, src_ep: int, data: bytes) -> None:
        if self.muted:
            return
        try:
            hdr, rest = foundation.ZCLHeader.deserialize(data)
        except ValueError:
            return
        fc = hdr.frame_control
        to_client = fc.direction == foundation.Direction.Client_to_Server
        replies: list[bytes] = []
        if cluster not in self.attrs and cluster not in CLIENT_ATTRIBUTES:
            status = ZCL_UNSUPPORTED_CLUSTER
            replies.append(self._default_response(hdr, status, to_client))
        elif fc.frame_type == foundation.FrameType.GLOBAL_COMMAND:
            replies += self._global(cluster, hdr, rest, to_client)
        else:
            status, specific = self._cluster_command(cluster, hdr.command_id, rest)
            if specific is not None:
                replies.append(zcl_header(hdr.tsn, specific[0], cluster_specific=True, to_client=to_client)
                               + specific[1])
            elif not fc.disable_default_response or status != ZCL_SUCCESS:
                replies.append(self._default_response(hdr, status, to_client))
        for frame in replies:
            self.network.send_aps(self, cluster, frame, dst_ep=src_ep)

    def _default_response(self, hdr, status: int, to_client: bool) -> bytes:
        return zcl_header(hdr.tsn, 0x0B, cluster_specific=False, to_client=to_client) + bytes([hdr.command_id, status])

    def _attrs_of(self, cluster: int) -> dict[int, Any]:
        return self.attrs.get(cluster) or CLIENT_ATTRIBUTES.get(cluster, {})

    def _global(self, cluster: int, hdr, rest: bytes, to_client: bool) -> list[bytes]:
        cmd = hdr.command_id
        attrs = self._attrs_of(cluster)
        try:
            schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand(cmd)].schema
            args, _ = schema.deserialize(rest)
        except (KeyError, ValueError):
            return [self._default_response(hdr, ZCL_UNSUP_GENERAL_COMMAND, to_client)]
        header = lambda rsp: zcl_header(hdr.tsn, rsp, cluster_specific=False, to_client=to_client)  # noqa: E731
        if cmd == foundation.GeneralCommand.Read_Attributes:
            body = b""
            for attr in args.attribute_ids:
                body += int(attr).to_bytes(2, "little")
                if attr in attrs:
                    value = self.value(cluster, attr) if cluster in self.attrs else attrs[attr]
                    body += b"\x00" + encode_attribute(cluster, attr, value)
                else:
                    body += bytes([ZCL_UNSUPPORTED_ATTRIBUTE])
            return [header(0x01) + body]
        if cmd in (foundation.GeneralCommand.Write_Attributes, foundation.GeneralCommand.Write_Attributes_Undivided):
            failures = b""
            for record in args.attributes:
                if record.attrid not in attrs:
                    failures += bytes([ZCL_UNSUPPORTED_ATTRIBUTE]) + int(record.attrid).to_bytes(2, "little")
                    continue
                self.set_value(cluster, record.attrid, record.value.value)
                if cluster == IAS_ZONE and record.attrid == 0x0010:
                    self.network.loop.call_later(0.05, self._enroll_request)
            return [header(0x04) + (failures or b"\x00")]
        if cmd == foundation.GeneralCommand.Configure_Reporting:
            failures = b""
            for record in args.config_records:
                if record.attrid not in attrs:
                    failures += bytes([ZCL_UNSUPPORTED_ATTRIBUTE, 0]) + int(record.attrid).to_bytes(2, "little")
                    continue
                old = self.reporting.pop((cluster, record.attrid), None)
                if old is not None and old.pending is not None:
                    old.pending.cancel()
                if record.max_interval != 0xFFFF:
                    change = getattr(record, "reportable_change", 0) or 0
                    self.reporting[(cluster, record.attrid)] = Reporting(
                        record.min_interval, record.max_interval, change, last_sent=time.monotonic())
            self.network.dirty()
            return [header(0x07) + (failures or b"\x00")]
        if cmd == foundation.GeneralCommand.Read_Reporting_Configuration:
            body = b""
            for record in args.attribute_records:
                config = self.reporting.get((cluster, record.attrid))
                if config is None:
                    body += bytes([ZCL_UNSUPPORTED_ATTRIBUTE, 0]) + int(record.attrid).to_bytes(2, "little")
                    continue
                value = attrs[record.attrid]
                type_id = encode_attribute(cluster, record.attrid, value)[0]
                body += bytes([0, 0]) + int(record.attrid).to_bytes(2, "little") + bytes([type_id]) \
                    + config.min_interval.to_bytes(2, "little") + config.max_interval.to_bytes(2, "little")
            return [header(0x09) + body]
        if cmd == foundation.GeneralCommand.Discover_Attributes:
            start = args.start_attribute_id
            ids = sorted(a for a in attrs if a >= start)[: args.max_attribute_ids]
            body = b"\x01"
            for attr in ids:
                body += attr.to_bytes(2, "little") + encode_attribute(cluster, attr, attrs[attr])[:1]
            return [header(0x0D) + body]
        if cmd == foundation.GeneralCommand.Default_Response:
            return []
        return [self._default_response(hdr, ZCL_UNSUP_GENERAL_COMMAND, to_client)]

    def _enroll_request(self) -> None:
        if self.muted or not self.joined:
            return
        zone_type = self.attrs[IAS_ZONE][0x0001]
        frame = zcl_header(self.next_tsn(), 0x01, cluster_specific=True, to_client=True, disable_default_response=False) \
            + zone_type.to_bytes(2, "little") + (0x1037).to_bytes(2, "little")
        self.network.send_aps(self, IAS_ZONE, frame)

    def _cluster_command(self, cluster: int, cmd: int, payload: bytes) -> tuple[int, tuple[int, bytes] | None]:
        """Applies a cluster command; returns (status, specific response (command, payload) or None)."""
        cls = cluster_class(cluster)
        args = None
        if cls is not None and cmd in cls.server_commands:
            try:
                args, _ = cls.server_commands[cmd].schema.deserialize(payload)
            except (ValueError, KeyError):
                return ZCL_INVALID_VALUE, None
        handler: Callable | None = getattr(self, f"_cmd_{cluster:04x}_{cmd:02x}", None)
        if handler is None:
            return ZCL_UNSUP_CLUSTER_COMMAND, None
        result = handler(args)
        return (ZCL_SUCCESS, result) if not isinstance(result, int) else (result, None)

    # on/off
    def _cmd_0006_00(self, args):
        self.set_value(ON_OFF, 0, False)

    def _cmd_0006_01(self, args):
        self.set_value(ON_OFF, 0, True)

    def _cmd_0006_02(self, args):
        self.set_value(ON_OFF, 0, not self.attrs[ON_OFF][0])

    _cmd_0006_40 = _cmd_0006_00
    _cmd_0006_41 = _cmd_0006_01

    def _cmd_0006_42(self, args):
        self.set_value(ON_OFF, 0, True)
        if args.on_time:
            self.network.loop.call_later(args.on_time / 10, self.set_value, ON_OFF, 0, False)

    # identify
    def _cmd_0003_00(self, args):
        self.set_value(IDENTIFY, 0, args.identify_time)

    def _cmd_0003_40(self, args):
        return None

    # level
    def _move_level(self, level: int, tenths: int, with_on_off: bool) -> None:
        if tenths == 0xFFFF:  # "as fast as the device's on/off transition time says"
            tenths = self.attrs[LEVEL].get(0x0010, 0)
        level = max(1 if with_on_off else 0, min(254, level))
        if with_on_off:
            self.set_value(ON_OFF, 0, level > 1)
        self.transition(LEVEL, 0, level, tenths)

    def _cmd_0008_00(self, args):
        self._move_level(args.level, args.transition_time or 0, False)

    def _cmd_0008_04(self, args):
        self._move_level(args.level, args.transition_time or 0, True)

    def _cmd_0008_02(self, args):
        step = args.step_size if args.step_mode == 0 else -args.step_size
        self._move_level(self.value(LEVEL, 0) + step, args.transition_time or 0, False)

    def _cmd_0008_06(self, args):
        step = args.step_size if args.step_mode == 0 else -args.step_size
        self._move_level(self.value(LEVEL, 0) + step, args.transition_time or 0, True)

    def _cmd_0008_03(self, args):
        self.set_value(LEVEL, 0, self.value(LEVEL, 0))

    _cmd_0008_07 = _cmd_0008_03

    # colour
    def _cmd_0300_07(self, args):
        self.attrs[COLOR][0x0008] = 1
        self.transition(COLOR, 0x0003, args.color_x, args.transition_time)
        self.transition(COLOR, 0x0004, args.color_y, args.transition_time)

    def _cmd_0300_0a(self, args):
        self.attrs[COLOR][0x0008] = 2
        mireds = max(self.attrs[COLOR][0x400B], min(self.attrs[COLOR][0x400C], args.color_temp_mireds))
        self.transition(COLOR, 0x0007, mireds, args.transition_time)

    # thermostat: setpoint raise/lower, amount in tenths of a degree
    def _cmd_0201_00(self, args):
        attrs = (0x0012,) if args.mode == 0 else (0x0011,) if args.mode == 1 else (0x0011, 0x0012)
        for attr in attrs:
            self.set_value(THERMOSTAT, attr, self.attrs[THERMOSTAT][attr] + args.amount * 10)

    # door lock: specific responses carry the status
    def _cmd_0101_00(self, args):
        self.set_value(LOCK, 0, 1)
        return 0x00, b"\x00"

    def _cmd_0101_01(self, args):
        self.set_value(LOCK, 0, 2)
        return 0x01, b"\x00"

    def _cmd_0101_02(self, args):
        self.set_value(LOCK, 0, 2 if self.attrs[LOCK][0] == 1 else 1)
        return 0x02, b"\x00"

    # window covering: lift percentage 0 open .. 100 closed, 10 % a second
    def _move_cover(self, target: int) -> None:
        current = self.value(COVER, 0x0008)
        self.transition(COVER, 0x0008, target, abs(target - current))

    def _cmd_0102_00(self, args):
        self._move_cover(0)

    def _cmd_0102_01(self, args):
        self._move_cover(100)

    def _cmd_0102_02(self, args):
        self.set_value(COVER, 0x0008, self.value(COVER, 0x0008))

    def _cmd_0102_05(self, args):
        self._move_cover(max(0, min(100, args.percentage_lift_value)))

    # IAS zone enrol response from the coordinator
    def _cmd_0500_00(self, args):
        self.attrs[IAS_ZONE][0x0000] = 1
        self.attrs[IAS_ZONE][0x0011] = args.zone_id
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def _from_json(template: Any, value: Any) -> Any:
    if isinstance(template, t.EUI64):
        return t.EUI64.convert(value)
    return value


class Network:
    """The devices behind one coordinator, permit-join and the control operations."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None] | None = None) -> None:
        self.loop = loop
        self.radio: Radio | None = None
        self.devices: dict[str, VirtualDevice] = {}
        self.by_nwk: dict[int, VirtualDevice] = {}
        self.permit_until = 0.0
        self.waiting: list[VirtualDevice] = []
        self.frames_in = 0
        self.frames_out = 0
        self.on_change = on_change or (lambda: None)
        self.fleet: list[VirtualDevice] = []
        self._ticker: asyncio.Task | None = None

    # -- membership -----------------------------------------------------------------------------
    def add(self, name: str, kind: str) -> VirtualDevice:
        if name in self.devices:
            raise ValueError(f"device {name!r} given twice")
        digest = hashlib.sha256(name.encode()).digest()
        nwk = int.from_bytes(digest[8:10], "little") % 0xFFF0 or 1
        while nwk in self.by_nwk or nwk == 0:
            nwk = (nwk + 1) % 0xFFF0
        device = VirtualDevice(self, name, kind, nwk)
        self.devices[name] = device
        self.by_nwk[nwk] = device
        return device

    def dirty(self) -> None:
        self.on_change()

    def start(self) -> None:
        self._ticker = self.loop.create_task(self._tick())

    async def _tick(self) -> None:
        """One timer for every device: max-interval reports, meters and the fleet's reports, the
        fleet spread over the period so 200 devices do not burst onto the UART at once."""
        step = 0.05
        phase = 0
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            phase += 1
            if phase % 5 == 0:
                for device in self.devices.values():
                    if device.joined and device.reporting or device.kind_name == "plug":
                        device.tick(now)
            if self.fleet:
                slots = max(1, int(self.fleet[0].fleet_period / step))
                for device in self.fleet[phase % slots::slots]:
                    if device.joined and not device.muted:
                        self._fleet_report(device)
            if self.permit_until and now >= self.permit_until:
                self.permit_until = 0.0

    def _fleet_report(self, device: VirtualDevice) -> None:
        occupied = 0 if device.attrs[OCCUPANCY][0] else 1
        device.attrs[OCCUPANCY][0] = occupied
        frame = zcl_header(device.next_tsn(), 0x0A, cluster_specific=False, to_client=True) \
            + b"\x00\x00" + encode_attribute(OCCUPANCY, 0, occupied)
        self.send_aps(device, OCCUPANCY, frame)

    # -- to and from the coordinator ------------------------------------------------------------
    def send_zdo(self, device: VirtualDevice, cluster: int, data: bytes) -> None:
        self.frames_out += 1
        self.loop.call_soon(self.radio.zdo_from_device, device, cluster, data)

    def send_aps(self, device: VirtualDevice, cluster: int, data: bytes, dst_ep: int = 1) -> None:
        self.frames_out += 1
        self.loop.call_soon(self.radio.aps_from_device, device, device.endpoint, dst_ep, cluster, HA_PROFILE, data)

    def unicast(self, nwk: int, src_ep: int, dst_ep: int, cluster: int, profile: int, data: bytes) -> bool:
        """A frame from the coordinator; False when nobody acknowledges it (absent, muted)."""
        device = self.by_nwk.get(nwk)
        if device is None or not device.joined or device.muted:
            return False
        self.frames_in += 1
        if dst_ep == 0:
            self.loop.call_soon(device.handle_zdo, cluster, data)
        elif dst_ep == device.endpoint:
            self.loop.call_soon(device.handle_zcl, cluster, src_ep, data)
        return True

    def by_ieee(self, ieee: t.EUI64) -> VirtualDevice | None:
        for device in self.devices.values():
            if device.ieee == ieee:
                return device
        return None

    def permit(self, seconds: int) -> None:
        self.permit_until = time.monotonic() + seconds if seconds else 0.0
        if seconds:
            waiting, self.waiting = self.waiting, []
            for index, device in enumerate(waiting):
                self.loop.call_later(0.05 + 0.02 * index, self._join, device)

    @property
    def permit_open(self) -> bool:
        return time.monotonic() < self.permit_until

    def _join(self, device: VirtualDevice) -> None:
        rejoin = device.joined
        device.joined = True
        device.muted = False
        self.radio.device_joined(device, rejoin)
        self.dirty()

    def leave(self, device: VirtualDevice, requested: bool = False) -> None:
        if not device.joined:
            return
        self.radio.device_left(device)
        device.joined = False
        for config in device.reporting.values():
            if config.pending is not None:
                config.pending.cancel()
        device.reporting.clear()
        device.bindings.clear()
        self.dirty()

    # -- the control protocol ---------------------------------------------------------------------
    def control(self, request: dict) -> dict:
        op = request.get("op")
        try:
            handler = getattr(self, f"_op_{op}")
        except (AttributeError, TypeError):
            return {"ok": False, "error": f"unknown op {op!r}"}
        try:
            return {"ok": True, **(handler(request) or {})}
        except (KeyError, ValueError, TypeError) as error:
            message = error.args[0] if error.args else str(error)
            return {"ok": False, "error": str(message)}

    def _device(self, request: dict) -> VirtualDevice:
        name = request.get("device")
        if name not in self.devices:
            raise KeyError(f"no device named {name!r}")
        return self.devices[name]

    def _op_join(self, request):
        device = self._device(request)
        if not self.permit_open:
            raise ValueError("permit join is closed")
        self._join(device)

    def _op_join_when_open(self, request):
        device = self._device(request)
        if self.permit_open:
            self._join(device)
        elif device not in self.waiting:
            self.waiting.append(device)

    def _op_leave(self, request):
        self.leave(self._device(request))

    def _op_mute(self, request):
        self._device(request).muted = True

    def _op_unmute(self, request):
        self._device(request).muted = False

    def _where(self, request) -> tuple[VirtualDevice, int, int]:
        device = self._device(request)
        if int(request.get("endpoint", 1)) != device.endpoint:
            raise ValueError(f"device {device.name!r} has no endpoint {request.get('endpoint')}")
        cluster = resolve_cluster(request.get("cluster"))
        if cluster not in device.attrs:
            raise KeyError(f"device {device.name!r} has no cluster {request.get('cluster')!r}")
        attr = resolve_attribute(cluster, request.get("attribute"))
        if attr not in device.attrs[cluster]:
            raise KeyError(f"cluster {request.get('cluster')!r} of {device.name!r} has no attribute "
                           f"{request.get('attribute')!r}")
        return device, cluster, attr

    def _op_set(self, request):
        device, cluster, attr = self._where(request)
        if "value" not in request:
            raise KeyError("set needs a value")
        value = request["value"]
        current = device.attrs[cluster][attr]
        if isinstance(current, bool):
            value = bool(value)
        elif isinstance(current, int) and not isinstance(value, int):
            raise ValueError(f"value {value!r} is not an integer")
        try:
            encode_attribute(cluster, attr, value)
        except (ValueError, TypeError, OverflowError) as error:
            raise ValueError(f"value {value!r} does not fit attribute {request.get('attribute')!r}: {error}")
        if cluster == ELECTRICAL and attr == 0x050B and device.kind_name == "plug":
            device.load_w = value  # the load plugged in; drawn while the relay is on
            device._update_power()
            return {"value": device.value(cluster, attr)}
        device.set_value(cluster, attr, value)
        return {"value": _jsonable(device.value(cluster, attr))}

    def _op_get(self, request):
        device, cluster, attr = self._where(request)
        return {"value": _jsonable(device.value(cluster, attr))}

    def _op_devices(self, request):
        return {"devices": [d.describe() for d in self.devices.values()]}

    def _op_stats(self, request):
        remaining = max(0.0, self.permit_until - time.monotonic())
        return {"frames_in": self.frames_in, "frames_out": self.frames_out,
                "permit_join_until": time.time() + remaining if remaining else None,
                "joined": sum(d.joined for d in self.devices.values())}

    # -- persistence --------------------------------------------------------------------------------
    def state(self) -> dict:
        return {name: d.state() for name, d in self.devices.items() if d.joined}

    def add_fleet(self, count: int, kind: str, period: float) -> None:
        """``--fleet COUNT=KIND``: devices named ``KIND-0`` ... that join as soon as permit-join opens
        (as a user pairing them), then each report every ``period`` seconds."""
        for index in range(count):
            device = self.add(f"{kind}-{index}", kind)
            device.fleet_period = period
            self.fleet.append(device)
            self.waiting.append(device)

    def restore(self, saved: dict) -> None:
        """Devices as the --state file left them; those already joined no longer wait to join."""
        for name, data in saved.items():
            device = self.devices.get(name)
            if device is not None and device.kind_name == data.get("kind"):
                device.restore(data)
        self.waiting = [d for d in self.waiting if not d.joined]
