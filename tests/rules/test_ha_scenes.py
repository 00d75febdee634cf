"""Home Assistant's scenes (scenes.yaml, ``scene.turn_on``, ``scene.apply``) and the ``homeassistant:
shutdown`` trigger, on a simulated clock with a fake home.

The scenes are those of HA's scene documentation (https://www.home-assistant.io/integrations/scene/:
"Romantic" and "Movies" of its configuration example, the ``scene.turn_on`` with ``transition: 2.5``
and the ``scene.apply`` of "Reproducing states", and a scene as HA's scene editor saves it), with the
entity ids of the fake home; the media player of the examples has no counterpart on the hub.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from hub import hookimpl
from hub.api.app import create_app
from hub.core.commands import CommandRefused
from hub.core.events import CommandCalled, CustomEvent
from hub.devices import Device, EntitySpec
from hub.rules.model import SHUTDOWN_GRACE
from hub.rules.scenes import slugify
from tests.rules.conftest import Home, RuleHub


class SceneHome(Home):
    """The conftest's home plus a living room with every settable capability."""

    @hookimpl
    def hub_discover(self, hub):
        super().hub_discover(hub)
        self.h.update(hub.add_device(Device(id="living", name="Living room"), [
            EntitySpec(key="ceiling", capability="light", object_id="ceiling"),
            EntitySpec(key="thermostat", capability="climate", object_id="thermostat",
                       options={"min_temp": 7, "max_temp": 30}),
            EntitySpec(key="blind", capability="cover", device_class="blind", object_id="blind"),
            EntitySpec(key="door", capability="lock", object_id="front_door"),
            EntitySpec(key="shed", capability="lock", object_id="shed"),
            EntitySpec(key="fan_speed", capability="number", object_id="fan_speed",
                       options={"min": 0, "max": 100, "step": 10}),
            EntitySpec(key="preset", capability="select", object_id="preset",
                       options={"options": ["eco", "comfort", "away"]}),
        ]))
        for key, value, attrs in (("ceiling", "off", {}), ("thermostat", "off", {}), ("blind", "closed", {}),
                                  ("door", "locked", {"code_required": True}), ("shed", "locked", {}),
                                  ("fan_speed", 0, {}), ("preset", "eco", {})):
            self.h[key].set(value, **attrs)

    @hookimpl
    def hub_handle_command(self, entity, command, args):
        self.calls.append((entity.entity_id, command, args.model_dump(exclude_none=True)))
        if entity.entity_id in self.fail_on:
            raise OSError("relay did not answer")
        if command == "refuse":
            raise CommandRefused("no")
        new = {"turn_on": "on", "turn_off": "off", "lock": "locked", "unlock": "unlocked", "open": "open",
               "close": "closed", "set_position": "open", "set_hvac_mode": getattr(args, "hvac_mode", None),
               "set_value": getattr(args, "value", None), "select_option": getattr(args, "option", None)}.get(command)
        if command == "toggle":
            new = "off" if entity.state.value == "on" else "on"
        if new is not None:
            entity.set(new)


def scene_hub(tmp_path, clock) -> RuleHub:
    (tmp_path / "configuration.yaml").write_text("hub: {time_zone: UTC, commit_interval: 0.01}\n")
    return RuleHub(tmp_path, clock, SceneHome())


def commands_seen(hub) -> list[CommandCalled]:
    seen: list[CommandCalled] = []
    hub.bus.subscribe(CommandCalled, seen.append)
    return seen


# HA's configuration example, with the hub's entities: light.lamp for light.tv_back_light
HA_DOC_SCENES = """
- name: Romantic
  icon: "mdi:flower-tulip"
  entities:
    light.lamp: "on"
    light.ceiling:
      state: "on"
      brightness: 200
      color_mode: "xy"
      xy_color: [0.33, 0.66]
- name: Movies
  entities:
    light.ceiling: "off"
    switch.fan:
      state: "on"
"""

# HA's "Reproducing states" automation, 2024.10 syntax
ROMANTIC_RULE = """
- id: sweetheart_home
  triggers:
    - trigger: event
      event_type: sweetheart_home
  actions:
    - action: scene.turn_on
      target:
        entity_id: scene.romantic
      data:
        transition: 2.5
"""


