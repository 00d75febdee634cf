"""Pending timers and delays survive a restart; bad rules are refused with file, line and reason."""

from hub.testing import FakeScheduler
from tests.rules.conftest import START, Home, RuleHub

FOR_RULE = """
- id: motion_10min
  trigger:
    - trigger: state
      entity_id: binary_sensor.motion
      to: "on"
      for: "00:10:00"
  action:
    - call: switch.turn_on
      entity_id: switch.fan
"""

DELAY_RULE = """
- id: timed
  trigger:
    - trigger: event
      event_type: go
  action:
    - call: light.turn_on
      entity_id: light.lamp
    - repeat:
        count: 2
        sequence:
          - delay: "00:05:00"
          - event: tick
            event_data: {i: "{{ repeat.index }}"}
    - call: light.turn_off
      entity_id: light.lamp
"""


async def restart(rh: RuleHub, at: float) -> RuleHub:
    """The same data directory, a new hub process: new plugin instance, new clock."""
    await rh.stop()
    again = RuleHub(rh.path, FakeScheduler(at), Home())
    await again.start()
    return again


async def test_for_timer_8_minutes_in_fires_2_minutes_after_restart_once(rh):
    rh.write(FOR_RULE)
    await rh.start()
    rh.home.set("motion", "on")
    await rh.clock.advance(8 * 60)
    again = await restart(rh, START + 8 * 60 + 30)  # down for 30 s
    try:
        await again.clock.advance(89)
        assert again.calls("turn_on") == []
        await again.clock.advance(1)  # 10 minutes after the motion began
        assert len(again.calls("turn_on")) == 1
        await again.clock.advance(3600)
        assert len(again.calls("turn_on")) == 1  # not twice
    finally:
        await again.stop()


async def test_for_timer_is_dropped_if_the_state_changed_while_down(rh):
    rh.write(FOR_RULE)
    await rh.start()
    rh.home.set("motion", "on")
    await rh.clock.advance(8 * 60)
    await rh.stop()
    # While the hub was down the motion cleared: the driver reports "off" when it comes back.
    store_home = Home()
    again = RuleHub(rh.path, FakeScheduler(START + 9 * 60), store_home)
    original = store_home.hub_discover

    def discover_off(hub):
        original(hub)
        store_home.set("motion", "off")

    store_home.hub_discover = discover_off
    await again.start()
    try:
        await again.clock.advance(3600)
        assert again.calls("turn_on") == []
    finally:
        await again.stop()


async def test_delay_inside_repeat_resumes_where_it_was(rh):
    rh.write(DELAY_RULE)
    await rh.start()
    from hub.core.events import CustomEvent

    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "go", {}))
    await rh.clock.advance(5 * 60 + 3 * 60)  # first tick done, 3 min into the second delay
    again = await restart(rh, START + 8 * 60 + 10)
    ticks = []
    again.hub.bus.subscribe("tick", lambda e: ticks.append(e.payload["i"]))
    try:
        await again.clock.advance(109)
        assert ticks == [] and again.calls("turn_off") == []
        await again.clock.advance(1)
        assert ticks == [2]
        assert again.calls("turn_off", "light.lamp") == [("light.lamp", "turn_off", {})]
        assert again.calls("turn_on") == []  # the first action is not repeated
        trace = again.traces("timed")[-1]
        assert trace["outcome"] == "finished" and trace["trigger_description"] == "resumed after a restart"
        await again.clock.advance(3600)
        assert ticks == [2] and len(again.calls("turn_off")) == 1
    finally:
        await again.stop()


async def test_a_changed_rule_does_not_resume_its_old_run(rh):
    rh.write(DELAY_RULE)
    await rh.start()
    from hub.core.events import CustomEvent

    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "go", {}))
    await rh.clock.advance(60)
    await rh.stop()
    rh.write(DELAY_RULE.replace('"00:05:00"', '"00:06:00"'))
    again = RuleHub(rh.path, FakeScheduler(START + 120), Home())
    await again.start()
    try:
        await again.clock.advance(3600)
        assert again.calls("turn_off") == []
    finally:
        await again.stop()


