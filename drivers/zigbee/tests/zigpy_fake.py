"""A zigpy ControllerApplication without a radio, and virtual devices that answer real ZCL.

``FakeApp.send_packet`` gets the bytes zigpy serialized, as a radio library would; a virtual
device decodes them with zigpy's own types (ZDO and ZCL), acts, and answers with frames it
serializes the same way, handed back through ``packet_received``, so zigpy's interview, sequence
numbers, response matching, quirks and attribute cache all run as against a real coordinator.
Only the radio (framing, the serial line) is missing; the emulator in hardware-in-loop/ has it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import zigpy.application
import zigpy.config
import zigpy.state
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import Cluster, foundation

_quirks_loaded = False


def load_quirks() -> None:
    """zha-quirks registers a quirk when its module is imported; the gateway does this at start."""
    global _quirks_loaded
    if not _quirks_loaded:
        import warnings

        import zhaquirks

        with warnings.catch_warnings():  # zha-quirks 0.0.112's own deprecations, not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            zhaquirks.setup()
        _quirks_loaded = True


COORDINATOR_IEEE = t.EUI64.convert("00:12:4b:00:00:00:00:01")
MAINS = 0x8E  # alternate PAN coordinator, FFD, mains, rx on when idle, allocate address
BATTERY = 0x80  # allocate address only: a sleepy end device


def node_descriptor(mains: bool, manufacturer_code: int = 0x1234) -> zdo_t.NodeDescriptor:
    return zdo_t.NodeDescriptor(
        logical_type=zdo_t.LogicalType.Router if mains else zdo_t.LogicalType.EndDevice,
        complex_descriptor_available=0, user_descriptor_available=0, reserved=0, aps_flags=0,
        frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
        mac_capability_flags=MAINS if mains else BATTERY, manufacturer_code=manufacturer_code,
        maximum_buffer_size=82, maximum_incoming_transfer_size=82, server_mask=0,
        maximum_outgoing_transfer_size=82, descriptor_capability_field=0,
    )


@dataclass
class Endpoint:
    profile: int
    device_type: int
    #: cluster id -> {attribute name: value}: the server clusters and what they hold.
    clusters: dict[int, dict[str, Any]]
    out_clusters: list[int] = field(default_factory=list)


class VirtualDevice:
    """One Zigbee device: its descriptors, its attributes, and how it reacts to commands."""

    def __init__(self, name: str, nwk: int, *, manufacturer: str, model: str, endpoints: dict[int, Endpoint],
                 mains: bool = True, manufacturer_code: int = 0x1234) -> None:
        self.name, self.nwk = name, t.NWK(nwk)
        self.ieee = t.EUI64.convert(":".join(f"{b:02x}" for b in (0x00, 0x0d, 0x6f, 0x00, 0x00, 0x00,
                                                                  nwk >> 8, nwk & 0xFF)))
        self.endpoints = endpoints
        for ep in endpoints.values():
            ep.clusters.setdefault(0x0000, {}).update(manufacturer=manufacturer, model=model)
        self.node_desc = node_descriptor(mains, manufacturer_code)
        self.app: FakeApp | None = None
        self.muted = False
        #: (cluster id, command or attribute name, or "bind") -> the status the device answers instead.
        self.refuse: dict[tuple[int, str], foundation.Status] = {}
        #: (cluster id, attribute name) that the device cannot report (Configure Reporting fails).
        self.cannot_report: set[tuple[int, str]] = set()
        #: (endpoint, cluster id) -> {attribute name: (min, max, change)} configured by the hub.
        self.reporting: dict[tuple[int, int], dict[str, tuple]] = {}
        self.bound: set[tuple[int, int]] = set()
        #: every ZCL command received: (endpoint, cluster id, command name, {field: value}).
        self.received: list[tuple[int, int, str, dict]] = []
        self.pin: str | None = None
        self._tsn = itertools.count(100)

    # -- the physical world -------------------------------------------------------------------
    def get(self, ep: int, cluster_id: int, name: str) -> Any:
        return self.endpoints[ep].clusters[cluster_id].get(name)

    def set(self, ep: int, cluster_id: int, name: str, value: Any, *, report: bool | None = None) -> None:
        """Change an attribute as the world would; reported if the hub configured reporting of it
        (or ``report=True``: a device that reports unasked, as Xiaomi's do)."""
        self.endpoints[ep].clusters[cluster_id][name] = value
        if report or (report is None and name in self.reporting.get((ep, cluster_id), {})):
            self.send_zcl(ep, cluster_id, general=True, command_id=foundation.GeneralCommand.Report_Attributes,
                          payload=foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Report_Attributes].schema(
                              attribute_reports=[foundation.Attribute(self._attr(cluster_id, name).id,
                                                                      self._typed(cluster_id, name, value))]))

    def cluster_command(self, ep: int, cluster_id: int, name: str, **kwargs: Any) -> None:
        """Send a cluster command to the coordinator (a zone status change, an enroll request)."""
        command = getattr(Cluster._registry[cluster_id].ClientCommandDefs, name)
        self.send_zcl(ep, cluster_id, general=False, command_id=command.id, payload=command.schema(**kwargs))

    # -- frames -----------------------------------------------------------------------------
    def send_zcl(self, ep: int, cluster_id: int, *, general: bool, command_id: int, payload: Any,
                 tsn: int | None = None, direction: Any = foundation.Direction.Server_to_Client) -> None:
        make = foundation.ZCLHeader.general if general else foundation.ZCLHeader.cluster
        hdr = make(tsn if tsn is not None else next(self._tsn) % 256, command_id, direction=direction)
        self.send(ep, cluster_id, 0x0104, hdr.serialize() + payload.serialize())

    def send(self, ep: int, cluster_id: int, profile: int, data: bytes) -> None:
        if self.muted or self.app is None:
            return
        self.app.deliver(t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=self.nwk), src_ep=ep,
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000), dst_ep=1 if ep else 0,
            tsn=data[0] if not ep else 0, profile_id=profile, cluster_id=cluster_id,
            data=t.SerializableBytes(data), lqi=200, rssi=-50,
        ))

    def receive(self, packet: t.ZigbeePacket) -> None:
        if self.muted:
            return
        data = packet.data.serialize()
        if packet.dst_ep == 0:
            self._zdo(packet.cluster_id, data)
        else:
            self._zcl(packet.dst_ep, packet.cluster_id, data)

    def _zdo(self, cluster_id: int, data: bytes) -> None:
        tsn, args = data[0], t.deserialize(data[1:], zdo_t.CLUSTERS[cluster_id][1])[0]
        ok = zdo_t.Status.SUCCESS
        if cluster_id == zdo_t.ZDOCmd.Node_Desc_req:
            answer = (zdo_t.ZDOCmd.Node_Desc_rsp, [ok, self.nwk, self.node_desc])
        elif cluster_id == zdo_t.ZDOCmd.Active_EP_req:
            answer = (zdo_t.ZDOCmd.Active_EP_rsp, [ok, self.nwk, list(self.endpoints)])
        elif cluster_id == zdo_t.ZDOCmd.Simple_Desc_req:
            ep = self.endpoints[args[1]]
            desc = zdo_t.SizePrefixedSimpleDescriptor(
                endpoint=args[1], profile=ep.profile, device_type=ep.device_type, device_version=1,
                input_clusters=list(ep.clusters), output_clusters=list(ep.out_clusters))
            answer = (zdo_t.ZDOCmd.Simple_Desc_rsp, [ok, self.nwk, desc])
        elif cluster_id == zdo_t.ZDOCmd.Bind_req:
            status = self.refuse.get((args[2], "bind"), ok)
            if status == ok:
                self.bound.add((args[1], args[2]))
            answer = (zdo_t.ZDOCmd.Bind_rsp, [status])
        else:
            return
        rsp_id, values = answer
        self.send(0, rsp_id, 0x0000, bytes([tsn]) + t.serialize(values, zdo_t.CLUSTERS[rsp_id][1]))

    def _attr(self, cluster_id: int, name_or_id: Any) -> foundation.ZCLAttributeDef:
        return Cluster._registry[cluster_id].find_attribute(name_or_id)

    def _typed(self, cluster_id: int, name: str, value: Any) -> foundation.TypeValue:
        attr = self._attr(cluster_id, name)
        return foundation.TypeValue(type=attr.zcl_type, value=attr.type(value))

    def _zcl(self, ep: int, cluster_id: int, data: bytes) -> None:
        hdr, rest = foundation.ZCLHeader.deserialize(data)
        cls = Cluster._registry[cluster_id]
        attrs = self.endpoints[ep].clusters.setdefault(cluster_id, {})
        general = hdr.frame_control.frame_type == foundation.FrameType.GLOBAL_COMMAND
        command = foundation.GENERAL_COMMANDS[hdr.command_id] if general else cls.server_commands[hdr.command_id]
        args, _ = command.schema.deserialize(rest)
        reply = lambda cid, payload, gen=True: self.send_zcl(ep, cluster_id, general=gen, command_id=cid,  # noqa: E731
                                                              payload=payload, tsn=hdr.tsn,
                                                              direction=hdr.direction.flip())
        G = foundation.GeneralCommand
        if general:
            if hdr.command_id == G.Read_Attributes:
                records = []
                for attrid in args.attribute_ids:
                    attr = self._attr(cluster_id, attrid)
                    if attr.name in attrs:
                        records.append(foundation.ReadAttributeRecord(
                            attrid=attrid, status=foundation.Status.SUCCESS,
                            value=self._typed(cluster_id, attr.name, attrs[attr.name])))
                    else:
                        records.append(foundation.ReadAttributeRecord(
                            attrid=attrid, status=foundation.Status.UNSUPPORTED_ATTRIBUTE))
                reply(G.Read_Attributes_rsp, foundation.GENERAL_COMMANDS[G.Read_Attributes_rsp].schema(
                    status_records=records))
            elif hdr.command_id == G.Write_Attributes:
                failed = []
                for record in args.attributes:
                    attr = self._attr(cluster_id, record.attrid)
                    status = self.refuse.get((cluster_id, attr.name))
                    if status is not None:
                        failed.append(foundation.WriteAttributesStatusRecord(status=status, attrid=record.attrid))
                    else:
                        attrs[attr.name] = record.value.value
                        self.written(ep, cluster_id, attr.name, record.value.value)
                reply(G.Write_Attributes_rsp, foundation.GENERAL_COMMANDS[G.Write_Attributes_rsp].schema(
                    status_records=failed or [foundation.WriteAttributesStatusRecord(status=foundation.Status.SUCCESS)]))
            elif hdr.command_id == G.Configure_Reporting:
                failed = []
                for cfg in args.config_records:
                    name = self._attr(cluster_id, cfg.attrid).name
                    if (cluster_id, name) in self.cannot_report:
                        failed.append(foundation.ConfigureReportingResponseRecord(
                            status=foundation.Status.UNREPORTABLE_ATTRIBUTE, direction=0, attrid=cfg.attrid))
                    else:
                        self.reporting.setdefault((ep, cluster_id), {})[name] = (
                            cfg.min_interval, cfg.max_interval, getattr(cfg, "reportable_change", None))
                reply(G.Configure_Reporting_rsp, foundation.GENERAL_COMMANDS[G.Configure_Reporting_rsp].schema(
                    status_records=failed or [foundation.ConfigureReportingResponseRecord(
                        status=foundation.Status.SUCCESS)]))
            return  # a Default Response from the coordinator, or a command we do not model
        fields = args.as_dict()
        self.received.append((ep, cluster_id, command.name, fields))
        status = self.refuse.get((cluster_id, command.name), foundation.Status.SUCCESS)
        changes = behaviour(self, cluster_id, command.name, fields) if status == foundation.Status.SUCCESS else {}
        if isinstance(changes, foundation.Status):
            status, changes = changes, {}
        if cluster_id == 0x0101 and command.name in ("lock_door", "unlock_door"):  # Door Lock answers itself
            rsp = getattr(cls.ClientCommandDefs, f"{command.name}_response")
            reply(rsp.id, rsp.schema(status=status), False)
        elif not hdr.frame_control.disable_default_response or status != foundation.Status.SUCCESS:
            reply(G.Default_Response, foundation.GENERAL_COMMANDS[G.Default_Response].schema(
                command_id=hdr.command_id, status=status))
        for name, value in changes.items():
            self.set(ep, cluster_id, name, value)

    def written(self, ep: int, cluster_id: int, name: str, value: Any) -> None:
        """A write took effect; an IAS zone given its CIE address asks to be enrolled."""
        if cluster_id == 0x0500 and name == "cie_addr":
            self.cluster_command(ep, 0x0500, "enroll", zone_type=self.get(ep, 0x0500, "zone_type"),
                                 manufacturer_code=self.node_desc.manufacturer_code)


