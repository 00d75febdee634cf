"""BlueZ's D-Bus interfaces as dbus-fast ``ServiceInterface`` objects: what bluetoothd exports.

Names, signatures and error names follow BlueZ's doc/org.bluez.*.rst, so bleak's real BlueZ backend
cannot tell them from bluetoothd. The behaviour behind them (which device answers, what a write does)
lives in fake_bluez.py; these classes only call back into it.

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from the
annotation strings.
"""

from dbus_fast import DBusError, Variant
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_method, dbus_property

READ = PropertyAccess.READ


class Failed(DBusError):
    def __init__(self, text: str, name: str = "org.bluez.Error.Failed") -> None:
        super().__init__(name, text)


class Adapter1(ServiceInterface):
    def __init__(self, sim, name: str, address: str) -> None:
        super().__init__("org.bluez.Adapter1")
        self.sim, self.adapter_name, self.address = sim, name, address
        #: D-Bus clients (unique names) with a discovery session: bluetoothd keeps one per client,
        #: refuses a second, and discovers while any is open.
        self.clients: set[str] = set()
        self.powered = True

    @property
    def discovering(self) -> bool:
        return bool(self.clients)

    @dbus_method()
    def StartDiscovery(self):
        if not self.powered:
            raise Failed("Resource Not Ready", "org.bluez.Error.NotReady")
        client = self.sim.caller
        if client in self.clients:
            raise Failed("Operation already in progress", "org.bluez.Error.InProgress")
        self.sim.discovery(self, client, True)

    @dbus_method()
    def StopDiscovery(self):
        if not self.powered:
            raise Failed("Resource Not Ready", "org.bluez.Error.NotReady")
        client = self.sim.caller
        if client not in self.clients:
            raise Failed("No discovery started", "org.bluez.Error.Failed")
        self.sim.discovery(self, client, False)

    @dbus_method()
    def SetDiscoveryFilter(self, filters: "a{sv}"):
        pass

    @dbus_method()
    def GetDiscoveryFilters(self) -> "as":
        return ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable", "Pattern"]

    @dbus_method()
    def RemoveDevice(self, device: "o"):
        self.sim.remove_device(device)

    @dbus_property(access=READ)
    def Address(self) -> "s":
        return self.address

    @dbus_property(access=READ)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=READ)
    def Name(self) -> "s":
        return f"ruffhub-fake-{self.adapter_name}"

    @dbus_property(access=READ)
    def Alias(self) -> "s":
        return f"ruffhub-fake-{self.adapter_name}"

    @dbus_property(access=READ)
    def Powered(self) -> "b":
        return self.powered

    @dbus_property(access=READ)
    def Discoverable(self) -> "b":
        return False

    @dbus_property(access=READ)
    def Pairable(self) -> "b":
        return False

    @dbus_property(access=READ)
    def Discovering(self) -> "b":
        return self.discovering

    @dbus_property(access=READ)
    def Roles(self) -> "as":
        return ["central", "peripheral"]

    @dbus_property(access=READ)
    def UUIDs(self) -> "as":
        return []


