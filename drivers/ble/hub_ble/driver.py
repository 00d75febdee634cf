"""The driver: the scanner's advertisements to the devices, the devices' loops, the discovered table.

The scanner runs for as long as the plugin does. If it cannot start (no adapter, BlueZ not running,
the adapter unplugged) every entity is unavailable, ``hub plugins`` says why (the plugin's note), and
it is started again with a back-off: the hub itself never stops for a missing radio.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub_ble.config import BleConfig, BleDevice
from hub_ble.gatt import GattDevice
from hub_ble.parsing import Decoder, recognise, service_info
from hub_ble.passive import PassiveDevice

if TYPE_CHECKING:
    from hub.context import PluginContext

log = logging.getLogger("hub.plugins.ble")

DEVICES_FILE = "devices.json"
#: Seconds between checks that the adapter is still there.
ADAPTER_CHECK = 1.0
#: Service data UUIDs of the advertisements the parsers read, for BlueZ's passive monitors.
BTHOME_UUID16 = b"\xd2\xfc"
XIAOMI_UUID16 = b"\x95\xfe"


class Ble:
    def __init__(self, hub: "PluginContext", config: BleConfig) -> None:
        self.hub = hub
        self.config = config
        self.devices: dict[str, PassiveDevice | GattDevice] = {}
        #: Every address heard since start: what ``hub ble scan`` shows.
        self.discovered: dict[str, dict[str, Any]] = {}
        self._ble_devices: dict[str, Any] = {}  # address -> bleak BLEDevice, for connecting
        self._decoders: dict[str, Decoder | None] = {}  # unconfigured addresses' parsers
        self._tasks: dict[str, asyncio.Task] = {}
        self.scanning: str | None = None  # "active" / "passive" while the scanner runs
        self.adapter_error: str | None = None
        self.advertisements = 0
        self._passive_ok: bool | None = None
        self._running = False
        self._waiters: dict[str, asyncio.Future] = {}  # GATT devices waiting to be heard

    # -- devices -------------------------------------------------------------------------------
    @property
    def stored_path(self) -> Path:
        return self.hub.data_dir / DEVICES_FILE

    def stored(self) -> list[BleDevice]:
        """Devices added through the API: kept in the plugin's data directory (not the database,
        since a bind key is a secret), readable by the hub's user only."""
        try:
            rows = json.loads(self.stored_path.read_text())
        except FileNotFoundError:
            return []
        out = []
        for row in rows:
            try:
                out.append(BleDevice.model_validate(row))
            except ValueError as exc:
                log.error("ble: %s: a stored device is not valid, skipped: %s", self.stored_path,
                          str(exc).splitlines()[0])
        return out

    def _write_stored(self, devices: list[BleDevice]) -> None:
        rows = [d.model_dump(mode="json", exclude_defaults=True) | {"address": d.address, "type": d.type} for d in devices]
        for row, d in zip(rows, devices):
            if d.bind_key is not None:
                row["bind_key"] = d.bind_key.get_secret_value()
        tmp = self.stored_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(rows, out, indent=2)
        os.replace(tmp, self.stored_path)

    def setup(self) -> None:
        for config in [*self.config.devices, *self.stored()]:
            if config.address not in self.devices:
                self._add(config)

    def _add(self, config: BleDevice) -> PassiveDevice | GattDevice:
        if config.passive:
            device: PassiveDevice | GattDevice = PassiveDevice(self.hub, config)
        else:
            device = GattDevice(self.hub, config, self.find, self.config.reconnect_max)
        device.start()
        self.devices[config.address] = device
        self._decoders.pop(config.address, None)
        return device

    def add(self, config: BleDevice) -> PassiveDevice | GattDevice:
        """A device added while the hub runs (``POST devices``): stored, then started at once."""
        if config.address in self.devices:
            raise KeyError(config.address)
        self._write_stored([*self.stored(), config])
        device = self._add(config)
        if isinstance(device, GattDevice) and self._running:
            self._spawn(device)
        return device

    def _spawn(self, device: GattDevice) -> None:
        self._tasks[device.address] = asyncio.get_running_loop().create_task(device.run(), name=f"ble {device.address}")

    def gatt_for(self, entity_id: str) -> tuple[GattDevice, str] | None:
        for device in self.devices.values():
            if isinstance(device, GattDevice):
                key = device.key_of(entity_id)
                if key is not None:
                    return device, key
        return None

    # -- running ---------------------------------------------------------------------------------
    async def run(self) -> None:
        self._running = True
        for device in self.devices.values():
            if isinstance(device, GattDevice):
                self._spawn(device)
        watcher = asyncio.get_running_loop().create_task(self._availability())
        try:
            await self._scan_forever()
        finally:
            self._running = False
            watcher.cancel()
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(watcher, *self._tasks.values(), return_exceptions=True)
            self._tasks.clear()

    async def _scan_forever(self) -> None:
        delay = 1.0
        while True:
            try:
                scanner = await self._start_scanner()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - no adapter, no BlueZ: the hub stays up and waits
                self._adapter_down(f"adapter {self.config.adapter}: {_reason(exc)}", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            delay = 1.0
            self.adapter_error = None
            self.hub.note(None)
            log.info("ble: scanning on %s (%s), %d devices configured", self.config.adapter, self.scanning,
                     len(self.devices))
            try:
                reason, down = await self._adapter_lost()
            finally:
                self.scanning = None
                try:
                    await scanner.stop()
                except Exception:  # noqa: BLE001 - the adapter may be gone already
                    pass
            if down:
                self._adapter_down(f"adapter {self.config.adapter}: {reason}", delay)
                await asyncio.sleep(delay)
            else:
                log.info("ble: %s: %s; starting the scan again", self.config.adapter, reason)

    async def _adapter_lost(self) -> tuple[str, bool]:
        """Returns once the scan has ended without us, with why and whether the adapter is down: it
        was removed (unplugged), switched off (``btmgmt power off``, rfkill), or it is on but not
        discovering any more (bluetoothd restarted, or the adapter was replugged between two checks:
        bluetoothd then has no discovery session of ours). bleak's scanner says none of this, it only
        stops hearing anything; its manager's copy of BlueZ's objects does (bleak <4 is pinned)."""
        from bleak.backends.bluezdbus.manager import get_global_bluez_manager

        path = f"/org/bluez/{self.config.adapter}"
        idle = 0
        while True:
            await asyncio.sleep(ADAPTER_CHECK)
            manager = await get_global_bluez_manager()
            adapter = manager._properties.get(path, {}).get("org.bluez.Adapter1")  # noqa: SLF001
            if adapter is None:
                return "removed from BlueZ (unplugged)", True
            if not adapter.get("Powered", True):
                return "switched off", True
            # Discovering turns true a moment after StartDiscovery answers: false twice is a lost scan.
            # A passive scan (an advertisement monitor) does not set it.
            idle = idle + 1 if self.scanning == "active" and not adapter.get("Discovering", True) else 0
            if idle >= 2:
                return "not discovering any more", False

    def _adapter_down(self, reason: str, delay: float) -> None:
        first = self.adapter_error is None
        self.adapter_error = reason
        self.hub.note(f"{reason} (retrying)")
        for device in self.devices.values():
            if isinstance(device, PassiveDevice):
                device.set_unavailable()
        (log.warning if first else log.debug)("ble: %s; BLE entities unavailable, retrying in %g s", reason, delay)

    async def _start_scanner(self):
        from bleak import BleakScanner

        bluez: dict[str, Any] = {"adapter": self.config.adapter}
        passive_error: Exception | None = None
        if self.config.scanning == "passive" or (self.config.scanning == "auto" and self._passive_ok is not False):
            from bleak.assigned_numbers import AdvertisementDataType
            from bleak.backends.bluezdbus.advertisement_monitor import OrPattern

            patterns = [OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, uuid)
                        for uuid in (BTHOME_UUID16, XIAOMI_UUID16)]
            scanner = BleakScanner(self._detected, scanning_mode="passive", bluez={**bluez, "or_patterns": patterns})
            try:
                await scanner.start()
                self.scanning, self._passive_ok = "passive", True
                return scanner
            except Exception as exc:  # noqa: BLE001
                if self.config.scanning == "passive":
                    raise
                passive_error = exc
        scanner = BleakScanner(self._detected, scanning_mode="active", bluez=bluez)
        await scanner.start()
        self.scanning = "active"
        if passive_error is not None:
            # BlueZ offers advertisement monitors only with its experimental features on (-E).
            self._passive_ok = False
            log.info("ble: passive scanning not available on %s (%s); scanning actively",
                     self.config.adapter, passive_error)
        return scanner

    async def find(self, address: str, timeout: float):
        """The bleak device to connect to, as the scanner heard it; None if it is not heard within
        ``timeout``. The running scan is waited on, never a second one started beside it: bleak sends
        every scanner's StartDiscovery over one D-Bus connection, and bluetoothd refuses a client's
        second one (InProgress), so the race could fail the main scanner. Only beside a passive scan
        (an advertisement monitor, not a discovery) is a short active scan started for it."""
        # Used once: if connecting to it fails the device may have gone, and a fresh sighting says so.
        device = self._ble_devices.pop(address, None)
        if device is not None:
            return device
        if self.adapter_error is not None:
            raise ConnectionError(self.adapter_error)
        if self.scanning == "passive":
            from bleak import BleakScanner

            return await BleakScanner.find_device_by_address(address, timeout=timeout,
                                                              bluez={"adapter": self.config.adapter})
        waiter = self._waiters.get(address)
        if waiter is None or waiter.done():
            waiter = self._waiters[address] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return None
        finally:
            if self._waiters.get(address) is waiter and waiter.done():
                del self._waiters[address]

    def _detected(self, device, adv) -> None:
        self.advertisements += 1
        address = device.address.upper()
        now = self.hub.now()
        waiter = self._waiters.pop(address, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(device)  # a GATT device waiting to be heard, connected from this sighting
        else:
            self._ble_devices[address] = device
        info = service_info(device, adv, self.config.adapter)
        seen = self.discovered.get(address)
        if seen is None:
            seen = self.discovered[address] = {"address": address, "parser": None, "values": {}, "configured": False}
        seen.update(name=info.name if info.name != address else seen.get("name"), rssi=adv.rssi, last_seen=now)
        configured = self.devices.get(address)
        seen["configured"] = configured is not None
        if isinstance(configured, PassiveDevice):
            reading = configured.handle(info, now)
            if reading is not None:
                seen["parser"], seen["values"] = reading.parser, reading.as_json()
            return
        if configured is not None:
            return
        if address not in self._decoders and adv.service_data:
            # Judged once per address, on its first advertisement with service data (both parsers'
            # formats are service data); a name-only sighting does not settle it.
            kind = recognise(info)
            self._decoders[address] = Decoder(kind) if kind else None
            if kind:
                seen["parser"] = kind
                log.info("ble: heard a %s device %s (%s), not configured", kind, address, seen.get("name"))
                self.hub.fire("ble_device_discovered", {"address": address, "name": seen.get("name"), "parser": kind})
        decoder = self._decoders.get(address)
        if decoder is not None:
            reading = decoder.decode(info)
            if reading is not None:
                seen["values"] = reading.as_json()

    async def _availability(self) -> None:
        period = min(self.config.availability / 4, 30.0)
        while True:
            await self.hub.scheduler.sleep_until(self.hub.now() + period)  # the hub's clock: tests drive it
            self.check_availability()

    def check_availability(self) -> None:
        now = self.hub.now()
        for device in self.devices.values():
            if isinstance(device, PassiveDevice):
                device.check(now, self.config.availability)


def _reason(exc: Exception) -> str:
    """Why the scanner could not start, in a user's terms."""
    if isinstance(exc, OSError):
        bus = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
        return f"BlueZ is not reachable: no system D-Bus at {bus} ({type(exc).__name__}: {exc.strerror or exc})"
    return f"{type(exc).__name__}: {exc}"