def behaviour(dev: VirtualDevice, cluster_id: int, name: str, f: dict) -> dict | foundation.Status:
    """What a command does to the device's attributes."""
    if cluster_id == 0x0006:
        current = dev.endpoints[1].clusters[0x0006].get("on_off", 0)
        return {"on_off": {"on": 1, "off": 0, "toggle": 0 if current else 1}[name]}
    if cluster_id == 0x0008 and name in ("move_to_level_with_on_off", "move_to_level"):
        changes = {"current_level": f["level"]}
        if name == "move_to_level_with_on_off":
            dev.set(1, 0x0006, "on_off", 1 if f["level"] else 0)
        return changes
    if cluster_id == 0x0300 and name == "move_to_color":
        return {"current_x": f["color_x"], "current_y": f["color_y"], "color_mode": 1}
    if cluster_id == 0x0300 and name == "move_to_color_temp":
        return {"color_temperature": f["color_temp_mireds"], "color_mode": 2}
    if cluster_id == 0x0101:
        if dev.pin is not None and f.get("pin_code") != dev.pin:
            return foundation.Status.FAILURE
        return {"lock_state": 1 if name == "lock_door" else 2}
    if cluster_id == 0x0102:
        target = {"up_open": 0, "down_close": 100}.get(name, f.get("percentage_lift_value"))
        return {} if target is None else {"current_position_lift_percentage": target}
    if cluster_id == 0x0500 and name == "enroll_response":
        return {"zone_state": 1, "zone_id": f["zone_id"]}
    return {}