class Device1(ServiceInterface):
    """One remote device; ``dev`` (fake_bluez.Device) holds its state."""

    def __init__(self, sim, dev) -> None:
        super().__init__("org.bluez.Device1")
        self.sim, self.dev = sim, dev

    @dbus_method()
    async def Connect(self):
        await self.sim.connect(self.dev)

    @dbus_method()
    def Disconnect(self):
        self.sim.disconnect(self.dev)

    @dbus_method()
    def Pair(self):
        raise Failed("Pairing is not supported by this device", "org.bluez.Error.NotSupported")

    @dbus_property(access=READ)
    def Address(self) -> "s":
        return self.dev.address

    @dbus_property(access=READ)
    def AddressType(self) -> "s":
        return "random"

    @dbus_property(access=READ)
    def Name(self) -> "s":
        return self.dev.local_name

    @dbus_property(access=READ)
    def Alias(self) -> "s":
        return self.dev.local_name

    @dbus_property(access=READ)
    def Adapter(self) -> "o":
        return self.sim.adapter_path

    @dbus_property(access=READ)
    def Paired(self) -> "b":
        return False

    @dbus_property(access=READ)
    def Bonded(self) -> "b":
        return False

    @dbus_property(access=READ)
    def Trusted(self) -> "b":
        return False

    @dbus_property(access=READ)
    def Blocked(self) -> "b":
        return False

    @dbus_property(access=READ)
    def LegacyPairing(self) -> "b":
        return False

    @dbus_property(access=READ)
    def Connected(self) -> "b":
        return self.dev.connected

    @dbus_property(access=READ)
    def ServicesResolved(self) -> "b":
        return self.dev.services_resolved

    @dbus_property(access=READ)
    def UUIDs(self) -> "as":
        return self.dev.uuids

    @dbus_property(access=READ)
    def RSSI(self) -> "n":
        return self.dev.rssi

    @dbus_property(access=READ)
    def ServiceData(self) -> "a{sv}":
        return {uuid: Variant("ay", data) for uuid, data in self.dev.service_data.items()}

    @dbus_property(access=READ)
    def ManufacturerData(self) -> "a{qv}":
        return {company: Variant("ay", data) for company, data in self.dev.manufacturer_data.items()}

    def advertised(self) -> None:
        """What bluetoothd does on each advertisement heard: RSSI and the data as PropertiesChanged."""
        changed = {"RSSI": self.dev.rssi}
        if self.dev.service_data:
            changed["ServiceData"] = {u: Variant("ay", d) for u, d in self.dev.service_data.items()}
        if self.dev.manufacturer_data:
            changed["ManufacturerData"] = {c: Variant("ay", d) for c, d in self.dev.manufacturer_data.items()}
        self.emit_properties_changed(changed)


class GattService1(ServiceInterface):
    def __init__(self, uuid: str, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self.uuid, self.device_path = uuid, device_path

    @dbus_property(access=READ)
    def UUID(self) -> "s":
        return self.uuid

    @dbus_property(access=READ)
    def Primary(self) -> "b":
        return True

    @dbus_property(access=READ)
    def Device(self) -> "o":
        return self.device_path

    @dbus_property(access=READ)
    def Includes(self) -> "ao":
        return []


class GattCharacteristic1(ServiceInterface):
    """A characteristic; reads, writes and notifications go to ``char`` (fake_bluez.Characteristic)."""

    def __init__(self, sim, dev, char, service_path: str) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.sim, self.dev, self.char, self.service_path = sim, dev, char, service_path
        self.notifying = False

    def _check_connected(self) -> None:
        if not self.dev.connected:
            raise Failed("Not connected", "org.bluez.Error.NotConnected")

    @dbus_method()
    def ReadValue(self, options: "a{sv}") -> "ay":
        self._check_connected()
        if "read" not in self.char.flags:
            raise Failed("Read not permitted", "org.bluez.Error.NotPermitted")
        return self.char.value

    @dbus_method()
    def WriteValue(self, value: "ay", options: "a{sv}"):
        self._check_connected()
        if "write" not in self.char.flags and "write-without-response" not in self.char.flags:
            raise Failed("Write not permitted", "org.bluez.Error.NotPermitted")
        self.sim.written(self.dev, self.char, bytes(value))

    @dbus_method()
    def StartNotify(self):
        self._check_connected()
        if "notify" not in self.char.flags:
            raise Failed("Operation is not supported", "org.bluez.Error.NotSupported")
        self.notifying = True
        self.emit_properties_changed({"Notifying": True})

    @dbus_method()
    def StopNotify(self):
        self.notifying = False
        self.emit_properties_changed({"Notifying": False})

    def notify(self) -> None:
        if self.notifying:
            self.emit_properties_changed({"Value": self.char.value})

    @dbus_property(access=READ)
    def UUID(self) -> "s":
        return self.char.uuid

    @dbus_property(access=READ)
    def Service(self) -> "o":
        return self.service_path

    @dbus_property(access=READ)
    def Value(self) -> "ay":
        return self.char.value

    @dbus_property(access=READ)
    def Notifying(self) -> "b":
        return self.notifying

    @dbus_property(access=READ)
    def Flags(self) -> "as":
        return list(self.char.flags)

    @dbus_property(access=READ)
    def MTU(self) -> "q":
        return 23
