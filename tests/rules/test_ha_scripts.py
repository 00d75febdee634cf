"""Home Assistant's scripts (scripts.yaml) on the fake home, on a simulated clock.

The scripts are the examples of HA's script integration page
(https://www.home-assistant.io/integrations/script/): "Full configuration" (``wakeup``), "Passing
variables to scripts" (``notify_pushover``, called directly and with ``script.turn_on``) and
"Waiting for Script to Complete" (``script_1`` starting ``script_2`` without waiting), with the fake
home's entities in place of HA's groups (``group.bedroom`` is ``light.lamp``, the living room is
``switch.fan``, ``switch.pushover_notifications`` is ``switch.ac``).
"""

from __future__ import annotations

from hub.core.events import CustomEvent
from tests.rules.conftest import START, Home, RuleHub
from hub.testing import FakeScheduler

WAKEUP = """\
wakeup:
  alias: "Wake Up"
  icon: "mdi:party-popper"
  description: "Turns on the bedroom lights and then the living room lights after a delay"
  variables:
    turn_on_entity: switch.fan
  fields:
    minutes:
      name: Minutes
      description: "The amount of time to wait before turning on the living room lights"
      selector:
        number:
          min: 0
          max: 60
          step: 1
          unit_of_measurement: minutes
          mode: slider
  # If called again while still running (probably in delay step), start over.
  mode: restart
  sequence:
    # This is Home Assistant Script Syntax
    - event: LOGBOOK_ENTRY
      event_data:
        name: Paulus
        message: is waking up
        entity_id: "{{ turn_on_entity }}"
        domain: light
    - alias: "Bedroom lights on"
      action: light.turn_on
      target:
        entity_id: light.lamp
      data:
        brightness: 100
    - delay:
        # supports seconds, milliseconds, minutes, hours
        minutes: "{{ minutes }}"
    - alias: "Living room lights on"
      action: switch.turn_on
      target:
        entity_id: switch.fan
"""

PUSHOVER = """\
notify_pushover:
  description: "Send a pushover notification"
  fields:
    title:
      description: "The title of the notification"
      example: "State change"
    message:
      description: "The message content"
      example: "The light is on!"
      required: true
  sequence:
    - condition: state
      entity_id: switch.ac
      state: "on"
    - action: notify.pushover
      data:
        title: "{{ title }}"
        message: "{{ message }}"
"""

SCRIPT_1_2 = """\
script_1:
  sequence:
    - action: script.turn_on
      target:
        entity_id: script.script_2
    # Perform some other steps here while second script runs...
    - action: switch.turn_on
      target: {entity_id: switch.fan}
script_2:
  sequence:
    - delay: 30
    - action: light.turn_on
      target: {entity_id: light.lamp}
"""


def event(rh, name: str, **data) -> None:
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), name, data))


def on_event(name: str, action: str) -> str:
    return f"""
- id: {name}
  triggers:
    - trigger: event
      event_type: {name}
  actions:
{action}
"""


async def test_wakeup_from_the_docs_waits_its_minutes_and_restarts_when_called_again(rh):
    rh.write(WAKEUP, "scripts.yaml")
    rh.write(on_event("wake", """\
    - action: script.wakeup
      data:
        minutes: 2
    - action: switch.turn_off
      target: {entity_id: switch.ac}"""))
    await rh.start()
    assert not rh.hub.rules.issues
    logbook = []
    rh.hub.bus.subscribe("LOGBOOK_ENTRY", logbook.append)
    event(rh, "wake")
    await rh.clock.advance(1)
    assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"brightness": 100})]
    assert logbook[0].payload["entity_id"] == "switch.fan"  # the script's variables see its fields
    assert rh.calls("turn_off", "switch.ac") == []  # the rule waits for the script, as HA's direct call does
    await rh.clock.advance(60)
    assert rh.calls("turn_on", "switch.fan") == []
    await rh.clock.advance(61)
    assert rh.calls("turn_on", "switch.fan") == [("switch.fan", "turn_on", {})]
    assert rh.calls("turn_off", "switch.ac") == [("switch.ac", "turn_off", {})]
    [run] = rh.traces("script:wakeup")
    assert run["outcome"] == "finished" and [s["action"] for s in run["steps"]] == ["event", "service", "delay", "service"]
    [rule_run] = rh.traces("wake")
    assert rule_run["steps"][0]["result"] == {"script": "wakeup", "run_id": run["run_id"], "outcome": "finished"}

    # mode: restart: called again during its delay, it starts over
    runner = rh.hub.rules.scripts
    runner.start("wakeup", {"minutes": 1})
    await rh.clock.advance(30)
    runner.start("wakeup", {"minutes": 1})
    await rh.clock.advance(45)
    assert len(rh.calls("turn_on", "switch.fan")) == 1  # the first run was cancelled
    await rh.clock.advance(20)
    assert len(rh.calls("turn_on", "switch.fan")) == 2
    assert [t["outcome"] for t in rh.traces("script:wakeup")] == ["finished", "cancelled", "finished"]