class FakeApp(zigpy.application.ControllerApplication):
    """The coordinator: hands zigpy's packets to the virtual devices and their answers back."""

    def __init__(self) -> None:
        super().__init__({
            zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/null"},
            zigpy.config.CONF_OTA: {zigpy.config.CONF_OTA_ENABLED: False},
        })
        self.state.node_info = zigpy.state.NodeInfo(nwk=t.NWK(0x0000), ieee=COORDINATOR_IEEE,
                                                    logical_type=zdo_t.LogicalType.Coordinator)
        self.virtual: dict[int, VirtualDevice] = {}
        self.sent: list[t.ZigbeePacket] = []

    def add_virtual(self, device: VirtualDevice) -> VirtualDevice:
        device.app = self
        self.virtual[device.nwk] = device
        return device

    async def join(self, device: VirtualDevice) -> Any:
        """The device announces itself; zigpy interviews it and applies its quirk."""
        self.add_virtual(device)
        done = asyncio.get_running_loop().create_future()

        class Waiter:
            def device_initialized(self, zdev: Any) -> None:
                if zdev.ieee == device.ieee and not done.done():
                    done.set_result(zdev)

        waiter = Waiter()
        self.add_listener(waiter)
        try:
            self.handle_join(device.nwk, device.ieee, t.NWK(0x0000))
            return await asyncio.wait_for(done, 10)
        finally:
            self.remove_listener(waiter)

    def deliver(self, packet: t.ZigbeePacket) -> None:
        asyncio.get_running_loop().call_soon(self.packet_received, packet)

    async def send_packet(self, packet: t.ZigbeePacket) -> None:
        self.sent.append(packet)
        device = self.virtual.get(packet.dst.address) if packet.dst.addr_mode == t.AddrMode.NWK else None
        if device is not None:
            asyncio.get_running_loop().call_soon(device.receive, packet)

    def zcl_sent(self, cluster_id: int) -> list[tuple[foundation.ZCLHeader, bytes]]:
        """The ZCL frames zigpy sent to ``cluster_id``: (header, payload bytes)."""
        return [foundation.ZCLHeader.deserialize(p.data.serialize()) for p in self.sent
                if p.cluster_id == cluster_id and p.dst_ep != 0]

    # -- what a radio library implements; nothing to do without a radio ------------------------
    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def start_network(self) -> None: ...
    async def force_remove(self, dev: Any) -> None: ...
    async def add_endpoint(self, descriptor: Any) -> None: ...
    async def permit_ncp(self, time_s: int = 60) -> None: ...
    async def permit_with_link_key(self, node: Any, link_key: Any, time_s: int = 60) -> None: ...
    async def write_network_info(self, *, network_info: Any, node_info: Any) -> None: ...
    async def load_network_info(self, *, load_devices: bool = False) -> None: ...
    async def reset_network_info(self) -> None: ...
    async def _network_scan(self, channels: Any, duration_exp: int) -> Any: ...
    async def _packet_capture(self, channel: int) -> Any: ...
    async def _packet_capture_change_channel(self, channel: int) -> None: ...


