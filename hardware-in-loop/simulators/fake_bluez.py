"""A fake BlueZ (``org.bluez``) on a private dbus-daemon, so bleak's real BlueZ backend runs unchanged.

    python fake_bluez.py --control 127.0.0.1:PORT [--adapter hci0] [--bind-key HEX] \
        --device kitchen=bthome_thermometer --device led=lbs ...

It starts its own ``dbus-daemon`` (a temporary configuration letting the current user own and call
anything), exports the adapter and the devices with the object paths, interfaces, signals and error
names bluetoothd uses, and prints ``ready unix:path=...``: run the hub (or bleak) with
``DBUS_SYSTEM_BUS_ADDRESS`` set to that address. Devices advertise when discovery starts, then
every ``--interval`` seconds, and when told to through the control socket (one JSON object a line;
``Sim.control`` lists the operations), so a test decides what the hub hears. The payloads are real (ble_payloads.py).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ble_payloads  # noqa: E402
from bluez_objects import Adapter1, Device1, Failed, GattCharacteristic1, GattService1  # noqa: E402
from dbus_fast import Message, MessageType  # noqa: E402
from dbus_fast.aio import MessageBus  # noqa: E402

from zigbee_control import serve_control  # noqa: E402

DEFAULT_BIND_KEY = "231d39c1d7cc1ab1aee224cd096db932"
LBS_SERVICE = "00001523-1212-efde-1523-785feabcd123"
LBS_BUTTON = "00001524-1212-efde-1523-785feabcd123"
LBS_LED = "00001525-1212-efde-1523-785feabcd123"
KINDS = ("bthome_thermometer", "bthome_encrypted", "bthome_button", "xiaomi_lywsdcgq", "lbs")
DEFAULT_VALUES = {
    "bthome_thermometer": {"temperature": 21.5, "humidity": 48.0, "battery": 97},
    "bthome_encrypted": {"temperature": 19.25, "humidity": 55.5, "battery": 88},
    "bthome_button": {"battery": 90},
    "xiaomi_lywsdcgq": {"temperature": 22.4, "humidity": 41.5},
    "lbs": {},
}
CHARACTERISTIC_NAMES = {"led": LBS_LED, "button": LBS_BUTTON}


def address_of(name: str) -> str:
    """A stable static random address from the device's name (top two bits set, as the spec asks)."""
    raw = bytearray(hashlib.sha256(name.encode()).digest()[:6])
    raw[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in raw)


@dataclass
class Characteristic:
    uuid: str
    flags: tuple[str, ...]
    value: bytes
    handle: int
    obj: GattCharacteristic1 | None = None


@dataclass
class Device:
    name: str
    kind: str
    address: str
    values: dict
    rssi: int = -60
    present: bool = True
    connected: bool = False
    services_resolved: bool = False
    counter: int = 0
    service_data: dict[str, bytes] = field(default_factory=dict)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    chars: list[Characteristic] = field(default_factory=list)
    obj: Device1 | None = None
    gatt_paths: list[str] = field(default_factory=list)
    adverts: int = 0

    @property
    def path_suffix(self) -> str:
        return "dev_" + self.address.replace(":", "_")

    @property
    def local_name(self) -> str:
        return {"xiaomi_lywsdcgq": "MJ_HT_V1", "lbs": "Nordic_LBS"}.get(self.kind, f"BTHome {self.name}")

    @property
    def uuids(self) -> list[str]:
        return [LBS_SERVICE] if self.kind == "lbs" else []

    @property
    def connectable(self) -> bool:
        return self.kind == "lbs"

    def char(self, which: str) -> Characteristic:
        uuid = CHARACTERISTIC_NAMES.get(which, which).lower()
        for char in self.chars:
            if char.uuid == uuid:
                return char
        raise ValueError(f"device {self.name!r} ({self.kind}) has no characteristic {which!r}"
                         f" (it has {', '.join(c.uuid for c in self.chars) or 'none'})")