async def test_the_romantic_scene_of_ha_docs_is_applied_by_scene_turn_on_with_its_transition(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write(HA_DOC_SCENES, "scenes.yaml")
    rh.write(ROMANTIC_RULE)
    try:
        hub = await rh.start()
        assert rh.engine.issues == []
        seen = commands_seen(hub)
        hub.bus.publish(CustomEvent(hub.now(), "sweetheart_home", {}))
        await clock.settle()
        # HA's light turns xy [0.33, 0.66] into the colour; the hub's light takes rgb_color
        ceiling = rh.calls("turn_on", "light.ceiling")
        assert ceiling == [("light.ceiling", "turn_on", {"brightness": 200, "rgb_color": (162, 255, 0), "transition": 2.5})]
        assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"transition": 2.5})]
        trace = rh.traces("sweetheart_home")[0]
        assert trace["outcome"] == "finished", trace
        await hub.bus.drain()
        sources = {c.entity_id: c.source for c in seen}
        assert sources == {"light.ceiling": "rule:sweetheart_home/scene:romantic",
                           "light.lamp": "rule:sweetheart_home/scene:romantic"}
    finally:
        await rh.stop()


async def test_a_scene_is_named_by_its_id_or_by_scene_and_the_slug_of_its_name(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write("""
- id: "1677849712617"
  name: Abendstimmung Küche
  entities:
    switch.fan: "on"
""", "scenes.yaml")
    rh.write("""
- id: by_slug
  trigger: [{trigger: event, event_type: a}]
  action: [{action: scene.turn_on, target: {entity_id: scene.abendstimmung_kuche}}]
- id: by_id
  trigger: [{trigger: event, event_type: b}]
  action: [{service: scene.turn_on, entity_id: scene.1677849712617}]
""")
    try:
        await rh.start()
        assert rh.engine.issues == []
        scene = rh.engine.scenes["1677849712617"]
        assert scene.entity_id == "scene.abendstimmung_kuche" == f"scene.{slugify('Abendstimmung Küche')}"
        for event in ("a", "b"):
            rh.engine.hub.bus.publish(CustomEvent(rh.engine.hub.now(), event, {}))
            await rh.clock.settle()
        assert len(rh.calls("turn_on", "switch.fan")) == 2
    finally:
        await rh.stop()


# A scene as HA's scene editor saves it: every attribute of each entity's state, read-only ones too,
# with the colour chosen by color_mode among the several colours the state carries.
EDITOR_SCENE = """
- id: "1700000000001"
  name: Evening
  entities:
    light.ceiling:
      min_color_temp_kelvin: 2000
      max_color_temp_kelvin: 6535
      min_mireds: 153
      max_mireds: 500
      supported_color_modes: [color_temp, xy]
      color_mode: color_temp
      brightness: 120
      color_temp_kelvin: 2700
      color_temp: 370
      hs_color: [28.0, 65.0]
      rgb_color: [255, 167, 89]
      xy_color: [0.524, 0.387]
      effect: null
      friendly_name: Ceiling
      supported_features: 40
      state: "on"
    climate.thermostat:
      hvac_modes: ["off", heat, cool, auto]
      min_temp: 7
      max_temp: 30
      current_temperature: 19.5
      temperature: 21
      hvac_action: idle
      preset_mode: null
      friendly_name: Thermostat
      supported_features: 17
      state: heat
    cover.blind:
      current_position: 40
      friendly_name: Blind
      device_class: blind
      state: open
    lock.shed:
      friendly_name: Shed
      state: unlocked
    number.fan_speed:
      min: 0
      max: 100
      step: 10
      mode: slider
      state: "60"
    select.preset:
      options: [eco, comfort, away]
      state: comfort
    switch.ac: off
  metadata: {}
  icon: mdi:weather-night
"""


async def test_a_scene_saved_by_has_editor_reaches_each_capability_and_ignores_read_only_attributes(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write(EDITOR_SCENE, "scenes.yaml")
    try:
        hub = await rh.start()
        assert rh.engine.issues == []
        scene = rh.engine.scenes["1700000000001"]
        assert scene.plan == {
            "light.ceiling": [("turn_on", {"brightness": 120, "color_temp_kelvin": 2700})],
            "climate.thermostat": [("set_hvac_mode", {"hvac_mode": "heat"}), ("set_temperature", {"temperature": 21})],
            "cover.blind": [("set_position", {"position": 40})],
            "lock.shed": [("unlock", {})],
            "number.fan_speed": [("set_value", {"value": 60.0})],
            "select.preset": [("select_option", {"option": "comfort"})],
            "switch.ac": [("turn_off", {})],  # an unquoted YAML off is false, read back as "off" as HA does
        }
        assert scene.ignored == {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(hub)), base_url="http://hub") as client:
            token = hub.store.create_token("t")
            answer = await client.post("/api/scenes/scene.evening", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["ok"] is True
        # the mode before the set-point, as HA's climate does
        assert [c[1] for c in rh.calls(entity_id="climate.thermostat")] == ["set_hvac_mode", "set_temperature"]
        states = {e: hub.states.get(e).value for e in ("cover.blind", "lock.shed", "number.fan_speed", "select.preset")}
        assert states == {"cover.blind": "open", "lock.shed": "unlocked", "number.fan_speed": 60.0, "select.preset": "comfort"}
    finally:
        await rh.stop()


async def test_an_entity_already_in_its_target_state_is_still_commanded(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write("- name: Cool\n  entities:\n    switch.ac: 'on'\n", "scenes.yaml")
    try:
        hub = await rh.start()
        assert hub.states.get("switch.ac").value == "on"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(hub)), base_url="http://hub") as client:
            token = hub.store.create_token("t")
            answer = await client.post("/api/scenes/cool", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert rh.calls("turn_on", "switch.ac") == [("switch.ac", "turn_on", {})]
    finally:
        await rh.stop()


BAD_SCENES = """
- name: Dim the switch
  entities:
    switch.fan: dim
- name: Too bright
  entities:
    light.ceiling: {state: "on", brightness: 300}
- name: Set a sensor
  entities:
    sensor.temp: 25
- name: Open up
  entities:
    lock.front_door: unlocked
- name: Tilted
  entities:
    cover.blind: {state: open, current_tilt_position: 50}
- name: Nowhere
  entities:
    media_player.sony_bravia_tv: {state: "on", source: HDMI 1}
- name: Fine
  entities:
    switch.fan: "on"
"""


async def test_unreachable_states_are_load_errors_naming_scene_entity_and_value_and_the_rest_loads(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    path = rh.write(BAD_SCENES, "scenes.yaml")
    rh.write("""
- id: uses_missing
  trigger: [{trigger: event, event_type: x}]
  action:
    - action: scene.turn_on
      target: {entity_id: scene.dim_the_switch}
""")
    try:
        await rh.start()
        assert list(rh.engine.scenes) == ["fine"]
        issues = {i.key: i for i in rh.engine.issues}
        text = {k: str(i) for k, i in issues.items()}
        assert "a switch is 'on' or 'off', not 'dim'" in text["Dim the switch.entities.switch.fan"]
        assert text["Dim the switch.entities.switch.fan"].startswith(f"{path}:4:")
        bright = text["Too bright.entities.light.ceiling.brightness"]
        assert "light.ceiling cannot be set to brightness 300" in bright and "255" in bright and "'Too bright'" in bright
        assert "sensor.temp is a sensor: it cannot be set" in text["Set a sensor.entities.sensor.temp"]
        assert "needs a code to unlock" in text["Open up.entities.lock.front_door"]
        assert "no current_tilt_position" in text["Tilted.entities.cover.blind.current_tilt_position"]
        assert "unknown entity 'media_player.sony_bravia_tv'" in text["Nowhere.entities.media_player.sony_bravia_tv"]
        # the rule naming a refused scene is refused at its line, saying which scenes exist
        assert rh.engine.rules["uses_missing"].rule is None
        rule_issue = next(str(i) for i in rh.engine.issues if i.key and i.key.startswith("uses_missing"))
        assert "unknown scene 'scene.dim_the_switch'; loaded scenes: scene.fine" in rule_issue
    finally:
        await rh.stop()


# "Reproducing states" of HA's scene page: scene.apply with the states inline; light.ceiling: off
# unquoted, as the page writes it.
APPLY_RULE = """
- id: apply_inline
  trigger:
    - platform: event
      event_type: sweetheart_home
  action:
    - service: scene.apply
      data:
        entities:
          light.lamp:
            state: "on"
            brightness: 100
          light.ceiling: off
- id: apply_bad
  trigger: [{trigger: event, event_type: never}]
  action:
    - action: scene.apply
      data:
        entities:
          light.lamp: {state: "on", brightness: 300}
"""


async def test_scene_apply_takes_the_states_inline_and_checks_them_at_load(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    path = rh.write(APPLY_RULE)
    try:
        hub = await rh.start()
        assert rh.engine.rules["apply_inline"].rule is not None
        assert rh.engine.rules["apply_bad"].rule is None
        bad = next(str(i) for i in rh.engine.issues if i.key and i.key.startswith("apply_bad"))
        assert bad.startswith(f"{path}:") and "brightness 300" in bad
        hub.bus.publish(CustomEvent(hub.now(), "sweetheart_home", {}))
        await clock.settle()
        assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"brightness": 100})]
        assert rh.calls("turn_off", "light.ceiling") == [("light.ceiling", "turn_off", {})]
    finally:
        await rh.stop()


async def test_one_entity_failing_does_not_stop_the_others_and_the_step_names_it(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write(HA_DOC_SCENES, "scenes.yaml")
    rh.write("""
- id: movie_night
  trigger: [{trigger: event, event_type: movies}]
  action:
    - action: scene.turn_on
      target: {entity_id: [scene.movies]}
    - log: after
- id: movie_night_anyway
  trigger: [{trigger: event, event_type: movies}]
  action:
    - action: scene.turn_on
      target: {entity_id: scene.movies}
      continue_on_error: true
    - log: after
""")
    rh.home.fail_on.add("light.ceiling")
    try:
        hub = await rh.start()
        hub.bus.publish(CustomEvent(hub.now(), "movies", {}))
        await clock.settle()
        # each rule's scene commanded the fan although the ceiling light failed
        assert len(rh.calls("turn_on", "switch.fan")) == 2
        failed = rh.traces("movie_night")[0]
        assert failed["outcome"] == "error"
        assert "scene movies: light.ceiling:" in failed["error"] and "relay did not answer" in failed["error"]
        assert "switch.fan" not in failed["error"]
        went_on = rh.traces("movie_night_anyway")[0]
        assert went_on["outcome"] == "finished"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(hub)), base_url="http://hub") as client:
            token = hub.store.create_token("t")
            answer = await client.post("/api/scenes/movies", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 502
        body = answer.json()
        assert body["ok"] is False and body["entities"]["switch.fan"]["ok"] is True
        assert "relay did not answer" in body["entities"]["light.ceiling"]["error"]
    finally:
        await rh.stop()


async def test_scenes_api_lists_applies_and_refuses_what_it_should(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write(HA_DOC_SCENES + "- name: Broken\n  entities:\n    switch.fan: dim\n", "scenes.yaml")
    try:
        hub = await rh.start()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(hub)), base_url="http://hub") as client:
            assert (await client.get("/api/scenes")).status_code == 401
            auth = {"Authorization": f"Bearer {hub.store.create_token('t')}"}
            listed = (await client.get("/api/scenes", headers=auth)).json()
            assert [s["entity_id"] for s in listed["scenes"]] == ["scene.romantic", "scene.movies"]
            assert listed["scenes"][0]["entities"] == ["light.ceiling", "light.lamp"]
            assert any("Broken.entities.switch.fan" in i for i in listed["issues"])
            assert (await client.post("/api/scenes/nope", headers=auth)).status_code == 404
            too_long = await client.post("/api/scenes/romantic", headers=auth, json={"transition": 301})
            assert too_long.status_code == 422 and "transition" in too_long.text
            stray = await client.post("/api/scenes/romantic", headers=auth, json={"brightness": 3})
            assert stray.status_code == 422
            ok = await client.post("/api/scenes/romantic", headers=auth, json={"transition": 1})
            assert ok.status_code == 200 and ok.json()["entities"]["light.lamp"]["ok"] is True
        assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"transition": 1.0})]
    finally:
        await rh.stop()