async def settle() -> None:
    """Let frames in flight arrive and the tasks they start finish (each hop is one loop turn)."""
    for _ in range(30):
        await asyncio.sleep(0)


# -- the devices the tests pair: realistic descriptors and attributes -----------------------------
HA, ZLL = 0x0104, 0xC05E


def plug(nwk: int = 0x1001) -> VirtualDevice:
    return VirtualDevice("plug", nwk, manufacturer="ruffsim", model="SIM-PLUG-1", endpoints={1: Endpoint(
        HA, 0x0051, {0x0000: {"power_source": 1}, 0x0003: {}, 0x0006: {"on_off": 0},
                     0x0B04: {"active_power": 0, "rms_voltage": 2301, "rms_current": 0, "ac_power_multiplier": 1,
                              "ac_power_divisor": 10, "ac_voltage_multiplier": 1, "ac_voltage_divisor": 10,
                              "ac_current_multiplier": 1, "ac_current_divisor": 1000},
                     0x0702: {"current_summ_delivered": 0, "unit_of_measure": 0, "multiplier": 1, "divisor": 1000,
                              "metering_device_type": 0}},
        [0x0019])})


def light(nwk: int = 0x1002) -> VirtualDevice:
    return VirtualDevice("light", nwk, manufacturer="ruffsim", model="SIM-LIGHT-1", endpoints={1: Endpoint(
        HA, 0x010D, {0x0003: {}, 0x0006: {"on_off": 0}, 0x0008: {"current_level": 254},
                     0x0300: {"current_x": 20000, "current_y": 20000, "color_temperature": 370, "color_mode": 2,
                              "color_capabilities": 0x18, "color_temp_physical_min": 153,
                              "color_temp_physical_max": 454}})})