async def test_pushover_from_the_docs_called_directly_and_with_turn_on(rh):
    rh.write(PUSHOVER, "scripts.yaml")
    rh.write(on_event("direct", """\
    - action: script.notify_pushover
      data:
        title: "State change"
        message: "The light is on!\"""") + on_event("started", """\
    - action: script.turn_on
      target:
        entity_id: script.notify_pushover
      data:
        variables:
          title: "Temperature"
          message: "{{ 'temp ' ~ states('sensor.temp') }}\""""))
    await rh.start()
    assert not rh.hub.rules.issues
    notes = []
    rh.hub.bus.subscribe("notify", notes.append)
    event(rh, "direct")
    await rh.clock.advance(1)
    event(rh, "started")
    await rh.clock.advance(1)
    assert [n.payload for n in notes] == [
        {"service": "notify.pushover", "message": "The light is on!", "title": "State change"},
        {"service": "notify.pushover", "message": "temp 20.0", "title": "Temperature"},
    ]


async def test_turn_on_does_not_wait_for_the_script(rh):
    rh.write(SCRIPT_1_2, "scripts.yaml")
    await rh.start()
    assert not rh.hub.rules.issues
    run = rh.hub.rules.scripts.start("script_1", {})
    await rh.clock.advance(1)
    assert run.done.done() and run.trace.outcome == "finished"
    assert rh.calls("turn_on", "switch.fan") and not rh.calls("turn_on", "light.lamp")
    assert rh.traces("script:script_2")[0]["outcome"] == "running"
    await rh.clock.advance(30)
    assert rh.calls("turn_on", "light.lamp")
    assert rh.traces("script:script_2")[0]["outcome"] == "finished"


FIELDS = """\
greet:
  fields:
    who: {description: Whom to greet, required: true}
    times: {default: 2}
  sequence:
    - repeat:
        count: "{{ times }}"
        sequence:
          - event: greeted
            event_data: {who: "{{ who }}"}
"""


async def test_fields_are_checked_at_load_with_line_and_key(rh):
    rh.write(FIELDS, "scripts.yaml")
    path = rh.write("""\
- id: typo
  triggers: [{trigger: event, event_type: x}]
  actions:
    - action: script.greet
      data:
        who: Ann
        tims: 3
- id: missing
  triggers: [{trigger: event, event_type: x}]
  actions:
    - action: script.greet
      data: {times: 1}
- id: unknown
  triggers: [{trigger: event, event_type: x}]
  actions:
    - action: script.gret
- id: turn_on_typo
  triggers: [{trigger: event, event_type: x}]
  actions:
    - action: script.turn_on
      target: {entity_id: script.greet}
      data: {variables: {whom: Ann}}
- id: good
  triggers: [{trigger: event, event_type: x}]
  actions:
    - action: script.greet
      data: {who: Ann}
""")
    await rh.start()
    text = [str(i) for i in rh.hub.rules.issues]
    assert any(t.startswith(f"{path}:7:") and "typo.actions[0].data.tims: script.greet has no field 'tims'; its fields: who, times" in t
               for t in text), text
    assert any(f"{path}:12:" in t and "missing.actions[0].data: script.greet needs its required field 'who'" in t for t in text), text
    assert any(f"{path}:16:" in t and "unknown.actions[0].action: unknown script 'gret'; known: greet" in t for t in text), text
    assert any("turn_on_typo.actions[0].data.variables.whom: script.greet has no field 'whom'" in t for t in text), text
    assert any("turn_on_typo.actions[0].data.variables: script.greet needs its required field 'who'" in t for t in text)
    assert rh.engine.rules["good"].rule is not None and len(text) == 5
    greeted = []
    rh.hub.bus.subscribe("greeted", greeted.append)
    event(rh, "x")
    await rh.clock.advance(1)
    assert [e.payload for e in greeted] == [{"who": "Ann"}, {"who": "Ann"}]  # times: its default, 2


