"""HA's script syntax beyond the documentation's happy path (the corpus file script_syntax.yaml has
that): how ``parallel``, ``repeat: for_each``, ``wait_template`` and templated targets fail, are
bounded, and behave across a restart."""

from hub.core.events import CustomEvent
from hub.testing import FakeScheduler

from tests.rules.conftest import START, Home, RuleHub


def go(rh, **data):
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "go", data))


def issues(rh) -> str:
    return "\n".join(str(i) for i in rh.engine.issues)


async def test_a_failing_parallel_branch_lets_the_others_finish_then_fails_the_run(rh):
    rh.home.fail_on.add("switch.fan")
    rh.write("""\
- id: both
  triggers: [{trigger: event, event_type: go}]
  actions:
    - parallel:
        - action: switch.turn_on
          target: {entity_id: switch.fan}
        - sequence:
            - delay: 5
            - action: switch.turn_off
              target: {entity_id: switch.ac}
    - action: light.turn_on
      target: {entity_id: light.lamp}
""")
    await rh.start()
    go(rh)
    await rh.clock.advance(6)
    assert [c[0] for c in rh.calls()] == ["switch.fan", "switch.ac"]  # the other branch still ran
    trace = rh.traces("both")[0]
    assert trace["outcome"] == "error" and "switch.fan" in trace["error"] and "relay did not answer" in trace["error"]
    assert rh.calls("turn_on", "light.lamp") == []  # the step after the parallel one did not run


async def test_for_each_bounds_and_a_templated_target_naming_a_missing_entity(rh):
    rh.write("""\
- id: too_many
  triggers: [{trigger: event, event_type: go}]
  actions:
    - repeat:
        for_each: [a, b, c]
        max_iterations: 2
        sequence: [{log: "{{ repeat.item }}"}]
- id: from_template
  triggers: [{trigger: event, event_type: go}]
  actions:
    - repeat:
        for_each: "{{ trigger.event.data.names }}"
        max_iterations: 2
        sequence:
          - action: switch.turn_on
            target: {entity_id: "switch.{{ repeat.item }}"}
- id: not_a_list
  triggers: [{trigger: event, event_type: go}]
  actions:
    - repeat:
        for_each: "{{ 'fan' }}"
        sequence: [{log: x}]
""")
    await rh.start()
    assert "too_many.actions[0].repeat" in issues(rh) and "for_each has 3 items" in issues(rh)
    go(rh, names=["fan", "nope"])
    await rh.clock.settle()
    trace = rh.traces("from_template")[0]
    assert trace["outcome"] == "error" and "unknown entity 'switch.nope'" in trace["error"], trace
    assert [c[0] for c in rh.calls("turn_on")] == ["switch.fan"]  # the first item ran
    assert "for_each must be a list" in rh.traces("not_a_list")[0]["error"]
    go(rh, names=["fan", "ac", "fan"])
    await rh.clock.settle()
    assert "above this repeat's limit of 2" in rh.traces("from_template")[-1]["error"]


async def test_a_templated_target_the_service_does_not_apply_to(rh):
    rh.write("""\
- id: wrong_kind
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: light.turn_on
      target: {entity_id: "{{ 'switch.fan' }}"}
""")
    await rh.start()
    go(rh)
    await rh.clock.settle()
    assert "switch.fan is a switch: light.turn_on does not apply to it" in rh.traces("wrong_kind")[0]["error"]
    assert rh.calls() == []


async def test_wait_template_is_checked_at_load(rh):
    rh.write("""\
- id: plain_text
  triggers: [{trigger: event, event_type: go}]
  actions:
    - wait_template: "is_state('switch.fan', 'on')"
- id: bad_syntax
  triggers: [{trigger: event, event_type: go}]
  actions:
    - wait_template: "{{ is_state('switch.fan', 'on') }"
      timeout: 10
- id: stray_key
  triggers: [{trigger: event, event_type: go}]
  actions:
    - wait_template: "{{ true }}"
      time_out: 10
""")
    await rh.start()
    text = issues(rh)
    assert "plain_text.actions[0].wait_template" in text and "wait_template is a template" in text
    assert "bad_syntax.actions[0].wait_template" in text
    assert "stray_key.actions[0].time_out" in text
    assert {r.id for r in rh.engine.rules.values() if r.rule is not None} == set()


async def test_wait_template_sees_the_runs_variables_and_stops_at_timeout(rh):
    rh.write("""\
- id: waits
  triggers: [{trigger: event, event_type: go}]
  variables: {target: switch.fan}
  actions:
    - wait_template: "{{ is_state(target, 'on') }}"
      timeout: 30
      continue_on_timeout: false
    - action: light.turn_on
      target: {entity_id: light.lamp}
""")
    await rh.start()
    go(rh)
    await rh.clock.advance(31)
    trace = rh.traces("waits")[0]
    assert trace["outcome"] == "stopped" and trace["error"] == "wait_template timed out"
    go(rh)
    await rh.clock.advance(10)
    await rh.hub.commands.call("switch.fan", "turn_on")
    await rh.clock.settle()
    assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {})]