BAD = """
- id: good
  trigger:
    - trigger: state
      entity_id: binary_sensor.motion
  action:
    - call: switch.turn_on
      entity_id: switch.fan
- id: unknown_entity
  trigger:
    - trigger: state
      entity_id: sensor.nope
  action:
    - log: x
- id: bad_expression
  trigger:
    - trigger: state
      entity_id: sensor.temp
  condition: "states('sensor.temp') <> 3"
  action:
    - log: x
- id: bad_args
  trigger:
    - trigger: state
      entity_id: sensor.temp
  action:
    - call: light.turn_on
      entity_id: light.lamp
      args:
        brightness: 300
- id: wrong_capability
  trigger:
    - trigger: hub_start
  action:
    - call: light.turn_on
      entity_id: switch.fan
- id: bad_trigger
  trigger:
    - trigger: moon_phase
  action:
    - log: x
- id: good
  trigger:
    - trigger: hub_start
  action:
    - log: duplicate
"""


async def test_bad_rules_are_refused_with_line_and_the_rest_run(rh):
    path = rh.write(BAD)
    await rh.start()
    engine = rh.engine
    assert engine.rules["good"].rule is not None
    for rule_id in ("unknown_entity", "bad_expression", "bad_args", "wrong_capability", "bad_trigger"):
        assert engine.rules[rule_id].rule is None and engine.rules[rule_id].status == "error"
    text = {str(i) for i in engine.issues}

    def issue(fragment: str) -> str:
        return next(t for t in text if fragment in t)

    assert issue("sensor.nope").startswith(f"{path}:12:")
    assert issue("position") .startswith(f"{path}:19:")  # the condition line, with the offending position
    assert f"{path}:30:" in issue("less than or equal to 255")
    assert "bad_args.action[0].args.brightness" in issue("less than or equal")  # the rule id, then the key
    assert "switch.fan is a switch, not a light" in issue("not a light")
    assert "moon_phase" in issue("unknown trigger type")
    assert issue("duplicate rule id 'good'").startswith(f"{path}:42:")
    rh.home.set("motion", "on")
    await rh.clock.settle()
    assert rh.calls("turn_on", "switch.fan")  # the good rule runs


async def test_a_broken_rules_file_leaves_other_files_loaded(rh):
    rh.write(FOR_RULE)
    rh.write("- id: x\n  trigger: [\n", "automations/broken.yaml")
    await rh.start()
    assert "motion_10min" in rh.engine.rules
    [issue] = rh.engine.issues
    assert issue.file.endswith("broken.yaml") and issue.line == 3


async def test_reload_keeps_unchanged_rules_running(rh):
    rh.write(FOR_RULE)
    await rh.start()
    rh.home.set("motion", "on")
    await rh.clock.advance(300)
    rh.write(FOR_RULE + """
- id: added
  trigger:
    - trigger: hub_start
  action:
    - log: x
""")
    summary = await rh.hub.reload_rules()
    assert summary["added"] == ["added"] and summary["unchanged"] == ["motion_10min"]
    await rh.clock.advance(300)  # the pending for: timer was kept across the reload
    assert len(rh.calls("turn_on")) == 1


async def test_disable_stops_triggering_and_survives_restart(rh):
    rh.write(FOR_RULE.replace('for: "00:10:00"', "for: 0"))
    await rh.start()
    rh.engine.set_enabled("motion_10min", False)
    rh.home.set("motion", "on")
    await rh.clock.settle()
    assert rh.calls("turn_on") == []
    again = await restart(rh, START + 10)
    try:
        assert again.engine.rules["motion_10min"].status == "disabled"
        again.engine.set_enabled("motion_10min", True)
        again.home.set("motion", "off")
        again.home.set("motion", "on")
        await again.clock.settle()
        assert len(again.calls("turn_on")) == 1
    finally:
        await again.stop()