async def test_a_templated_call_missing_a_required_field_fails_the_run_naming_it(rh):
    rh.write(FIELDS, "scripts.yaml")
    rh.write(on_event("go", """\
    - action: script.turn_on
      target: {entity_id: script.greet}
      data:
        variables: "{{ {'times': 1} }}"
    - action: switch.turn_on
      target: {entity_id: switch.fan}"""))
    await rh.start()
    assert not rh.hub.rules.issues
    event(rh, "go")
    await rh.clock.advance(1)
    [run] = rh.traces("go")
    assert run["outcome"] == "error" and "script.greet needs its required field 'who'" in run["error"]
    assert not rh.calls("turn_on", "switch.fan")


async def test_a_bad_script_is_refused_at_its_line_and_the_others_load(rh):
    path = rh.write("""\
good:
  sequence:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
bad:
  sequence:
    - action: light.turn_on
      target: {entity_id: light.nope}
calls_bad:
  sequence:
    - action: script.bad
Bad-Name:
  sequence: [{delay: 1}]
""", "scripts.yaml")
    rh.write(on_event("go", """\
    - action: script.calls_bad"""))
    await rh.start()
    text = [str(i) for i in rh.hub.rules.issues]
    assert any(t.startswith(f"{path}:8:") and "bad.sequence[0].target.entity_id: unknown entity 'light.nope'" in t for t in text), text
    assert any("calls_bad.sequence[0].action: script.bad did not load" in t for t in text), text
    assert any("'Bad-Name' is not a script id" in t for t in text), text
    assert any("go.actions[0].action: script.calls_bad did not load" in t for t in text), text
    runner = rh.hub.rules.scripts
    assert runner.loaded["good"].rule is not None and runner.loaded["bad"].rule is None
    assert "good" not in rh.engine.rules and "script:good" not in rh.engine.rules  # scripts are not rules


async def test_a_script_calling_itself_is_an_error_in_its_trace(rh):
    rh.write("""\
ping:
  mode: parallel
  sequence:
    - action: script.pong
pong:
  mode: queued
  sequence:
    - action: script.ping
loop:
  sequence:
    - action: script.turn_on
      target: {entity_id: script.loop}
""", "scripts.yaml")
    await rh.start()
    assert not rh.hub.rules.issues
    runner = rh.hub.rules.scripts
    run = runner.start("ping", {})
    await rh.clock.advance(1)
    assert run.trace.outcome == "error"
    assert "script.ping calls itself (ping -> pong -> ping): not run" in run.trace.error
    loop = runner.start("loop", {})
    await rh.clock.advance(1)
    assert loop.trace.outcome == "error" and "calls itself (loop -> loop)" in loop.trace.error
    assert not runner.running("ping") and not runner.running("pong") and not runner.running("loop")


async def test_single_mode_already_running_logs_and_the_caller_goes_on_and_turn_off_stops_it(rh, caplog):
    rh.write("""\
slow:
  sequence:
    - delay: 600
    - action: switch.turn_on
      target: {entity_id: switch.fan}
""", "scripts.yaml")
    rh.write(on_event("start", """\
    - action: script.turn_on
      target: {entity_id: script.slow}""") + on_event("call", """\
    - action: script.slow
    - action: light.turn_on
      target: {entity_id: light.lamp}""") + on_event("stop", """\
    - action: script.turn_off
      target: {entity_id: script.slow}"""))
    await rh.start()
    assert not rh.hub.rules.issues
    event(rh, "start")
    await rh.clock.advance(1)
    event(rh, "call")
    await rh.clock.advance(1)
    assert rh.calls("turn_on", "light.lamp")  # did not wait for the run it could not start
    assert "script.slow: already running (mode: single)" in caplog.text
    assert [t["outcome"] for t in rh.traces("script:slow")] == ["running", "skipped"]
    event(rh, "stop")
    await rh.clock.advance(1)
    assert rh.traces("script:slow")[0]["outcome"] == "cancelled"
    await rh.clock.advance(700)
    assert not rh.calls("turn_on", "switch.fan")


