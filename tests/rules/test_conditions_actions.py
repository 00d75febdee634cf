"""Conditions, actions and modes, as a user writes them in automations.yaml."""

import logging

from hub.core.events import CustomEvent

TRIGGER = """
          trigger:
            - trigger: event
              event_type: go
"""


def go(rh, **data):
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "go", data))


def rule(rule_id: str, body: str, mode: str = "") -> str:
    return f"""
        - id: {rule_id}
{('          mode: ' + mode) if mode else ''}
{TRIGGER}
{body}
"""


async def test_conditions_each_kind_and_their_verdicts_in_the_trace(rh):
    rh.write(rule("c", """
          condition:
            - condition: state
              entity_id: switch.ac
              state: ["on", "heat"]
            - condition: numeric_state
              entity_id: sensor.temp
              above: 10
              below: 25
            - condition: time
              after: "09:00"
              before: "17:00"
              weekday: [mon, tue, wed, thu, fri]
            - condition: or
              conditions:
                - "states('sensor.power') > 5000"
                - condition: not
                  conditions:
                    - condition: state
                      entity_id: light.lamp
                      state: "on"
            - condition: expression
              expression: "trigger.event.data.who == 'alice'"
          action:
            - log: passed
"""))
    await rh.start()
    go(rh, who="bob")
    go(rh, who="alice")
    await rh.clock.settle()
    bob, alice = rh.traces("c")
    assert bob["outcome"] == "condition_failed"
    assert [c["result"] for c in bob["conditions"]][-1] is False
    assert alice["outcome"] == "finished"
    assert {c["condition"] for c in alice["conditions"]} >= {"state", "numeric_state", "time", "or", "not", "expression"}
    rh.home.set("temp", 30.0)
    go(rh, who="alice")
    await rh.clock.settle()
    assert rh.traces("c")[-1]["outcome"] == "condition_failed"


async def test_time_condition_across_midnight_and_sun(rh):
    rh.write(rule("night", """
          condition:
            - condition: time
              after: "22:00"
              before: "06:00"
          action:
            - log: night
""") + rule("dark", """
          condition:
            - condition: sun
              after: sunset
              before: sunrise
          action:
            - log: dark
"""))
    await rh.start()  # 10:00 UTC, 1 January, Paris: day
    go(rh)
    await rh.clock.advance(13 * 3600)  # 23:00 UTC: night, and dark in Paris in January
    go(rh)
    await rh.clock.settle()
    assert [t["outcome"] for t in rh.traces("night")] == ["condition_failed", "finished"]
    assert [t["outcome"] for t in rh.traces("dark")] == ["condition_failed", "finished"]


async def test_an_expression_error_is_a_false_condition_with_its_reason(rh):
    rh.write(rule("bad_at_runtime", """
          condition: "states('switch.ac') > 5"
          action:
            - log: never
"""))
    await rh.start()
    go(rh)
    await rh.clock.settle()
    [trace] = rh.traces("bad_at_runtime")
    assert trace["outcome"] == "condition_failed"
    assert "'>' not supported" in trace["conditions"][0]["error"] or "position" in trace["conditions"][0]["error"]


async def test_call_several_entities_with_templated_args(rh):
    rh.write(rule("bright", """
          action:
            - call: light.turn_on
              entity_id: [light.lamp]
              args:
                brightness: "{{ trigger.event.data.level * 2 }}"
            - call: switch.turn_on
              entity_id: [switch.ac, switch.fan]
"""))
    await rh.start()
    go(rh, level=60)
    await rh.clock.settle()
    assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"brightness": 120})]
    assert {c[0] for c in rh.calls("turn_on")} == {"light.lamp", "switch.ac", "switch.fan"}
    rows = rh.hub.recorder  # the command log records who sent it
    await rows.flush()
    assert {r["source"] for r in rh.hub.store.command_log()} == {"rule:bright"}


async def test_delay_wait_for_and_timeout(rh):
    rh.write(rule("seq", """
          action:
            - call: light.turn_on
              entity_id: light.lamp
            - delay: "00:01:00"
            - wait_for:
                trigger:
                  - trigger: state
                    entity_id: binary_sensor.motion
                    to: "on"
                timeout: 120
                continue_on_timeout: false
            - call: light.turn_off
              entity_id: light.lamp
"""))
    await rh.start()
    go(rh)
    await rh.clock.advance(59)
    assert rh.calls("turn_on") and not rh.calls("turn_off")
    await rh.clock.advance(1)
    rh.home.set("motion", "on")
    await rh.clock.settle()
    assert len(rh.calls("turn_off")) == 1
    go(rh)
    await rh.clock.advance(60 + 120)  # nobody moves: the wait times out and the run stops
    trace = rh.traces("seq")[-1]
    assert trace["outcome"] == "stopped" and trace["error"] == "wait_for timed out"
    assert len(rh.calls("turn_off")) == 1