def dimmer(nwk: int = 0x1003) -> VirtualDevice:
    """On/Off + Level, but no light device type: a light all the same."""
    return VirtualDevice("dimmer", nwk, manufacturer="ruffsim", model="SIM-DIM-1", endpoints={1: Endpoint(
        HA, 0x0000, {0x0006: {"on_off": 1}, 0x0008: {"current_level": 127}})})


def relay(nwk: int = 0x1004) -> VirtualDevice:
    return VirtualDevice("relay", nwk, manufacturer="ruffsim", model="SIM-RELAY-2", endpoints={
        1: Endpoint(HA, 0x0000, {0x0006: {"on_off": 0}}), 2: Endpoint(HA, 0x0000, {0x0006: {"on_off": 1}})})


def climate_sensor(nwk: int = 0x1005) -> VirtualDevice:
    return VirtualDevice("climate", nwk, manufacturer="ruffsim", model="SIM-CLIMATE-1", mains=False, endpoints={
        1: Endpoint(HA, 0x0302, {0x0001: {"battery_percentage_remaining": 170, "battery_voltage": 29},
                                 0x0402: {"measured_value": 2150}, 0x0405: {"measured_value": 4520},
                                 0x0403: {"measured_value": 1013}, 0x0400: {"measured_value": 25000}})})