class Sim:
    def __init__(self, bus: MessageBus, adapter: str, bind_key: bytes, devices: dict[str, str]) -> None:
        """``devices``: name -> kind (KINDS)."""
        self.bus, self.adapter_name, self.bind_key = bus, adapter, bind_key
        self.adapter_path = f"/org/bluez/{adapter}"
        self.adapter = Adapter1(self, adapter, address_of(f"adapter:{adapter}"))
        self.powered = True
        self.caller: str | None = None  # the unique bus name of the method call being handled
        self._unread = 0  # signals sent since dbus-daemon last showed it had read them all
        self._drain_lock = asyncio.Lock()
        self.devices: dict[str, Device] = {}
        self.stats = {"advertisements": 0, "connections": 0, "disconnections": 0, "writes": 0,
                      "dropped_not_discovering": 0}
        for name, kind in devices.items():
            dev = Device(name, kind, address_of(name), dict(DEFAULT_VALUES[kind]))
            if kind == "lbs":
                dev.chars = [Characteristic(LBS_BUTTON, ("read", "notify"), b"\x00", 0x0B),
                             Characteristic(LBS_LED, ("read", "write"), b"\x00", 0x0E)]
            self._payload(dev)
            self.devices[name] = dev

    def watch(self, message: Message) -> None:
        """Sees every message before dbus-fast dispatches it: who is calling (bluetoothd keeps a
        discovery session per client) and which clients left the bus (their sessions end)."""
        if message.message_type == MessageType.METHOD_CALL:
            self.caller = message.sender
        elif message.member == "NameOwnerChanged" and message.body and not message.body[2]:
            if message.body[0] in self.adapter.clients:
                self.discovery(self.adapter, message.body[0], False)

    # --- objects on the bus -------------------------------------------------------------------------

    def export_all(self) -> None:
        self.bus.export(self.adapter_path, self.adapter)
        for dev in self.devices.values():
            if dev.present:
                self._export_device(dev)

    def _device_path(self, dev: Device) -> str:
        return f"{self.adapter_path}/{dev.path_suffix}"

    def _export_device(self, dev: Device) -> None:
        dev.obj = Device1(self, dev)
        self.bus.export(self._device_path(dev), dev.obj)

    def _unexport_device(self, dev: Device) -> None:
        self._drop_gatt(dev)
        if dev.obj is not None:
            self.bus.unexport(self._device_path(dev))
            dev.obj = None

    def _export_gatt(self, dev: Device) -> None:
        if dev.gatt_paths or not dev.chars:
            return
        service_path = f"{self._device_path(dev)}/service000a"
        self.bus.export(service_path, GattService1(LBS_SERVICE, self._device_path(dev)))
        dev.gatt_paths.append(service_path)
        for char in dev.chars:
            char.obj = GattCharacteristic1(self, dev, char, service_path)
            path = f"{service_path}/char{char.handle:04x}"
            self.bus.export(path, char.obj)
            dev.gatt_paths.append(path)

    def _drop_gatt(self, dev: Device) -> None:
        for path in reversed(dev.gatt_paths):
            self.bus.unexport(path)
        dev.gatt_paths.clear()
        for char in dev.chars:
            char.obj = None

    # --- what bluetoothd would do -------------------------------------------------------------------

    def discovery(self, adapter: Adapter1, client: str | None, on: bool) -> None:
        was = adapter.discovering
        (adapter.clients.add if on else adapter.clients.discard)(client)
        if adapter.discovering != was:
            adapter.emit_properties_changed({"Discovering": adapter.discovering})
        if on:  # devices in range are heard soon after a scan starts (after StartDiscovery's reply)
            asyncio.get_running_loop().call_later(0.05, self.beacon)

    def beacon(self) -> None:
        """Every device in range advertises, as real ones do on their own interval; a connected
        peripheral stops advertising."""
        for dev in self.devices.values():
            if not dev.connected:
                self._advertise_once(dev)

    async def beacons(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.beacon()

    def remove_device(self, path: str) -> None:
        for dev in self.devices.values():
            if dev.obj is not None and self._device_path(dev) == path:
                self.disconnect(dev)
                self._unexport_device(dev)
                return
        raise Failed("Device does not exist", "org.bluez.Error.DoesNotExist")

    async def connect(self, dev: Device) -> None:
        if not self.adapter.powered:
            raise Failed("Resource Not Ready", "org.bluez.Error.NotReady")
        if not dev.present or not self.powered:
            raise Failed("Page Timeout", "org.bluez.Error.Failed")
        if not dev.connectable:
            raise Failed("le-connection-abort-by-local: device does not accept connections")
        if dev.connected:
            return
        await asyncio.sleep(0.01)  # the link layer takes a moment; bleak must cope with that order
        dev.connected = True
        self.stats["connections"] += 1
        dev.obj.emit_properties_changed({"Connected": True})
        self._export_gatt(dev)
        dev.services_resolved = True
        dev.obj.emit_properties_changed({"ServicesResolved": True})

    def disconnect(self, dev: Device) -> None:
        if not dev.connected:
            return
        for char in dev.chars:
            if char.obj is not None:
                char.obj.notifying = False
        dev.connected = dev.services_resolved = False
        self.stats["disconnections"] += 1
        if dev.obj is not None:
            dev.obj.emit_properties_changed({"ServicesResolved": False})
            dev.obj.emit_properties_changed({"Connected": False})

    def written(self, dev: Device, char: Characteristic, value: bytes) -> None:
        self.stats["writes"] += 1
        char.value = value

    # --- advertisements -----------------------------------------------------------------------------

    def _payload(self, dev: Device) -> None:
        if dev.kind == "bthome_thermometer":
            dev.service_data = {ble_payloads.BTHOME_UUID: ble_payloads.bthome(dev.values)}
        elif dev.kind == "bthome_encrypted":
            dev.counter += 1
            dev.service_data = {ble_payloads.BTHOME_UUID: ble_payloads.bthome_encrypted(
                dev.values, dev.address, self.bind_key, dev.counter)}
        elif dev.kind == "bthome_button":
            dev.service_data = {ble_payloads.BTHOME_UUID: ble_payloads.bthome(dev.values, trigger=True)}
        elif dev.kind == "xiaomi_lywsdcgq":
            dev.counter += 1
            dev.service_data = {ble_payloads.XIAOMI_UUID: ble_payloads.xiaomi_lywsdcgq(
                dev.values, dev.address, dev.counter)}
        elif dev.kind == "lbs":
            dev.manufacturer_data = {0x0059: b"\x01\x02"}  # Nordic Semiconductor's company id

    def _advertise_once(self, dev: Device) -> bool:
        if not (self.powered and self.adapter.powered and dev.present and dev.obj is not None):
            return False
        if not self.adapter.discovering:
            self.stats["dropped_not_discovering"] += 1
            return False
        self._payload(dev)
        dev.obj.advertised()
        dev.adverts += 1
        self.stats["advertisements"] += 1
        return True

    async def advertise(self, dev: Device, values: dict, count: int, rate: float | None,
                        step: float = 0.0) -> int:
        """``step``: added to the temperature before each advertisement after the first, so each
        one carries a new value (a state change in the hub, not a repeat)."""
        values = dict(values)
        if "rssi" in values:
            dev.rssi = int(values.pop("rssi"))
        unknown = set(values) - set(ble_payloads.BTHOME_OBJECTS) - {"temperature", "humidity"}
        if unknown:
            raise ValueError(f"unknown values {sorted(unknown)} for {dev.kind}")
        dev.values.update(values)
        sent = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(count):
            if rate:
                delay = start + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if step and i:
                dev.values["temperature"] = round(dev.values.get("temperature", 20.0) + step, 2)
            sent += self._advertise_once(dev)
            self._unread += 1
            if self._unread >= 100:
                await self.drained()
        dev.values.pop("button", None)
        return sent

    async def drained(self) -> None:
        """Waits until dbus-daemon has read what was sent. dbus-fast writes a signal at once when its
        queue is empty and gives the connection up if the socket is full (EAGAIN), so bursts of
        advertisements (several at once, one per control client) pause together, every 100 signals
        sent by any of them, for a round trip (which the daemon answers after reading them)."""
        async with self._drain_lock:
            if self._unread < 100:
                return  # another burst drained while this one waited
            reply = await self.bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                                interface="org.freedesktop.DBus.Peer", member="Ping"))
            if reply is None or reply.message_type == MessageType.ERROR:
                raise RuntimeError(f"dbus-daemon did not answer a ping: {reply and reply.body}")
            self._unread = 0

    # --- control ------------------------------------------------------------------------------------

    def _dev(self, request: dict) -> Device:
        name = request.get("device")
        if name not in self.devices:
            raise ValueError(f"no device {name!r} (devices: {', '.join(self.devices) or 'none'})")
        return self.devices[name]

    async def control(self, request: dict) -> dict:
        """Operations: ``devices``; ``advertise`` device [values] [count=1] [rate per s] [step];
        ``press``
        device; ``get`` device [characteristic led|button|UUID]; ``vanish`` / ``return`` device;
        ``adapter`` powered=true|false [keep=true: switched off but still there]; ``stats``."""
        op = request.get("op")
        try:
            if op == "devices":
                return {"ok": True, "devices": [
                    {"name": d.name, "kind": d.kind, "address": d.address, "present": d.present,
                     "connected": d.connected} for d in self.devices.values()]}
            if op == "advertise":
                dev = self._dev(request)
                count = int(request.get("count", 1))
                rate = request.get("rate")
                if count < 0 or (rate is not None and float(rate) <= 0):
                    raise ValueError("count must be >= 0 and rate > 0")
                sent = await self.advertise(dev, request.get("values") or {}, count,
                                            float(rate) if rate else None, float(request.get("step", 0)))
                return {"ok": True, "sent": sent}
            if op == "press":
                dev = self._dev(request)
                if dev.kind == "lbs":
                    char = dev.char("button")
                    for value in (b"\x01", b"\x00"):
                        char.value = value
                        if char.obj is not None:
                            char.obj.notify()
                    return {"ok": True, "notified": dev.connected}
                if dev.kind == "bthome_button":
                    event = request.get("event", "press")
                    sent = await self.advertise(dev, {"button": event}, 1, None)
                    return {"ok": True, "sent": sent}
                raise ValueError(f"device {dev.name!r} ({dev.kind}) has no button")
            if op == "get":
                dev = self._dev(request)
                if "characteristic" not in request:
                    return {"ok": True, "values": dev.values, "present": dev.present,
                            "connected": dev.connected, "address": dev.address}
                value = dev.char(str(request["characteristic"])).value
                return {"ok": True, "value": value.hex(), "int": int.from_bytes(value, "little")}
            if op == "vanish":
                dev = self._dev(request)
                dev.present = False
                self.disconnect(dev)  # the link drops mid-connection, then bluetoothd forgets it
                self._unexport_device(dev)
                return {"ok": True}
            if op == "return":
                dev = self._dev(request)
                if not dev.present:
                    dev.present = True
                    if self.powered:
                        self._export_device(dev)
                        self._advertise_once(dev)
                return {"ok": True}
            if op == "adapter":
                powered = request.get("powered")
                if not isinstance(powered, bool) or not isinstance(request.get("keep", False), bool):
                    raise ValueError("adapter wants powered=true|false (and keep=true|false)")
                if request.get("keep"):
                    self.switch(powered)
                else:
                    self.set_powered(powered)
                return {"ok": True}
            if op == "stats":
                return {"ok": True, **self.stats,
                        "per_device": {d.name: d.adverts for d in self.devices.values()}}
            raise ValueError(f"unknown op {op!r} (devices, advertise, press, get, vanish, return, "
                             "adapter, stats)")
        except (ValueError, TypeError) as error:
            return {"ok": False, "error": str(error)}

    def switch(self, powered: bool) -> None:
        """The adapter switched off and on (``btmgmt power off``, rfkill) but still there: bluetoothd
        keeps the adapter on the bus with ``Powered`` false, drops the connections, ends every
        client's discovery session (src/adapter.c, ``adapter_stop``) and removes the devices it
        only knew from scanning (temporary ones; all of the fake's); StartDiscovery and Connect are
        refused (NotReady) until it is on again, and a client must start discovering anew."""
        if not self.powered:
            self.set_powered(True)
        if powered == self.adapter.powered:
            return
        if not powered:
            for dev in self.devices.values():
                self.disconnect(dev)
                self._unexport_device(dev)
            self.adapter.clients.clear()
            self.adapter.powered = False
            self.adapter.emit_properties_changed({"Powered": False, "Discovering": False})
        else:
            self.adapter.powered = True
            self.adapter.emit_properties_changed({"Powered": True})
            for dev in self.devices.values():
                if dev.present and dev.obj is None:
                    self._export_device(dev)

    def set_powered(self, powered: bool) -> None:
        """The adapter unplugged: its devices disconnect and bluetoothd removes it and them."""
        if powered == self.powered:
            if powered and not self.adapter.powered:
                self.switch(True)
            return
        if not powered:
            for dev in self.devices.values():
                self.disconnect(dev)
                self._unexport_device(dev)
            self.adapter.clients.clear()
            self.bus.unexport(self.adapter_path)
            self.powered = False
        else:
            self.powered = True
            self.adapter = Adapter1(self, self.adapter_name, self.adapter.address)
            self.export_all()


DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
  </policy>
</busconfig>
"""


def _die_with_parent() -> None:
    """The daemon must not outlive the fake, even if the fake is killed with SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_dbus_daemon(folder: Path) -> tuple[subprocess.Popen, str]:
    socket_path = folder / "system_bus_socket"
    config = folder / "bus.conf"
    config.write_text(DBUS_CONFIG.format(socket=socket_path))
    proc = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address"],
                            stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    address = proc.stdout.readline().strip()
    if not address:
        raise RuntimeError(f"dbus-daemon did not start (exit {proc.poll()})")
    return proc, address


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fake-bluez-") as folder:
        daemon, address = start_dbus_daemon(Path(folder))
        try:
            bus = await MessageBus(bus_address=address).connect()
            devices = dict(spec.split("=", 1) for spec in args.device)
            sim = Sim(bus, args.adapter, bytes.fromhex(args.bind_key), devices)
            bus.add_message_handler(sim.watch)
            await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                   interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                                   body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"]))
            sim.export_all()
            await bus.request_name("org.bluez")
            host, _, port = args.control.rpartition(":")
            server = await serve_control(sim, host, int(port))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            beacons = asyncio.create_task(sim.beacons(args.interval)) if args.interval > 0 else None
            lost = asyncio.create_task(bus.wait_for_disconnect())
            lost.add_done_callback(lambda _t: stop.set())
            print(f"ready {address}", flush=True)
            await stop.wait()
            if lost.done():  # a fake that lost its bus is no fake: say so and end
                print(f"fake BlueZ lost its bus: {lost.exception() or 'disconnected'}", file=sys.stderr, flush=True)
                raise SystemExit(1)
            if beacons is not None:
                beacons.cancel()
            server.close()
            bus.disconnect()
        finally:
            daemon.terminate()
            daemon.wait(5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control", required=True, help="HOST:PORT of the control socket")
    parser.add_argument("--adapter", default="hci0")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between a device's own advertisements while scanned (0: only on request)")
    parser.add_argument("--bind-key", default=DEFAULT_BIND_KEY, help="hex AES key of bthome_encrypted devices")
    parser.add_argument("--device", action="append", default=[], metavar="NAME=KIND",
                        help=f"a device; KIND one of {', '.join(KINDS)}")
    args = parser.parse_args(argv)
    for spec in args.device:
        name, sep, kind = spec.partition("=")
        if not sep or not name or kind not in KINDS:
            parser.error(f"--device {spec!r}: want NAME=KIND, KIND one of {', '.join(KINDS)}")
    try:
        if len(bytes.fromhex(args.bind_key)) != 16:
            raise ValueError
    except ValueError:
        parser.error("--bind-key: want 32 hex digits (16 bytes)")
    return args


if __name__ == "__main__":
    os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
    asyncio.run(run(parse_args()))