async def test_a_delay_of_a_script_started_by_turn_on_survives_a_restart(rh):
    rh.write("""\
later:
  fields:
    what:   # a field with nothing said about it, as HA allows
  sequence:
    - delay: "00:10:00"
    - event: done
      event_data: {what: "{{ what }}"}
""", "scripts.yaml")
    rh.write(on_event("kettle", """\
    - action: script.turn_on
      target: {entity_id: script.later}
      data: {variables: {what: kettle}}"""))
    await rh.start()
    event(rh, "kettle")
    await rh.clock.advance(240)
    await rh.stop()
    again = RuleHub(rh.path, FakeScheduler(START + 300), Home())
    await again.start()
    try:
        done = []
        again.hub.bus.subscribe("done", done.append)
        await again.clock.advance(290)
        assert done == []
        await again.clock.advance(20)
        assert [e.payload for e in done] == [{"what": "kettle"}]
        assert again.traces("script:later")[-1]["trigger_description"] == "resumed after a restart"
    finally:
        await again.stop()


async def test_reload_keeps_an_unchanged_scripts_run_and_stops_a_changed_one(rh):
    rh.write("""\
a:
  sequence: [{delay: 100}, {event: a_done}]
b:
  sequence: [{delay: 100}, {event: b_done}]
""", "scripts.yaml")
    await rh.start()
    seen = []
    rh.hub.bus.subscribe("a_done", seen.append)
    rh.hub.bus.subscribe("b_done", seen.append)
    rh.hub.rules.scripts.start("a", {})
    rh.hub.rules.scripts.start("b", {})
    await rh.clock.advance(10)
    rh.write("""\
a:
  sequence: [{delay: 100}, {event: a_done}]
b:
  sequence: [{delay: 50}, {event: b_done}]
""", "scripts.yaml")
    await rh.hub.reload_rules()
    await rh.clock.advance(100)
    assert [e.name for e in seen] == ["a_done"]


async def test_example_script_of_the_script_syntax_page(rh):
    """https://www.home-assistant.io/docs/scripts/: the page's first example, "Turned on the ceiling
    light!" (light.ceiling is light.lamp)."""
    rh.write("""\
example_script:
  sequence:
    # This is written using the Script Syntax
    - action: light.turn_on
      target:
        entity_id: light.lamp
    - action: notify.notify
      data:
        message: "Turned on the ceiling light!"
""", "scripts.yaml")
    await rh.start()
    assert not rh.hub.rules.issues
    notes = []
    rh.hub.bus.subscribe("notify", notes.append)
    run = rh.hub.rules.scripts.start("example_script", {})
    await rh.clock.advance(1)
    assert run.trace.outcome == "finished" and rh.calls("turn_on", "light.lamp")
    assert [n.payload["message"] for n in notes] == ["Turned on the ceiling light!"]


FAILING = """\
broken:
  sequence:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
    - stop: "no coffee"
      error: true
slow:
  mode: queued
  sequence:
    - delay: 100
    - event: slow_done
"""


async def test_a_failing_script_fails_its_caller_unless_continue_on_error(rh):
    rh.write(FAILING, "scripts.yaml")
    rh.write(on_event("strict", """\
    - action: script.broken
    - action: light.turn_on
      target: {entity_id: light.lamp}""") + on_event("lenient", """\
    - action: script.broken
      continue_on_error: true
    - action: light.turn_on
      target: {entity_id: light.lamp}"""))
    await rh.start()
    assert not rh.hub.rules.issues
    event(rh, "strict")
    await rh.clock.advance(1)
    [run] = rh.traces("strict")
    assert run["outcome"] == "error" and "script.broken failed: no coffee" in run["error"]
    assert not rh.calls("turn_on", "light.lamp")
    event(rh, "lenient")
    await rh.clock.advance(1)
    assert rh.traces("lenient")[0]["outcome"] == "finished" and rh.calls("turn_on", "light.lamp")


