"""Automations written from Home Assistant's documentation (tests/rules/ha_corpus/, each file citing
its page), rewritten only to use the demo's entities, load unchanged and do what HA would do, on a
simulated clock."""

import logging
import shutil
from pathlib import Path

import hub_demo
import pytest

from hub.runtime import Hub
from hub.testing import FakeScheduler

CORPUS = Path(__file__).parent / "ha_corpus"
EVENING = 1_767_225_600.0 + 21 * 3600  # 2026-01-01 21:00 UTC
#: Files that need Jinja filters: none since Jinja templates landed (issue #22).
JINJA: set[str] = set()


@pytest.fixture
async def demo(tmp_path):
    (tmp_path / "configuration.yaml").write_text(
        "hub: {time_zone: UTC, latitude: 48.8566, longitude: 2.3522}\ndemo: {time_scale: 3600}\n")
    automations = tmp_path / "automations"
    automations.mkdir()
    for path in CORPUS.glob("*.yaml"):
        shutil.copy(path, automations / path.name)
    clock = FakeScheduler(EVENING)
    hub = Hub(tmp_path, scheduler=clock, entrypoints=False)
    hub.plugins.register("demo", hub_demo)
    await hub.start()
    hub._tasks["demo"].cancel()  # its real-time loop would overwrite the values the test sets
    await clock.settle()
    try:
        yield hub, hub.contexts["demo"], clock
    finally:
        await hub.stop()


def state(hub, entity_id):
    return hub.states.get(entity_id)


async def test_every_corpus_file_loads_but_the_jinja_ones(demo):
    hub, _, _ = demo
    failing = {i.file.rsplit("/", 1)[-1] for i in hub.rules.issues if i.file}
    assert failing == JINJA, [str(i) for i in hub.rules.issues]
    loaded = {r.id for r in hub.rules.rules.values() if r.status == "on"}
    assert {"motion_light_classic", "motion_on_off_by_trigger_id", "heat_when_cold", "lock_up_at_night",
            "water_heater_eco_at_night"} <= loaded


async def test_classic_service_with_brightness_pct_and_hs_color(demo):
    hub, d, clock = demo
    hub.rules.set_enabled("motion_on_off_by_trigger_id", False)  # it commands the same light
    await hub.commands.call("light.living_room", "turn_off")
    d.entity("binary_sensor.hallway_motion").set("on")
    await clock.settle()
    light = state(hub, "light.living_room")
    assert light.value == "on"
    assert light.attributes["brightness"] == 102  # 40 % of 255
    assert light.attributes["rgb_color"] == [255, 128, 0]  # hue 30°, full saturation


async def test_trigger_ids_choose_the_branch(demo):
    hub, d, clock = demo
    d.entity("binary_sensor.hallway_motion").set("on")
    await clock.settle()
    assert state(hub, "light.living_room").value == "on"
    d.entity("binary_sensor.hallway_motion").set("off")
    await clock.advance(60)
    assert state(hub, "light.living_room").value == "on"  # 'for: 2 minutes' not yet
    await clock.advance(61)
    assert state(hub, "light.living_room").value == "off"
    traces = [t.as_dict() for t in hub.rules.traces.for_rule("motion_on_off_by_trigger_id")]
    assert [t["trigger"]["id"] for t in traces] == ["motion", "no_motion"]


async def test_set_temperature_with_hvac_mode_and_a_notification(demo, caplog):
    hub, d, clock = demo
    await hub.commands.call("climate.thermostat", "set_hvac_mode", {"hvac_mode": "off"})
    notes = []
    hub.bus.subscribe("notify", notes.append)
    d.entity("sensor.room_temperature").set(18.0)
    await clock.settle()
    with caplog.at_level(logging.WARNING, logger="hub.rules"):
        d.entity("sensor.room_temperature").set(16.5)
        await clock.settle()
    thermostat = state(hub, "climate.thermostat")
    assert thermostat.value == "heat"
    assert thermostat.attributes["target_temperature"] == 21
    # the demo's thermostat republishes its own room model (18 °C) when commanded, before the message
    # is rendered: the template reads the state at that moment, as HA's would
    assert [(n.payload["service"], n.payload["title"]) for n in notes] == [("notify.notify", "Heating")]
    assert notes[0].payload["message"].startswith("Room at ") and notes[0].payload["message"].endswith("°C: heating to 21")
    assert "Heating: Room at " in caplog.text