def motion(nwk: int = 0x1006) -> VirtualDevice:
    return VirtualDevice("motion", nwk, manufacturer="ruffsim", model="SIM-MOTION-1", mains=False, endpoints={
        1: Endpoint(HA, 0x0402, {0x0001: {"battery_voltage": 30},  # a sensor that knows no percentage
                                 0x0406: {"occupancy": 0},
                                 0x0500: {"zone_state": 0, "zone_type": 0x000D, "zone_status": 0}})})


def contact(nwk: int = 0x1007) -> VirtualDevice:
    return VirtualDevice("contact", nwk, manufacturer="ruffsim", model="SIM-CONTACT-1", mains=False, endpoints={
        1: Endpoint(HA, 0x0402, {0x0001: {"battery_percentage_remaining": 200},
                                 0x0500: {"zone_state": 0, "zone_type": 0x0015, "zone_status": 0}})})


def leak(nwk: int = 0x1008) -> VirtualDevice:
    return VirtualDevice("leak", nwk, manufacturer="ruffsim", model="SIM-LEAK-1", mains=False, endpoints={
        1: Endpoint(HA, 0x0402, {0x0500: {"zone_state": 0, "zone_type": 0x002A, "zone_status": 0}})})


def aqara_motion(nwk: int = 0x1009) -> VirtualDevice:
    """The signature zha-quirks' MotionAQ2 matches (zhaquirks/xiaomi/aqara/motion_aq2.py)."""
    return VirtualDevice("aqara", nwk, manufacturer="LUMI", model="lumi.sensor_motion.aq2", mains=False,
                         manufacturer_code=4151, endpoints={1: Endpoint(
                             HA, 0x0107, {0xFFFF: {}, 0x0406: {"occupancy": 0}, 0x0400: {"measured_value": 0},
                                          0x0500: {"zone_type": 0x000D, "zone_status": 0}, 0x0001: {}, 0x0003: {}},
                             [0x0000, 0x0019])})


def thermostat(nwk: int = 0x100A) -> VirtualDevice:
    return VirtualDevice("thermostat", nwk, manufacturer="ruffsim", model="SIM-THERMO-1", endpoints={1: Endpoint(
        HA, 0x0301, {0x0201: {"local_temperature": 1950, "occupied_heating_setpoint": 2000,
                              "occupied_cooling_setpoint": 2600, "system_mode": 4, "running_state": 1,
                              "ctrl_sequence_of_oper": 4, "abs_min_heat_setpoint_limit": 500,
                              "abs_max_heat_setpoint_limit": 3000, "abs_min_cool_setpoint_limit": 1600,
                              "abs_max_cool_setpoint_limit": 3200},
                     0x0001: {"battery_percentage_remaining": 200}})})


def lock(nwk: int = 0x100B) -> VirtualDevice:
    return VirtualDevice("lock", nwk, manufacturer="ruffsim", model="SIM-LOCK-1", mains=False, endpoints={
        1: Endpoint(HA, 0x000A, {0x0101: {"lock_state": 2, "lock_type": 0, "actuator_enabled": 1},
                                 0x0001: {"battery_percentage_remaining": 180}})})


def cover(nwk: int = 0x100C) -> VirtualDevice:
    return VirtualDevice("cover", nwk, manufacturer="ruffsim", model="SIM-COVER-1", endpoints={1: Endpoint(
        HA, 0x0202, {0x0102: {"window_covering_type": 0, "current_position_lift_percentage": 100}})})