async def test_choose_repeat_stop_event_log(rh, caplog):
    rh.write(rule("flow", """
          action:
            - choose:
                - conditions:
                    - "trigger.event.data.n > 2"
                  sequence:
                    - repeat:
                        count: "{{ trigger.event.data.n }}"
                        sequence:
                          - event: step
                            event_data: {i: "{{ repeat.index }}", last: "{{ repeat.last }}"}
              default:
                - repeat:
                    until:
                      - "repeat.index >= 2"
                    sequence:
                      - event: step
                        event_data: {i: "{{ repeat.index }}"}
            - log: "done {{ trigger.event.data.n }}"
              level: warning
            - stop: enough
            - log: unreachable
"""))
    await rh.start()
    steps = []
    rh.hub.bus.subscribe("step", lambda e: steps.append(e.payload))
    with caplog.at_level(logging.WARNING, logger="hub.rules"):
        go(rh, n=3)
        await rh.clock.settle()
        go(rh, n=1)
        await rh.clock.settle()
    assert steps == [{"i": 1, "last": False}, {"i": 2, "last": False}, {"i": 3, "last": True}, {"i": 1}, {"i": 2}]
    assert "done 3" in caplog.text and "unreachable" not in caplog.text
    first, second = rh.traces("flow")
    assert first["outcome"] == "stopped" and first["error"] == "enough"
    assert first["steps"][0]["result"] == {"choice": 0} and second["steps"][0]["result"] == {"choice": "default"}


async def test_condition_inside_a_sequence_stops_quietly(rh):
    rh.write(rule("gate", """
          action:
            - call: switch.turn_on
              entity_id: switch.fan
            - condition: state
              entity_id: switch.ac
              state: "off"
            - call: switch.turn_off
              entity_id: switch.fan
"""))
    await rh.start()
    go(rh)
    await rh.clock.settle()
    assert rh.calls("turn_on") and not rh.calls("turn_off")
    assert rh.traces("gate")[0]["outcome"] == "stopped"


async def test_a_failing_action_is_in_the_trace_and_other_rules_run(rh):
    rh.write(rule("breaks", """
          action:
            - call: switch.turn_on
              entity_id: switch.fan
            - call: switch.turn_on
              entity_id: switch.ac
""") + rule("tolerant", """
          action:
            - call: switch.turn_on
              entity_id: [switch.fan, switch.ac]
              continue_on_error: true
            - log: still here
""") + rule("other", """
          action:
            - call: light.turn_on
              entity_id: light.lamp
"""))
    await rh.start()
    rh.home.fail_on = {"switch.fan"}
    go(rh)
    await rh.clock.settle()
    broken = rh.traces("breaks")[0]
    assert broken["outcome"] == "error" and "relay did not answer" in broken["error"]
    assert "action/0" in broken["error"] and len(broken["steps"]) == 1
    tolerant = rh.traces("tolerant")[0]
    assert tolerant["outcome"] == "finished" and "switch.fan" in tolerant["steps"][0]["result"]["errors"][0]
    assert rh.traces("other")[0]["outcome"] == "finished" and rh.calls("turn_on", "light.lamp")


async def test_modes(rh):
    body = """
          action:
            - event: started
              event_data: {n: "{{ trigger.event.data.n }}"}
            - delay: 10
            - event: ended
              event_data: {n: "{{ trigger.event.data.n }}"}
"""
    rh.write(rule("single", body, "single") + rule("restart", body, "restart") + rule("queued", body, "queued\n          max: 1")
             + rule("parallel", body, "parallel\n          max: 2"))
    await rh.start()
    seen = []
    rh.hub.bus.subscribe("*", lambda e: e.event_type in ("started", "ended") and seen.append(e))
    for n in (1, 2, 3):
        go(rh, n=n)
        await rh.clock.advance(1)
    await rh.clock.advance(60)
    outcome = {rid: [t["outcome"] for t in rh.traces(rid)] for rid in ("single", "restart", "queued", "parallel")}
    assert outcome["single"] == ["finished", "skipped", "skipped"]
    assert outcome["restart"] == ["cancelled", "cancelled", "finished"]
    assert outcome["queued"] == ["finished", "finished", "skipped"]  # max 1 waiting
    assert outcome["parallel"] == ["finished", "finished", "skipped"]
    assert "already running" in rh.traces("single")[1]["error"]