async def test_disabled_trigger_and_step_are_skipped_homeassistant_turn_off_any_entity(demo):
    hub, _, clock = demo
    await hub.commands.call("lock.front_door", "unlock")
    await hub.commands.call("switch.smart_plug", "turn_on")
    await hub.commands.call("light.living_room", "turn_on")
    await clock.advance(2 * 3600 + 30)  # 23:00, and the lock's motor has run
    assert state(hub, "lock.front_door").value == "locked"
    assert state(hub, "switch.smart_plug").value == "off"
    assert state(hub, "light.living_room").value == "off"
    await clock.advance(3600)  # past 23:30: that trigger is disabled, and so is the step turning the light on
    traces = [t.as_dict() for t in hub.rules.traces.for_rule("lock_up_at_night")]
    assert len(traces) == 1 and traces[0]["outcome"] == "finished"
    assert state(hub, "light.living_room").value == "off"


async def test_number_and_select_by_device_target(demo):
    hub, _, clock = demo
    await clock.advance(3600)  # 22:00
    assert state(hub, "number.water_heater_set_point").value == 45
    assert state(hub, "select.water_heater_mode").value == "eco"



async def test_jinja_filters_and_methods(demo):
    hub, d, clock = demo
    hub.rules.set_enabled("motion_on_off_by_trigger_id", False)
    hub.rules.set_enabled("motion_light_classic", False)
    notes = []
    hub.bus.subscribe("notify", notes.append)
    d.entity("sensor.room_temperature").set(26.34)
    await clock.settle()
    d.entity("binary_sensor.hallway_motion").set("on")
    await clock.settle()
    assert [n.payload["message"] for n in notes] == ["Hot: 26.3 °C", "Motion in the hallway at 21:00"]


# --- tests/rules/ha_corpus/script_syntax.yaml: HA's script syntax page -----------------------------

def fire(hub, event_type: str) -> None:
    from hub.core.events import CustomEvent

    hub.bus.publish(CustomEvent(hub.now(), event_type, {}))


def quiet_motion_rules(hub) -> None:
    """The other corpus files' rules also answer the hallway's motion: only the script page's run."""
    for rule_id in list(hub.rules.rules):
        if not rule_id.startswith("doc_"):
            hub.rules.set_enabled(rule_id, False)


async def test_wait_template_goes_on_when_true_and_gives_up_at_its_timeout(demo):
    hub, d, clock = demo
    quiet_motion_rules(hub)
    notes = []
    hub.bus.subscribe("notify", notes.append)
    fire(hub, "doc_wait_template")
    await clock.advance(20)
    assert notes == []  # still waiting
    d.entity("binary_sensor.hallway_motion").set("on")
    await clock.settle()
    assert [n.payload["message"] for n in notes] == ["completed=True remaining=40.0"]
    fire(hub, "doc_wait_template")  # already true: goes on at once
    await clock.settle()
    assert notes[-1].payload["message"] == "completed=True remaining=60.0"
    d.entity("binary_sensor.hallway_motion").set("off")
    await clock.settle()
    fire(hub, "doc_wait_template")
    await clock.advance(61)  # continue_on_timeout: true, so the run goes on, saying so
    assert notes[-1].payload["message"] == "completed=False remaining=0.0"


async def test_for_each_over_names_renders_a_templated_target(demo):
    hub, _, clock = demo
    await hub.commands.call("light.living_room", "turn_on")
    fire(hub, "doc_for_each_names")
    await clock.settle()
    assert state(hub, "light.living_room").value == "off"
    trace = [t.as_dict() for t in hub.rules.traces.for_rule("doc_for_each_names")][0]
    assert trace["outcome"] == "finished", trace


async def test_for_each_over_mappings(demo):
    hub, _, clock = demo
    notes = []
    hub.bus.subscribe("notify", notes.append)
    fire(hub, "doc_for_each_mappings")
    await clock.settle()
    assert [(n.payload["title"], n.payload["message"]) for n in notes] == [
        ("Message in English", "Hello World!"), ("Message in Dutch", "Hallo Wereld!")]


async def test_parallel_branch_sent_at_once_while_the_other_waits(demo):
    hub, d, clock = demo
    quiet_motion_rules(hub)
    notes = []
    hub.bus.subscribe("notify", notes.append)
    fire(hub, "doc_parallel")
    await clock.advance(5)
    assert [n.payload["service"] for n in notes] == ["notify.person2"]
    d.entity("binary_sensor.hallway_motion").set("on")
    await clock.settle()
    assert [n.payload["service"] for n in notes] == ["notify.person2", "notify.person1"]
    trace = [t.as_dict() for t in hub.rules.traces.for_rule("doc_parallel")][0]
    assert trace["outcome"] == "finished", trace