async def test_a_run_paused_in_a_parallel_branch_is_not_resumed_after_a_restart(rh):
    rh.write("""\
- id: paused
  triggers: [{trigger: event, event_type: go}]
  actions:
    - delay: 10
    - parallel:
        - delay: 600
        - delay: 300
    - action: light.turn_on
      target: {entity_id: light.lamp}
""")
    await rh.start()
    go(rh)
    await rh.clock.advance(60)  # in the parallel step: the place saved for the first delay is dropped
    await rh.engine.flush()
    await rh.stop()
    again = RuleHub(rh.path, FakeScheduler(START + 120), Home())
    await again.start()
    try:
        await again.clock.advance(3600)
        assert again.calls() == []
        assert again.traces("paused") == []
    finally:
        await again.stop()


# --- numeric_state with value_template and entity bounds ---------------------------------------
# From https://www.home-assistant.io/docs/automation/trigger/#numeric-state-trigger ("value_template"
# with the state object, and "above"/"below" naming an input_number or another sensor) and
# https://www.home-assistant.io/docs/scripts/conditions/#numeric-state-condition.

async def test_numeric_state_trigger_with_value_template_and_an_entity_as_bound(rh):
    rh.write("""\
- id: attribute_by_template
  triggers:
    - trigger: numeric_state
      entity_id: sensor.temp
      value_template: "{{ state.attributes.battery }}"
      below: 25
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
- id: power_above_temp
  triggers:
    - trigger: numeric_state
      entity_id: sensor.power
      above: sensor.temp
  conditions:
    - condition: numeric_state
      entity_id: sensor.temp
      value_template: "{{ state.state | float(0) * 10 }}"
      below: sensor.power
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.ac}
""")
    await rh.start()
    assert rh.engine.issues == []
    rh.home.set("temp", 20.0, battery=40)
    rh.home.set("temp", 20.0, battery=30)
    await rh.clock.settle()
    assert rh.calls("turn_on", "switch.fan") == []
    rh.home.set("temp", 20.0, battery=20)  # crosses below 25
    await rh.clock.settle()
    assert len(rh.calls("turn_on", "switch.fan")) == 1
    rh.home.set("power", 10.0)
    await rh.clock.settle()
    rh.home.set("power", 150.0)  # above sensor.temp (20), and temp*10=200 is not below 150: the condition stops it
    await rh.clock.settle()
    assert rh.calls("turn_on", "switch.ac") == []
    rh.home.set("power", 10.0)
    await rh.clock.settle()
    rh.home.set("power", 250.0)  # crosses above 20 again, and now 200 < 250
    await rh.clock.settle()
    assert len(rh.calls("turn_on", "switch.ac")) == 1


async def test_numeric_state_bounds_and_templates_are_checked_at_load(rh):
    rh.write("""\
- id: unknown_bound
  triggers:
    - trigger: numeric_state
      entity_id: sensor.temp
      above: sensor.nope
  actions: [{log: x}]
- id: not_a_bound
  triggers:
    - trigger: numeric_state
      entity_id: sensor.temp
      above: "warm"
  actions: [{log: x}]
- id: bad_template
  triggers: [{trigger: event, event_type: go}]
  conditions:
    - condition: numeric_state
      entity_id: sensor.temp
      value_template: "{{ state.attributes.battery | }}"
      below: 10
  actions: [{log: x}]
""")
    await rh.start()
    text = issues(rh)
    assert "unknown_bound.triggers[0].above" in text and "sensor.nope" in text
    assert "'warm' is neither a number nor an entity id" in text
    assert "bad_template.conditions[0].value_template" in text


# --- variables on a trigger and trigger_variables ------------------------------------------------
# From https://www.home-assistant.io/docs/automation/trigger/#trigger-variables ("variables" on each
# trigger, rendered when it fires) and /docs/automation/trigger/#trigger-variables (trigger_variables).

async def test_each_trigger_brings_its_own_variables(rh):
    rh.write("""\
- id: per_trigger
  trigger_variables:
    room: hall
  triggers:
    - trigger: state
      entity_id: switch.fan
      to: "on"
      variables:
        target: switch.ac
        why: "fan went {{ trigger.to_state.state }}"
    - trigger: event
      event_type: go
      variables:
        target: light.lamp
        why: "asked"
  variables:
    message: "{{ room }}: {{ why }}"
  actions:
    - action: homeassistant.turn_on
      target: {entity_id: "{{ target }}"}
    - event: said
      event_data: {message: "{{ message }}"}
""")
    await rh.start()
    assert rh.engine.issues == []
    said = []
    rh.hub.bus.subscribe("said", lambda e: said.append(e.payload["message"]))
    await rh.hub.commands.call("switch.fan", "turn_on")
    await rh.clock.settle()
    go(rh)
    await rh.clock.settle()
    assert [c[0] for c in rh.calls("turn_on")] == ["switch.fan", "switch.ac", "light.lamp"]
    assert said == ["hall: fan went on", "hall: asked"]


async def test_variables_on_a_waited_trigger_are_refused(rh):
    rh.write("""\
- id: waits
  triggers: [{trigger: event, event_type: go}]
  actions:
    - wait_for_trigger:
        - trigger: event
          event_type: done
          variables: {x: 1}
""")
    await rh.start()
    assert "waits.actions[0].wait_for_trigger[0].variables" in issues(rh)
