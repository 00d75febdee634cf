"""The fake BlueZ against bleak's real BlueZ backend (no hub): if bleak scans, connects, reads, writes
and gets notifications through it, the hub's BLE driver meets what it would meet on a Pi.

The advertisements' payloads are checked with the parsers the hub uses (bthome-ble, xiaomi-ble), as
bleak hands them over: bytes built from the specifications decode to the values the test sent.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakError
from bthome_ble import BTHomeBluetoothDeviceData
from home_assistant_bluetooth import BluetoothServiceInfoBleak
from xiaomi_ble import XiaomiBluetoothDeviceData

from hil_ble import DEFAULT_BIND_KEY, LBS_BUTTON, LBS_LED, LBS_SERVICE, SIMULATORS, fake_bluez  # noqa: F401


@pytest.fixture
def bus(monkeypatch):
    """Points bleak in this process at a fake: ``bus(fake)``."""
    def use(fake):
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", fake.bus_address)
        return fake
    return use


async def heard(fake, device: str, until, **advertise) -> dict:
    """Scans until ``until(advertisement)`` holds for the device's address, asking the fake to send."""
    address = fake.address(device)
    found: dict = {}
    event = asyncio.Event()

    def detected(dev, adv):
        if dev.address == address and until(adv):
            found.update(device=dev, adv=adv)
            event.set()

    async with BleakScanner(detected):
        for _ in range(20):
            await asyncio.to_thread(fake.advertise, device, **advertise)
            try:
                await asyncio.wait_for(event.wait(), 0.5)
                break
            except TimeoutError:
                continue
    assert found, f"bleak never heard {device} ({address}) as wanted"
    return found


def service_info(found: dict) -> BluetoothServiceInfoBleak:
    adv = found["adv"]
    return BluetoothServiceInfoBleak(
        name=adv.local_name or found["device"].address, address=found["device"].address, rssi=adv.rssi,
        manufacturer_data=adv.manufacturer_data, service_data=adv.service_data,
        service_uuids=adv.service_uuids, source="hci0", device=found["device"], advertisement=adv,
        connectable=False, time=time.monotonic(), tx_power=adv.tx_power)


def values(update) -> dict:
    return {key.key: value.native_value for key, value in update.entity_values.items()}


def test_scanner_hears_bthome_and_xiaomi_with_rssi_and_service_data(fake_bluez, bus):
    fake = bus(fake_bluez({"kitchen": "bthome_thermometer", "bedroom": "xiaomi_lywsdcgq"}))

    async def scenario():
        kitchen = await heard(fake, "kitchen", lambda a: a.rssi == -71,
                              values={"temperature": 23.75, "humidity": 51.5, "rssi": -71})
        bedroom = await heard(fake, "bedroom", lambda a: a.rssi == -80,
                              values={"temperature": -4.5, "humidity": 63.0, "rssi": -80})
        return kitchen, bedroom

    kitchen, bedroom = asyncio.run(scenario())
    assert "0000fcd2-0000-1000-8000-00805f9b34fb" in kitchen["adv"].service_data
    parsed = values(BTHomeBluetoothDeviceData().update(service_info(kitchen)))
    assert parsed["temperature"] == 23.75 and parsed["humidity"] == 51.5 and parsed["battery"] == 97
    assert parsed["signal_strength"] == -71
    parsed = values(XiaomiBluetoothDeviceData().update(service_info(bedroom)))
    assert parsed["temperature"] == -4.5 and parsed["humidity"] == 63.0


def test_a_bthome_button_press_is_an_event_in_a_trigger_based_advertisement(fake_bluez, bus):
    fake = bus(fake_bluez({"hall": "bthome_button"}, interval=0))

    async def scenario():
        address, pressed = fake.address("hall"), asyncio.Event()
        found: dict = {}

        def detected(dev, adv):
            frame = adv.service_data.get("0000fcd2-0000-1000-8000-00805f9b34fb", b"")
            if dev.address == address and b"\x3a" in frame[1:]:
                found.update(device=dev, adv=adv)
                pressed.set()

        async with BleakScanner(detected):
            await asyncio.sleep(0.1)
            await asyncio.to_thread(fake.call, "press", device="hall", event="double_press")
            await asyncio.wait_for(pressed.wait(), 5)
        return found

    found = asyncio.run(scenario())
    assert found["adv"].service_data["0000fcd2-0000-1000-8000-00805f9b34fb"][0] & 0x04  # trigger-based
    update = BTHomeBluetoothDeviceData().update(service_info(found))
    assert [e.event_type for e in update.events.values()] == ["double_press"]