async def test_queued_callers_each_wait_for_their_own_run_and_a_stopped_caller_stops_it(rh):
    rh.write(FAILING, "scripts.yaml")
    rh.write(on_event("call", """\
    - action: script.slow
    - event: caller_done""").replace("- id: call", "- id: call\n  mode: parallel"))
    await rh.start()
    assert not rh.hub.rules.issues
    seen = []
    rh.hub.bus.subscribe("slow_done", seen.append)
    rh.hub.bus.subscribe("caller_done", seen.append)
    event(rh, "call")
    await rh.clock.advance(1)
    event(rh, "call")
    await rh.clock.advance(1)
    await rh.clock.advance(100)
    assert [e.name for e in seen] == ["slow_done", "caller_done"]  # the second caller waits for its queued run
    await rh.clock.advance(100)
    assert [e.name for e in seen] == ["slow_done", "caller_done", "slow_done", "caller_done"]

    event(rh, "call")
    await rh.clock.advance(10)
    rh.hub.rules.set_enabled("call", False)
    await rh.clock.advance(200)
    assert len(seen) == 4  # the caller was stopped, and with it the run it waited for, as in HA
    assert rh.traces("script:slow")[-1]["outcome"] == "cancelled"


async def test_toggle_starts_a_stopped_script_and_stops_a_running_one(rh):
    rh.write(FAILING, "scripts.yaml")
    rh.write(on_event("toggle", """\
    - action: script.toggle
      target: {entity_id: script.slow}"""))
    await rh.start()
    runner = rh.hub.rules.scripts
    event(rh, "toggle")
    await rh.clock.advance(1)
    assert runner.running("slow")
    event(rh, "toggle")
    await rh.clock.advance(1)
    assert not runner.running("slow")
    assert [t["outcome"] for t in rh.traces("script:slow")] == ["cancelled"]


async def test_a_scripts_response_reaches_the_callers_response_variable(rh):
    """HA's script responses (https://www.home-assistant.io/docs/scripts/#stopping-a-script-sequence):
    the script's ``stop`` with ``response_variable``, the caller's ``response_variable``."""
    rh.write("""\
reading:
  fields:
    sensor: {required: true}
  sequence:
    - variables:
        result:
          value: "{{ states(sensor) }}"
          warm: "{{ states(sensor) | float(0) > 18 }}"
    - stop: "done"
      response_variable: result
""", "scripts.yaml")
    rh.write(on_event("ask", """\
    - action: script.reading
      data: {sensor: sensor.temp}
      response_variable: answer
    - event: answered
      event_data: {value: "{{ answer.value }}", warm: "{{ answer.warm }}"}""") + """
- id: bad_response
  triggers: [{trigger: event, event_type: x}]
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
      response_variable: nothing
""")
    await rh.start()
    assert [str(i).split(": ", 1)[1] for i in rh.hub.rules.issues] == [
        "bad_response.actions[0].response_variable: switch.turn_on gives no response: only a script call (script.x) does"]
    answered = []
    rh.hub.bus.subscribe("answered", answered.append)
    event(rh, "ask")
    await rh.clock.advance(1)
    assert [e.payload for e in answered] == [{"value": 20.0, "warm": True}]


async def test_an_api_wait_on_a_long_script_answers_that_it_still_runs(rh, monkeypatch):
    """``?wait=true`` is bounded: a script paused in a long delay is answered as running (the CLI's
    client would otherwise time out), and the run goes on."""
    import httpx

    from hub.api import scripts as scripts_api
    from hub.api.app import create_app

    monkeypatch.setattr(scripts_api, "MAX_SCRIPT_WAIT", 0.2)
    rh.write("""\
long_one:
  sequence:
    - delay: 600
    - action: switch.turn_on
      target: {entity_id: switch.fan}
""", "scripts.yaml")
    hub = await rh.start()
    transport = httpx.ASGITransport(app=create_app(hub))
    token = hub.ensure_owner_token().read_text().strip()
    async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        answer = await client.post("/api/scripts/long_one?wait=true", json={})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outcome"] == "running" and "still running after 0.2 s" in body["note"]
    await rh.clock.advance(601)
    assert rh.calls("turn_on", "switch.fan") == [("switch.fan", "turn_on", {})]
