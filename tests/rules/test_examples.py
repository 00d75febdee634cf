"""The example rules of the embedded default work with the demo home they were written for."""

import logging

import hub_demo

from hub.core.events import CustomEvent
from hub.runtime import Hub
from hub.testing import FakeScheduler

NIGHT_IN_PARIS = 1_767_225_600.0 + 22 * 3600  # 2026-01-01 22:00 UTC


async def start(tmp_path, clock):
    hub = Hub(tmp_path, scheduler=clock, entrypoints=False)
    hub.plugins.register("demo", hub_demo)
    # No configuration.yaml: the embedded default, whose rules are the packaged examples. The test
    # moves the simulated clock and sets the sensors itself; the demo still carries out commands.
    await hub.start()
    hub._tasks["demo"].cancel()  # its real-time loop would overwrite the values the test sets
    await clock.settle()
    return hub, hub.contexts["demo"]


async def test_example_rules_load_and_work(tmp_path, caplog):
    clock = FakeScheduler(NIGHT_IN_PARIS)
    hub, demo = await start(tmp_path, clock)
    try:
        assert hub.rules.issues == []
        assert {r.id for r in hub.rules.rules.values() if r.status == "on"} == {
            "ac_off_when_cold", "hallway_light_on_motion", "plug_power_alert"}

        await hub.commands.call("climate.thermostat", "set_hvac_mode", {"hvac_mode": "cool"})
        demo.entity("sensor.room_temperature").set(14.5)
        await clock.advance(120)
        assert hub.states.get("climate.thermostat").value == "off"

        await hub.commands.call("light.living_room", "turn_off")
        demo.entity("binary_sensor.hallway_motion").set("on")
        await clock.settle()
        assert hub.states.get("light.living_room").value == "on"  # after sunset in Paris
        demo.entity("binary_sensor.hallway_motion").set("off")
        await clock.advance(120)
        assert hub.states.get("light.living_room").value == "off"

        alerts = []
        hub.bus.subscribe("power_alert", alerts.append)
        demo.entity("sensor.smart_plug_power").set(131.0)
        with caplog.at_level(logging.WARNING, logger="hub.rules"):
            await clock.advance(300)
        assert [a.payload["watts"] for a in alerts] == [131.0]
        assert "has drawn over 125 W for 5 minutes" in caplog.text
    finally:
        await hub.stop()