async def test_rules_reload_reloads_scenes_and_a_check_of_the_files_does_not(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write("- name: Cool\n  entities:\n    switch.ac: 'on'\n", "scenes.yaml")
    try:
        hub = await rh.start()
        assert list(rh.engine.scenes) == ["cool"]
        rh.write("- name: Cool\n  entities:\n    switch.fan: 'on'\n", "scenes.yaml")
        rh.write("- name: Warm\n  entities:\n    switch.ac: 'off'\n", "scenes/more.yaml")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(hub)), base_url="http://hub") as client:
            auth = {"Authorization": f"Bearer {hub.store.create_token('t')}"}
            # checking the files applies nothing: the scenes in force stay those last loaded
            assert (await client.post("/api/rules/check", headers=auth)).json()["issues"] == []
            assert (await client.post("/api/scenes/warm", headers=auth)).status_code == 404
            await client.post("/api/scenes/cool", headers=auth)
            assert rh.calls("turn_on") == [("switch.ac", "turn_on", {})]
            assert (await client.post("/api/rules/reload", headers=auth)).status_code == 200
            assert sorted(s["id"] for s in (await client.get("/api/scenes", headers=auth)).json()["scenes"]) == ["cool", "warm"]
            await client.post("/api/scenes/cool", headers=auth)
            assert rh.calls("turn_on")[-1] == ("switch.fan", "turn_on", {})
    finally:
        await rh.stop()