def test_encrypted_bthome_decodes_with_its_bind_key_only(fake_bluez, bus):
    fake = bus(fake_bluez({"shed": "bthome_encrypted"}))
    found = asyncio.run(heard(fake, "shed", lambda a: a.rssi == -65, values={"temperature": 7.5, "rssi": -65}))
    right = BTHomeBluetoothDeviceData(bindkey=bytes.fromhex(DEFAULT_BIND_KEY))
    assert values(right.update(service_info(found)))["temperature"] == 7.5
    assert right.bindkey_verified
    wrong = BTHomeBluetoothDeviceData(bindkey=bytes(16))
    assert "temperature" not in values(wrong.update(service_info(found)))
    assert not wrong.bindkey_verified


def test_client_switches_the_led_and_gets_the_button_notification(fake_bluez, bus):
    fake = bus(fake_bluez({"desk": "lbs"}))

    async def scenario():
        notified: list[bytes] = []
        async with BleakClient(fake.address("desk"), timeout=10) as client:
            assert LBS_SERVICE in [s.uuid for s in client.services]
            assert await client.read_gatt_char(LBS_LED) == b"\x00"
            await client.write_gatt_char(LBS_LED, b"\x01", response=True)
            led_after_on = await asyncio.to_thread(fake.get, "desk", "led")
            await client.start_notify(LBS_BUTTON, lambda _c, data: notified.append(bytes(data)))
            await asyncio.to_thread(fake.call, "press", device="desk")
            for _ in range(50):
                if len(notified) >= 2:
                    break
                await asyncio.sleep(0.05)
            await client.write_gatt_char(LBS_LED, b"\x00", response=True)
        return led_after_on, notified

    led_after_on, notified = asyncio.run(scenario())
    assert led_after_on["int"] == 1
    assert fake.get("desk", "led")["int"] == 0
    assert notified == [b"\x01", b"\x00"]  # pressed, then released
    assert fake.stats()["writes"] == 2


def test_vanishing_mid_connection_fires_the_disconnected_callback_and_it_can_reconnect(fake_bluez, bus):
    fake = bus(fake_bluez({"desk": "lbs"}, interval=0.2))

    async def scenario():
        gone = asyncio.Event()
        client = BleakClient(fake.address("desk"), disconnected_callback=lambda _c: gone.set(), timeout=10)
        await client.connect()
        await asyncio.to_thread(fake.call, "vanish", device="desk")
        await asyncio.wait_for(gone.wait(), 5)
        assert not client.is_connected
        with pytest.raises(BleakError):  # out of range: nothing to connect to
            await BleakClient(fake.address("desk"), timeout=1).connect()
        await asyncio.to_thread(fake.call, "return", device="desk")
        async with BleakClient(fake.address("desk"), timeout=10) as again:
            return await again.read_gatt_char(LBS_BUTTON)

    assert asyncio.run(scenario()) == b"\x00"
    assert fake.stats()["connections"] == 2


def test_a_removed_adapter_is_bluetooth_not_available_until_it_returns(fake_bluez, bus):
    fake = bus(fake_bluez({"kitchen": "bthome_thermometer"}))
    fake.call("adapter", powered=False)

    async def scan_once():
        async with BleakScanner():
            pass

    with pytest.raises(BleakBluetoothNotAvailableError):
        asyncio.run(scan_once())
    fake.call("adapter", powered=True)
    found = asyncio.run(heard(fake, "kitchen", lambda a: a.rssi == -50, values={"rssi": -50}))
    assert found["device"].address == fake.address("kitchen")


