"""The driver's own decisions, in-process and on the hub's clock: which advertisements become which
entities and events, when a sensor goes unavailable and comes back, what the API accepts, how a
generic GATT value is decoded. Advertisements are handed to the scanner callback as bleak would."""

from __future__ import annotations

import asyncio
import stat

import httpx
import pytest

import hub_ble
from ble_testing import (BIND_KEY, BTHOME_PRESS, BTHOME_THERMOMETER, BTHOME_UUID, XIAOMI_UUID, advertisement,
                         mibeacon_lywsdcgq)
from hub.core.events import CustomEvent
from hub.runtime import Hub
from hub.testing import FakeScheduler
from hub_ble.config import Decode, GattEntity
from hub_ble.gatt import decode

KITCHEN = "A4:C1:38:00:00:01"
DOOR = "58:2D:34:00:00:02"


class NoRun:
    """The driver's hooks without its scanner: the test is the adapter."""

    hub_config_schema = staticmethod(hub_ble.hub_config_schema)
    hub_setup = staticmethod(hub_ble.hub_setup)
    hub_api_routes = staticmethod(hub_ble.hub_api_routes)


async def started(tmp_path, availability: float = 600):
    (tmp_path / "configuration.yaml").write_text(
        f"hub: {{}}\nble:\n  availability: {availability}\n  devices:\n"
        f'    - {{address: "{KITCHEN}", name: Kitchen, type: bthome}}\n')
    clock = FakeScheduler()
    hub = Hub(tmp_path, entrypoints=False, scheduler=clock)
    hub.plugins.register("ble", NoRun())
    await hub.start()
    ble = hub.contexts["ble"].data["ble"]
    events: list[CustomEvent] = []
    hub.bus.subscribe("*", lambda e: isinstance(e, CustomEvent) and events.append(e))
    return hub, ble, clock, events


async def test_a_configured_sensor_gains_entities_and_goes_unavailable_after_silence(tmp_path):
    hub, ble, clock, events = await started(tmp_path, availability=600)
    try:
        assert hub.states.get("sensor.kitchen_signal_strength").available is False  # known before it is heard
        ble._detected(*advertisement(KITCHEN, {BTHOME_UUID: BTHOME_THERMOMETER}, rssi=-71))
        temperature = hub.states.get("sensor.kitchen_temperature")
        assert (temperature.value, temperature.attributes["unit"], temperature.attributes["device_class"]) == (
            25.06, "°C", "temperature")
        assert hub.states.get("sensor.kitchen_signal_strength").value == -71
        assert hub.states.get("sensor.kitchen_battery").value == 97

        task = asyncio.get_running_loop().create_task(ble._availability())
        await clock.advance(590)
        assert hub.states.get("sensor.kitchen_temperature").available
        await clock.advance(60)
        assert not hub.states.get("sensor.kitchen_temperature").available
        assert not hub.states.get("sensor.kitchen_battery").available
        ble._detected(*advertisement(KITCHEN, {BTHOME_UUID: BTHOME_THERMOMETER}))
        assert hub.states.get("sensor.kitchen_temperature").available
        task.cancel()
    finally:
        await hub.stop()


async def test_a_recognised_stranger_is_discovered_once_and_a_button_is_an_event(tmp_path):
    hub, ble, clock, events = await started(tmp_path)
    try:
        for temperature in (21.0, 21.5):
            ble._detected(*advertisement(DOOR, {XIAOMI_UUID: mibeacon_lywsdcgq(DOOR, temperature, 40.0)}, name="MJ_HT_V1"))
        ble._detected(*advertisement("11:22:33:44:55:66", {}, name="a phone"))
        assert [(e.event_type, e.payload) for e in events] == [
            ("ble_device_discovered", {"address": DOOR, "name": "MJ_HT_V1", "parser": "xiaomi"})]
        door = ble.discovered[DOOR]
        assert (door["parser"], door["configured"], door["values"]["temperature"]) == ("xiaomi", False, 21.5)
        assert ble.discovered["11:22:33:44:55:66"]["parser"] is None
        assert all(s.entity_id.startswith("sensor.kitchen") for s in hub.states)  # offered, not added

        ble._detected(*advertisement(KITCHEN, {BTHOME_UUID: BTHOME_PRESS}))
        assert (events[-1].event_type, events[-1].payload) == (
            "ble_button", {"address": KITCHEN, "device": "Kitchen", "key": "button", "event_type": "press",
                           "properties": {}})
    finally:
        await hub.stop()


async def test_the_api_adds_a_device_keeps_its_key_private_and_refuses_bad_input(tmp_path):
    hub, ble, clock, events = await started(tmp_path)
    try:
        from hub.api.app import create_app

        app = create_app(hub)
        token = hub.store.create_token("test")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
            url = "/api/plugins/ble/devices"
            bad = await client.post(url, json={"address": DOOR, "type": "bthome", "bind_key": BIND_KEY[:30]}, headers=headers)
            assert bad.status_code == 422 and "bind_key" in bad.text and BIND_KEY[:30] not in bad.text
            bad = await client.post(url, json={"address": "nope", "type": "xiaomi"}, headers=headers)
            assert bad.status_code == 422 and "Bluetooth address" in bad.text
            ok = await client.post(url, json={"address": DOOR.lower(), "type": "bthome", "name": "Door",
                                              "bind_key": BIND_KEY}, headers=headers)
            assert ok.status_code == 201, ok.text
            assert ok.json()["encrypted"] is True and BIND_KEY not in ok.text
            again = await client.post(url, json={"address": DOOR, "type": "xiaomi"}, headers=headers)
            assert again.status_code == 409 and "already" in again.text
            listed = (await client.get(url, headers=headers)).json()
            assert [d["name"] for d in listed["devices"]] == ["Kitchen", "Door"] and BIND_KEY not in str(listed)
        stored = ble.stored_path
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert [d.address for d in ble.stored()] == [DOOR]
    finally:
        await hub.stop()


@pytest.mark.parametrize(("entity", "data", "expected"), [
    (dict(capability="switch", commands={"turn_on": "01", "turn_off": "00"}), b"\x01", "on"),
    (dict(capability="binary_sensor"), b"\x00\xff", "off"),
    (dict(capability="sensor", decode=Decode(format="<h", scale=0.01)), (-1234).to_bytes(2, "little", signed=True), -12.34),
    (dict(capability="sensor", decode=Decode(format=">I")), b"\x00\x01\x00\x00\x99", 65536),
])
def test_a_generic_characteristic_is_decoded_by_its_struct_format(entity, data, expected):
    spec = GattEntity(key="x", service="ffe0", characteristic="ffe1", **entity)
    assert decode(spec, data) == expected


def test_a_value_too_short_for_its_format_is_refused_by_name():
    spec = GattEntity(key="power", capability="sensor", service="ffe0", characteristic="ffe1", decode=Decode(format="<I"))
    with pytest.raises(ValueError, match="power: 2 bytes, the format '<I' needs 4"):
        decode(spec, b"\x01\x02")