SHUTDOWN_RULES = """
- id: all_off_at_shutdown
  triggers:
    - trigger: homeassistant
      event: shutdown
  actions:
    - condition: template
      value_template: "{{ trigger.platform == 'homeassistant' and trigger.event == 'shutdown' }}"
    - action: light.turn_off
      target: {entity_id: light.lamp}
    - action: switch.turn_off
      target: {entity_id: switch.ac}
"""


async def test_a_shutdown_rule_runs_when_the_hub_stops_and_its_commands_reach_the_driver(rh: RuleHub):
    rh.write(SHUTDOWN_RULES)
    await rh.start()
    assert rh.engine.rules["all_off_at_shutdown"].rule is not None
    rh.home.set("lamp", "on")
    assert not rh.calls("turn_off")
    engine = rh.engine
    await rh.stop()
    assert rh.calls("turn_off") == [("light.lamp", "turn_off", {}), ("switch.ac", "turn_off", {})]
    trace = [t.as_dict() for t in engine.traces.for_rule("all_off_at_shutdown")][0]
    assert trace["outcome"] == "finished"
    assert trace["trigger_description"] == "Home Assistant stopping"
    assert trace["trigger"]["event"] == "shutdown"


async def test_a_shutdown_run_still_going_after_the_grace_is_cancelled_and_logged(rh: RuleHub, caplog):
    rh.write("""
- id: slow_goodbye
  trigger: [{trigger: homeassistant, event: shutdown}]
  action:
    - action: light.turn_off
      target: {entity_id: light.lamp}
    - delay: "00:10:00"
    - action: switch.turn_off
      target: {entity_id: switch.ac}
""")
    await rh.start()
    engine = rh.engine
    caplog.set_level(logging.WARNING, "hub.rules")
    stopping = asyncio.create_task(rh.hub.stop())
    await rh.clock.settle()
    assert not stopping.done()  # waiting for the run, with the plugins still up
    await rh.clock.advance(SHUTDOWN_GRACE + 1)
    await asyncio.wait_for(stopping, 30)
    rh.hub = None
    assert rh.calls("turn_off", "light.lamp") and not rh.calls("turn_off", "switch.ac")
    trace = [t.as_dict() for t in engine.traces.for_rule("slow_goodbye")][0]
    assert trace["outcome"] == "cancelled"
    assert "slow_goodbye: their shutdown runs did not finish" in caplog.text
    # a run cut off at the stop belongs to it: it is not resumed at the next start
    await rh.start()
    await rh.clock.advance(3600)
    assert not rh.calls("turn_off", "switch.ac")
    assert [t["trigger_description"] for t in rh.traces("slow_goodbye")] == []
    rh.engine.set_enabled("slow_goodbye", False)  # or the fixture's stop would wait for it again