def test_an_adapter_switched_off_drops_connections_and_refuses_scans_until_on(fake_bluez, bus):
    fake = bus(fake_bluez({"desk": "lbs"}, interval=0.2))

    async def scenario():
        gone = asyncio.Event()
        client = BleakClient(fake.address("desk"), disconnected_callback=lambda _c: gone.set(), timeout=10)
        await client.connect()
        await asyncio.to_thread(fake.call, "adapter", powered=False, keep=True)  # btmgmt power off
        await asyncio.wait_for(gone.wait(), 5)
        with pytest.raises(BleakError, match="NotReady|No powered"):  # as bleak learns of it first or not
            async with BleakScanner():
                pass
        await asyncio.to_thread(fake.call, "adapter", powered=True, keep=True)
        async with BleakClient(fake.address("desk"), timeout=10) as again:
            return await again.read_gatt_char(LBS_LED)

    assert asyncio.run(scenario()) == b"\x00"


def test_control_errors_name_what_was_wrong(fake_bluez):
    fake = fake_bluez({"kitchen": "bthome_thermometer", "desk": "lbs"})
    with pytest.raises(AssertionError, match="no device 'attic'"):
        fake.call("advertise", device="attic")
    with pytest.raises(AssertionError, match="unknown op 'explode'"):
        fake.call("explode")
    with pytest.raises(AssertionError, match="has no characteristic 'fan'"):
        fake.get("desk", "fan")
    with pytest.raises(AssertionError, match="has no button"):
        fake.call("press", device="kitchen")
    with pytest.raises(AssertionError, match="powered=true"):
        fake.call("adapter", powered="maybe")
    # nobody scans: an advertisement is not heard, and the stats say so
    assert fake.advertise("kitchen", count=3) == 0
    assert fake.stats()["dropped_not_discovering"] >= 3
    cli = subprocess.run([sys.executable, str(SIMULATORS / "ble_control.py"), f"127.0.0.1:{fake.control_port}",
                          "get", "device=desk", "characteristic=led"], capture_output=True, text=True, timeout=20)
    assert cli.returncode == 0 and '"value": "00"' in cli.stdout


def test_bad_command_lines_are_refused_with_the_reason():
    bad = subprocess.run([sys.executable, str(SIMULATORS / "fake_bluez.py"), "--control", "127.0.0.1:1",
                          "--device", "kitchen=toaster"], capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2 and "KIND one of" in bad.stderr


def test_discovery_sessions_are_per_client_as_in_bluetoothd(fake_bluez):
    """One client's StopDiscovery does not end another's scan; a client's second StartDiscovery is
    refused (org.bluez.Error.InProgress), as bluetoothd does: a driver that runs a second scanner in
    the same process meets that error here, not first on a Pi."""
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    fake = fake_bluez({"kitchen": "bthome_thermometer"}, interval=0)

    def call(bus, member):
        return bus.call(Message(destination="org.bluez", path="/org/bluez/hci0",
                                interface="org.bluez.Adapter1", member=member))

    async def scenario():
        one = await MessageBus(bus_address=fake.bus_address).connect()
        two = await MessageBus(bus_address=fake.bus_address).connect()
        try:
            assert (await call(one, "StartDiscovery")).message_type == MessageType.METHOD_RETURN
            again = await call(one, "StartDiscovery")
            assert again.error_name == "org.bluez.Error.InProgress"
            assert (await call(two, "StartDiscovery")).message_type == MessageType.METHOD_RETURN
            assert (await call(two, "StopDiscovery")).message_type == MessageType.METHOD_RETURN
            heard_while_one_scans = await asyncio.to_thread(fake.advertise, "kitchen")
            refused = await call(two, "StopDiscovery")
            assert refused.error_name == "org.bluez.Error.Failed" and refused.body == ["No discovery started"]
        finally:
            two.disconnect()
            one.disconnect()  # leaving the bus ends its session
        return heard_while_one_scans

    assert asyncio.run(scenario()) == 1
    for _ in range(50):
        if fake.advertise("kitchen") == 0:
            break
        time.sleep(0.05)
    assert fake.advertise("kitchen") == 0  # nobody scans any more
