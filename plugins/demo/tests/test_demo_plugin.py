"""The demo plugin inside a real hub: what a newcomer sees and does on a fresh ``hub run``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

import hub_demo
from hub.core.commands import CommandRefused, InvalidArguments
from hub.core.events import StateChanged
from hub.runtime import Hub

FAST = "update_interval: 0.02, time_scale: 600, seed: 1"


async def start_hub(data_dir: Path, options: str = FAST) -> Hub:
    (data_dir / "configuration.yaml").write_text(f"demo: {{{options}}}\n", encoding="utf-8")
    hub = Hub(data_dir, entrypoints=False)
    hub.plugins.register("demo", hub_demo)
    await hub.start()
    return hub


@pytest.fixture
async def hub(tmp_path: Path):
    hub = await start_hub(tmp_path)
    assert hub.plugins.info["demo"].status == "running", hub.plugins.info["demo"].error
    yield hub
    await hub.stop()


def value(hub: Hub, entity_id: str):
    state = hub.states.get(entity_id)
    assert state is not None, f"{entity_id} does not exist"
    return state.value


def attr(hub: Hub, entity_id: str, name: str):
    return hub.states.get(entity_id).attributes.get(name)


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll instead of sleeping a fixed time: as fast as the hub is, never flaky on a slow one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def record(hub: Hub, entity_id: str) -> list:
    values: list = []
    hub.bus.subscribe(StateChanged, lambda e: values.append(e.new_state.value), entity_id=entity_id)
    return values


ENTITIES = {
    "switch.smart_plug",
    "sensor.smart_plug_power",
    "meter.smart_plug_energy",
    "climate.thermostat",
    "sensor.room_temperature",
    "sensor.outside_temperature",
    "lock.front_door",
    "light.living_room",
    "binary_sensor.hallway_motion",
    "number.water_heater_set_point",
    "select.water_heater_mode",
}


async def test_the_virtual_home_is_there_and_available(hub: Hub):
    demo_entities = {e.entity_id for e in hub.entities.for_platform("demo")}
    assert demo_entities == ENTITIES
    for entity_id in ENTITIES:
        state = hub.states.get(entity_id)
        assert state.available and state.value is not None, state
    assert value(hub, "switch.smart_plug") == "on"
    assert 90 <= value(hub, "sensor.smart_plug_power") <= 140
    assert attr(hub, "sensor.smart_plug_power", "unit") == "W"
    assert attr(hub, "meter.smart_plug_energy", "unit") == "kWh"
    assert attr(hub, "sensor.room_temperature", "unit") == "°C"
    assert value(hub, "lock.front_door") == "locked"
    assert value(hub, "climate.thermostat") == "heat"
    climate = hub.states.get("climate.thermostat").attributes
    assert climate["min_temp"] == 5 and climate["max_temp"] == 35
    assert climate["hvac_action"] in ("heating", "idle")
    assert climate["current_temperature"] == value(hub, "sensor.room_temperature")
    assert attr(hub, "binary_sensor.hallway_motion", "device_class") == "motion"
    plug = hub.devices.get("demo:smart_plug")
    assert plug.manufacturer == "Ruff Demo" and plug.model


async def test_light_brightness_is_set_remembered_and_toggled(hub: Hub):
    light = "light.living_room"
    await hub.commands.call(light, "turn_on", {"brightness": 128, "rgb_color": [255, 0, 0]})
    assert value(hub, light) == "on"
    assert attr(hub, light, "brightness") == 128
    assert list(attr(hub, light, "rgb_color")) == [255, 0, 0]
    await hub.commands.call(light, "turn_off")
    assert value(hub, light) == "off"
    await hub.commands.call(light, "turn_on")
    assert attr(hub, light, "brightness") == 128  # the last brightness, not full
    await hub.commands.call(light, "toggle")
    assert value(hub, light) == "off"
    await hub.commands.call(light, "toggle")
    assert value(hub, light) == "on" and attr(hub, light, "brightness") == 128
    await hub.commands.call(light, "turn_on", {"brightness": 0})
    assert value(hub, light) == "off"


async def test_invalid_arguments_are_refused_by_the_hub_before_the_plugin(hub: Hub):
    light = "light.living_room"
    before = hub.states.get(light)
    with pytest.raises(InvalidArguments, match="brightness"):
        await hub.commands.call(light, "turn_on", {"brightness": 300})
    with pytest.raises(InvalidArguments, match="brigthness"):
        await hub.commands.call(light, "turn_on", {"brigthness": 100})
    assert hub.states.get(light) is before


async def test_light_refuses_what_it_cannot_do(hub: Hub):
    with pytest.raises(InvalidArguments, match="rgb_color.0"):  # the hub's model checks the range
        await hub.commands.call("light.living_room", "turn_on", {"rgb_color": [300, 0, 0]})
    assert value(hub, "light.living_room") == "off"


async def test_a_colour_temperature_reaches_the_rgb_only_light_as_rgb(hub: Hub):
    """The light says it supports rgb only (supported_color_modes), so the gate sends a colour
    temperature as its RGB, as Home Assistant does; the light never sees what it cannot do."""
    assert hub.states.get("light.living_room").attributes["supported_color_modes"] == ["rgb"]
    await hub.commands.call("light.living_room", "turn_on", {"color_temp_kelvin": 6600})
    assert hub.states.get("light.living_room").attributes["rgb_color"] == [255, 255, 255]


async def test_lock_moves_through_unlocking_to_unlocked_and_back(hub: Hub):
    seen = record(hub, "lock.front_door")
    await hub.commands.call("lock.front_door", "unlock")
    assert seen == ["unlocking", "unlocked"]
    await hub.commands.call("lock.front_door", "lock")
    assert seen == ["unlocking", "unlocked", "locking", "locked"]


async def test_opening_the_door_releases_the_latch_then_it_springs_back(hub: Hub):
    await hub.commands.call("lock.front_door", "open")
    assert value(hub, "lock.front_door") == "open"
    await wait_for(lambda: value(hub, "lock.front_door") == "unlocked", what="the latch to spring back")


async def test_a_lock_command_sent_while_the_door_opens_wins(hub: Hub):
    seen = record(hub, "lock.front_door")
    await asyncio.gather(
        hub.commands.call("lock.front_door", "open"), hub.commands.call("lock.front_door", "lock")
    )
    assert seen == ["unlocking", "locking", "locked"]
    steps = record(hub, "sensor.smart_plug_power")  # noisy, so written at nearly every step
    await wait_for(lambda: len(steps) >= 3, what="a few simulation steps")
    assert value(hub, "lock.front_door") == "locked"  # the latch release of the cancelled open is not replayed


async def test_a_lock_with_a_code_refuses_a_wrong_or_missing_code(tmp_path: Path):
    hub = await start_hub(tmp_path, FAST + ", lock_code: '0123'")
    try:
        assert attr(hub, "lock.front_door", "code_required") is True
        with pytest.raises(CommandRefused, match="wrong or missing code"):
            await hub.commands.call("lock.front_door", "unlock")
        with pytest.raises(CommandRefused, match="wrong or missing code") as refused:
            await hub.commands.call("lock.front_door", "open", {"code": "9999"})
        assert "9999" not in str(refused.value) and "0123" not in str(refused.value)
        assert value(hub, "lock.front_door") == "locked"
        await hub.commands.call("lock.front_door", "unlock", {"code": "0123"})
        assert value(hub, "lock.front_door") == "unlocked"
        await hub.commands.call("lock.front_door", "lock")  # locking needs no code
        assert value(hub, "lock.front_door") == "locked"
    finally:
        await hub.stop()


async def test_thermostat_target_and_modes(hub: Hub):
    climate = "climate.thermostat"
    await hub.commands.call(climate, "set_temperature", {"temperature": 23.5})
    assert attr(hub, climate, "target_temperature") == 23.5
    await hub.commands.call(climate, "set_hvac_mode", {"hvac_mode": "cool"})
    assert value(hub, climate) == "cool"
    await hub.commands.call(climate, "turn_off")
    assert value(hub, climate) == "off" and attr(hub, climate, "hvac_action") == "off"
    await hub.commands.call(climate, "turn_on")
    assert value(hub, climate) == "cool"  # the last mode, not a default
    with pytest.raises(CommandRefused, match="not supported"):
        await hub.commands.call(climate, "set_hvac_mode", {"hvac_mode": "dry"})
    assert value(hub, climate) == "cool"


async def test_thermostat_refuses_a_target_out_of_its_range(hub: Hub):
    # Its min_temp/max_temp options are checked by the hub, naming the field, before the device.
    with pytest.raises(InvalidArguments, match="temperature: Input should be less than or equal to 35"):
        await hub.commands.call("climate.thermostat", "set_temperature", {"temperature": 40})
    with pytest.raises(InvalidArguments, match="temperature: Input should be greater than or equal to 5"):
        await hub.commands.call("climate.thermostat", "set_temperature", {"temperature": 4.9})
    assert attr(hub, "climate.thermostat", "target_temperature") == 21.0


async def test_water_heater_set_point_and_mode(hub: Hub):
    assert value(hub, "number.water_heater_set_point") == 55.0
    assert attr(hub, "number.water_heater_set_point", "min") == 40.0  # the range is shown with the state
    assert attr(hub, "number.water_heater_set_point", "unit") == "°C"
    await hub.commands.call("number.water_heater_set_point", "set_value", {"value": 60.5})
    assert value(hub, "number.water_heater_set_point") == 60.5
    with pytest.raises(InvalidArguments, match="value: Input should be less than or equal to 65"):
        await hub.commands.call("number.water_heater_set_point", "set_value", {"value": 70})
    with pytest.raises(InvalidArguments, match="multiple of 0.5"):
        await hub.commands.call("number.water_heater_set_point", "set_value", {"value": 50.2})
    assert value(hub, "number.water_heater_set_point") == 60.5

    assert value(hub, "select.water_heater_mode") == "comfort"
    assert attr(hub, "select.water_heater_mode", "options") == ["eco", "comfort", "boost", "away"]
    await hub.commands.call("select.water_heater_mode", "select_option", {"option": "eco"})
    assert value(hub, "select.water_heater_mode") == "eco"
    with pytest.raises(InvalidArguments, match="option: Input should be 'eco', 'comfort', 'boost' or 'away'"):
        await hub.commands.call("select.water_heater_mode", "select_option", {"option": "turbo"})
    await hub.commands.call("select.water_heater_mode", "select_last")
    assert value(hub, "select.water_heater_mode") == "away"
    await hub.commands.call("select.water_heater_mode", "select_next")  # cycles by default
    assert value(hub, "select.water_heater_mode") == "eco"
    await hub.commands.call("select.water_heater_mode", "select_previous", {"cycle": False})
    assert value(hub, "select.water_heater_mode") == "eco"  # already first: stays
    await hub.commands.call("select.water_heater_mode", "select_next", {"cycle": False})
    assert value(hub, "select.water_heater_mode") == "comfort"


async def test_the_room_heats_up_in_heat_mode(hub: Hub):
    start = value(hub, "sensor.room_temperature")
    await hub.commands.call("climate.thermostat", "set_temperature", {"temperature": 30})
    await hub.commands.call("climate.thermostat", "set_hvac_mode", {"hvac_mode": "heat"})
    assert attr(hub, "climate.thermostat", "hvac_action") == "heating"
    await wait_for(lambda: value(hub, "sensor.room_temperature") >= start + 1.0, what="the room to warm by 1 °C")
    assert attr(hub, "climate.thermostat", "current_temperature") == value(hub, "sensor.room_temperature")


async def test_the_room_cools_down_with_the_heating_off(hub: Hub):
    start = value(hub, "sensor.room_temperature")
    await hub.commands.call("climate.thermostat", "turn_off")
    await wait_for(lambda: value(hub, "sensor.room_temperature") <= start - 0.5, what="the room to cool by 0.5 °C")


async def test_the_plug_meters_energy_while_on_and_idles_when_off(hub: Hub):
    energy = record(hub, "meter.smart_plug_energy")
    start = value(hub, "meter.smart_plug_energy")
    await wait_for(lambda: value(hub, "meter.smart_plug_energy") >= start + 0.01, what="energy to be metered")
    assert energy == sorted(energy)  # a meter never runs backwards
    await hub.commands.call("switch.smart_plug", "turn_off")
    assert value(hub, "switch.smart_plug") == "off"
    assert value(hub, "sensor.smart_plug_power") < 1.0
    await hub.commands.call("switch.smart_plug", "toggle")
    assert value(hub, "switch.smart_plug") == "on"
    assert value(hub, "sensor.smart_plug_power") > 50


async def test_motion_comes_and_goes(tmp_path: Path):
    hub = await start_hub(tmp_path, FAST + ", motion_per_hour: 120")
    try:
        seen = record(hub, "binary_sensor.hallway_motion")
        await wait_for(lambda: "on" in seen and seen[-1] == "off", what="a motion event that cleared")
    finally:
        await hub.stop()


async def test_extra_entities_random_walk(tmp_path: Path):
    hub = await start_hub(tmp_path, FAST + ", extra_entities: 25")
    try:
        virtual = {f"sensor.virtual_{n}" for n in range(1, 26)}
        assert all(hub.states.get(e) is not None for e in virtual)
        devices = {hub.entities.get(e).device_id for e in virtual}
        assert devices == {f"demo:virtual_{d}" for d in range(1, 11)}
        first = {e: value(hub, e) for e in virtual}
        await wait_for(
            lambda: sum(value(hub, e) != first[e] for e in virtual) >= 20, what="most virtual sensors to move"
        )
        assert all(10 < value(hub, e) < 30 for e in virtual)
    finally:
        await hub.stop()


async def test_an_unknown_option_keeps_only_the_demo_from_starting(tmp_path: Path):
    hub = await start_hub(tmp_path, "time_scal: 600")
    try:
        info = hub.plugins.info["demo"]
        assert info.status == "config_error"
        assert "time_scal" in info.error
        assert hub.states.get("lock.front_door") is None
    finally:
        await hub.stop()


async def test_a_numeric_lock_code_must_be_quoted(tmp_path: Path):
    hub = await start_hub(tmp_path, "lock_code: 0123")
    try:
        assert hub.plugins.info["demo"].status == "config_error"
        assert "quotes" in hub.plugins.info["demo"].error
    finally:
        await hub.stop()


async def test_a_restart_resumes_the_lock_the_meter_and_the_thermostat(tmp_path: Path):
    hub = await start_hub(tmp_path)
    try:
        await wait_for(lambda: value(hub, "meter.smart_plug_energy") >= 0.005, what="some energy")
        await hub.commands.call("lock.front_door", "unlock")
        await hub.commands.call("climate.thermostat", "set_temperature", {"temperature": 24})
        await hub.commands.call("climate.thermostat", "set_hvac_mode", {"hvac_mode": "cool"})
        await hub.commands.call("light.living_room", "turn_on", {"brightness": 77})
        await hub.commands.call("number.water_heater_set_point", "set_value", {"value": 47.5})
        await hub.commands.call("select.water_heater_mode", "select_option", {"option": "away"})
    finally:
        await hub.stop()
    energy = value(hub, "meter.smart_plug_energy")
    room = value(hub, "sensor.room_temperature")

    hub = await start_hub(tmp_path)
    try:
        assert value(hub, "lock.front_door") == "unlocked"
        assert hub.states.get("lock.front_door").available
        assert value(hub, "meter.smart_plug_energy") >= energy  # resumed, not reset to 0
        assert value(hub, "meter.smart_plug_energy") < energy + 0.01
        assert value(hub, "climate.thermostat") == "cool"
        assert attr(hub, "climate.thermostat", "target_temperature") == 24
        assert value(hub, "sensor.room_temperature") == pytest.approx(room, abs=0.3)
        assert value(hub, "light.living_room") == "on" and attr(hub, "light.living_room", "brightness") == 77
        assert value(hub, "number.water_heater_set_point") == 47.5
        assert value(hub, "select.water_heater_mode") == "away"
        await wait_for(lambda: value(hub, "meter.smart_plug_energy") > energy, what="the meter to count on")
    finally:
        await hub.stop()