async def test_a_templated_scene_apply_is_checked_when_it_runs(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write("""
- id: dimmer
  mode: queued
  trigger: [{trigger: event, event_type: dim}]
  action:
    - action: scene.apply
      data:
        transition: "{{ trigger.event.data.fade }}"
        entities:
          light.lamp: {state: "on", brightness: "{{ trigger.event.data.level }}"}
""")
    try:
        hub = await rh.start()
        assert rh.engine.rules["dimmer"].rule is not None
        hub.bus.publish(CustomEvent(hub.now(), "dim", {"level": 40, "fade": 3}))
        await clock.settle()
        hub.bus.publish(CustomEvent(hub.now(), "dim", {"level": 300, "fade": 0}))
        await clock.settle()
        assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"brightness": 40, "transition": 3.0})]
        runs = rh.traces("dimmer")
        assert sorted(t["outcome"] for t in runs) == ["error", "finished"]
        error = next(t["error"] for t in runs if t["outcome"] == "error")
        assert "light.lamp cannot be set to brightness 300" in error
    finally:
        await rh.stop()


async def test_an_attribute_nothing_can_set_is_ignored_and_named(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write("""
- name: Zigbee lamp
  entities:
    light.lamp: {state: "on", brightness: 50, linkquality: 87, effect: "off", preset_mode: null}
    switch.fan: {state: "on", brightness: 50, friendly_name: Fan}
""", "scenes.yaml")
    try:
        hub = await rh.start()
        assert rh.engine.issues == []
        scene = rh.engine.scenes["zigbee_lamp"]
        assert scene.plan == {"light.lamp": [("turn_on", {"brightness": 50})], "switch.fan": [("turn_on", {})]}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(hub)), base_url="http://hub") as client:
            auth = {"Authorization": f"Bearer {hub.store.create_token('t')}"}
            listed = (await client.get("/api/scenes", headers=auth)).json()
        assert listed["scenes"][0]["ignored_attributes"] == {"light.lamp": ["linkquality", "preset_mode"],
                                                             "switch.fan": ["brightness"]}
    finally:
        await rh.stop()


async def test_scenes_named_alike_keep_apart_by_id_and_without_one_the_second_is_refused(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    path = rh.write("""
- {id: "1", name: Night, entities: {switch.fan: "off"}}
- {id: "2", name: Night, entities: {switch.ac: "off"}}
- {name: Day, entities: {switch.fan: "on"}}
- {name: Day, entities: {switch.ac: "on"}}
""", "scenes.yaml")
    try:
        await rh.start()
        assert {s.id: s.entity_id for s in rh.engine.scenes.values()} == {
            "1": "scene.night", "2": "scene.night_2", "day": "scene.day"}
        issue = str(rh.engine.issues[0])
        assert len(rh.engine.issues) == 1 and issue.startswith(f"{path}:5:")
        assert "another scene is named 'Day'" in issue and "give this one an id" in issue
    finally:
        await rh.stop()


async def test_scene_steps_refused_at_load_say_why(tmp_path, clock):
    rh = scene_hub(tmp_path, clock)
    rh.write("- name: Cool\n  entities:\n    switch.ac: 'on'\n", "scenes.yaml")
    path = rh.write("""
- id: create
  trigger: [{trigger: event, event_type: x}]
  action: [{action: scene.create, data: {scene_id: snap, snapshot_entities: [switch.ac]}}]
- id: stray_data
  trigger: [{trigger: event, event_type: x}]
  action: [{action: scene.turn_on, target: {entity_id: scene.cool}, data: {brightness: 3}}]
- id: slow
  trigger: [{trigger: event, event_type: x}]
  action: [{action: scene.turn_on, target: {entity_id: scene.cool}, data: {transition: 301}}]
- id: no_target
  trigger: [{trigger: event, event_type: x}]
  action: [{action: scene.turn_on}]
- id: templated
  trigger: [{trigger: event, event_type: x}]
  action: [{action: scene.turn_on, target: {entity_id: "scene.{{ trigger.event.data.name }}"}}]
""")
    try:
        await rh.start()
        text = {i.key.split(".")[0]: str(i) for i in rh.engine.issues}
        assert all(rh.engine.rules[r].rule is None for r in ("create", "stray_data", "slow", "no_target"))
        assert "write the scene in scenes.yaml" in text["create"] and text["create"].startswith(f"{path}:")
        assert "scene.turn_on has no data 'brightness'; it takes transition" in text["stray_data"]
        assert "transition 301" in text["slow"]
        assert "needs target.entity_id: scene.<id>" in text["no_target"]
        assert "a templated scene is not supported yet" in text["templated"]
    finally:
        await rh.stop()


async def test_an_oversized_or_broken_scenes_file_is_refused_naming_it_and_the_rules_still_load(tmp_path, clock):
    from hub.rules.loader import MAX_FILE_BYTES

    rh = scene_hub(tmp_path, clock)
    big = rh.write("# " + "x" * MAX_FILE_BYTES + "\n", "scenes/big.yaml")
    broken = rh.write("- name: Broken\n  entities: {switch.fan: 'on'\n", "scenes.yaml")
    rh.write(ROMANTIC_RULE.replace("scene.romantic", "scene.nothing_here"))
    rh.write("""
- id: fine
  trigger: [{trigger: event, event_type: x}]
  action: [{action: switch.turn_on, target: {entity_id: switch.fan}}]
""", "automations/more.yaml")
    try:
        await rh.start()
        text = [str(i) for i in rh.engine.issues]
        assert any(t.startswith(f"{big}: the file is") and "at most 4194304" in t for t in text)
        assert any(t.startswith(f"{broken}:") for t in text)
        assert rh.engine.scenes == {}
        assert rh.engine.rules["fine"].rule is not None and rh.engine.rules["sweetheart_home"].rule is None
    finally:
        await rh.stop()


async def test_a_scenes_colour_temperature_reaches_an_rgb_only_light_as_rgb(tmp_path):
    """A scene saved in Home Assistant for a white-tunable lamp, applied to the demo's RGB-only
    light: the command gate turns the colour temperature into its RGB, as HA's light service does,
    instead of the light refusing it (the first hand run of `hub scenes apply` after an import)."""
    import hub_demo

    from hub.devices.capabilities import kelvin_to_rgb
    from hub.runtime import Hub
    from hub.testing import FakeScheduler

    (tmp_path / "configuration.yaml").write_text("hub: {time_zone: UTC}\ndemo: {}\n")
    (tmp_path / "scenes.yaml").write_text("""\
- id: evening
  name: Evening
  entities:
    light.living_room: {state: "on", brightness: 120, color_mode: color_temp, color_temp_kelvin: 2700}
""")
    hub = Hub(tmp_path, scheduler=FakeScheduler(1_767_261_600.0), entrypoints=False)
    hub.plugins.register("demo", hub_demo)
    await hub.start()
    try:
        assert hub.rules.issues == []
        light = hub.states.get("light.living_room")
        assert light.attributes["supported_color_modes"] == ["rgb"]
        from hub.rules import scenes

        scene = scenes.find(hub.rules.scenes, "scene.evening")
        answers = await scenes.apply(hub, scene.plan, scene.capabilities, source="test")
        assert all(a.get("ok", True) for a in answers.values()), answers
        light = hub.states.get("light.living_room")
        assert light.value == "on" and light.attributes["brightness"] == 120
        assert light.attributes["rgb_color"] == list(kelvin_to_rgb(2700)) == [255, 167, 87]
    finally:
        await hub.stop()
