"""What one rule may cost the hub: loops stop at their limit, traces keep a bounded head and tail,
a removed rule's runs and traces go, and oversized text is refused naming its key."""

import logging

import pytest
from pydantic import BaseModel

from hub import hookimpl
from hub.core.events import CustomEvent
from hub.rules import trace as trace_module
from hub.rules.model import DEFAULT_MAX_ITERATIONS, MAX_TEXT
from hub.runtime import Hub
from tests.rules.conftest import Home, RuleHub

TRIGGER = """
          trigger:
            - trigger: event
              event_type: go
"""


def go(rh, **data):
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "go", data))


async def run_until_done(rh, rule_id: str, rounds: int = 200) -> dict:
    for _ in range(rounds):
        await rh.clock.settle(100)
        traces = rh.traces(rule_id)
        if traces and traces[-1]["outcome"] != "running":
            return traces[-1]
    raise AssertionError(f"{rule_id} still running: {rh.traces(rule_id)[-1]['outcome']}")


async def test_a_loop_that_never_ends_stops_at_its_limit_with_a_bounded_trace(rh, caplog):
    rh.write(f"""
        - id: forever
{TRIGGER}
          action:
            - repeat:
                while: ["True"]
                max_iterations: 500
                sequence:
                  - event: tick
                    event_data: {{i: "{{{{ repeat.index }}}}"}}
""")
    await rh.start()
    ticks = []
    rh.hub.bus.subscribe("tick", lambda e: ticks.append(e.payload["i"]))
    with caplog.at_level(logging.WARNING, logger="hub.rules"):
        go(rh)
        trace = await run_until_done(rh, "forever")
    assert len(ticks) == 500 and ticks[-1] == 500
    assert trace["outcome"] == "error" and "limit of 500 iterations" in trace["error"]
    assert "max_iterations" in trace["error"] and "limit of 500 iterations" in caplog.text
    head, tail = trace_module.HEAD, trace_module.TAIL
    # the repeat step, then 500 event steps: the first and last are kept, the rest counted
    assert len(trace["steps"]) == head + tail
    assert trace["steps_dropped"] == 501 - head - tail and trace["steps_dropped_at"] == head
    assert trace["steps"][1]["result"]["data"] == {"i": 1}
    assert trace["steps"][-1]["result"]["data"] == {"i": 500}
    # the while condition is checked 501 times: its verdicts are bounded the same way
    assert len(trace["conditions"]) == head + tail and trace["conditions_dropped"] == 501 - head - tail


async def test_a_loop_that_ends_by_itself_at_the_limit_finishes(rh):
    rh.write(f"""
        - id: exact_while
{TRIGGER}
          action:
            - repeat:
                while: ["repeat.index <= 300"]
                max_iterations: 300
                sequence: [{{event: tick}}]
        - id: exact_until
{TRIGGER}
          action:
            - repeat:
                until: ["repeat.index >= 300"]
                max_iterations: 300
                sequence: [{{event: tick}}]
""")
    await rh.start()
    go(rh)
    assert (await run_until_done(rh, "exact_while"))["outcome"] == "finished"
    assert (await run_until_done(rh, "exact_until"))["outcome"] == "finished"


async def test_the_default_limit_and_a_count_above_it(rh):
    rh.write(f"""
        - id: literal
{TRIGGER}
          action:
            - repeat:
                count: 1000000000
                sequence: [{{event: tick}}]
        - id: templated
{TRIGGER}
          action:
            - repeat:
                count: "{{{{ trigger.event.data.n }}}}"
                sequence: [{{event: tick}}]
        - id: raised
{TRIGGER}
          action:
            - repeat:
                count: 20000
                max_iterations: 20000
                sequence: [{{condition: expression, expression: "repeat.index < 3"}}]
""")
    await rh.start()
    literal = rh.engine.rules["literal"]
    assert literal.rule is None
    [issue] = literal.issues
    assert "literal.action[0].repeat" in str(issue) and "count 1000000000 is above the limit of 10000" in str(issue)
    assert "max_iterations: 1000000000" in str(issue)
    assert rh.engine.rules["raised"].rule is not None

    ticks = []
    rh.hub.bus.subscribe("tick", lambda e: ticks.append(1))
    go(rh, n=DEFAULT_MAX_ITERATIONS + 1)
    trace = await run_until_done(rh, "templated")
    assert ticks == [] and trace["outcome"] == "error"
    assert f"count {DEFAULT_MAX_ITERATIONS + 1} is above this repeat's limit of {DEFAULT_MAX_ITERATIONS}" in trace["error"]


async def test_a_removed_rule_is_cancelled_and_its_traces_released(rh):
    rh.write(f"""
        - id: busy
{TRIGGER}
          action:
            - repeat:
                while: ["True"]
                sequence: [{{delay: 1}}]
""")
    await rh.start()
    go(rh)
    await rh.clock.advance(5)
    lr = rh.engine.rules["busy"]
    [run] = lr.runs
    assert rh.traces("busy")[-1]["outcome"] == "running"
    rh.write("[]\n")
    summary = await rh.hub.reload_rules()
    await rh.clock.settle()
    assert summary["removed"] == ["busy"]
    assert run.task.cancelled() and not lr.runs
    assert rh.engine.traces.for_rule("busy") == []


async def test_traces_per_rule_are_bounded(rh):
    rh.write(f"""
        - id: often
{TRIGGER}
          action: [{{event: tick}}]
""")
    await rh.start()
    for _ in range(trace_module.TRACES_PER_RULE + 5):
        go(rh)
        await rh.clock.settle()
    assert len(rh.traces("often")) == trace_module.TRACES_PER_RULE


async def test_large_step_results_are_shortened_in_the_trace(rh):
    rh.write(f"""
        - id: chatty
{TRIGGER}
          action:
            - log: "{{{{ 'x' * 9000 }}}}"
""")
    await rh.start()
    go(rh)
    await rh.clock.settle()
    [trace] = rh.traces("chatty")
    result = trace["steps"][0]["result"]
    assert isinstance(result, str) and result.endswith("characters, shortened)")
    assert len(result) < trace_module.MAX_RESULT_CHARS + 100


async def test_template_output_and_durations_are_bounded(rh):
    rh.write(f"""
        - id: long_text
{TRIGGER}
          action:
            - log: "{{{{ 'a' * 6000 }}}} and {{{{ 'b' * 6000 }}}}"
        - id: joined
{TRIGGER}
          action:
            - log: "{{{{ 'a' * 6000 + 'b' * 6000 }}}}"
        - id: forever_delay
{TRIGGER}
          action:
            - delay: "{{{{ 10 ** 12 }}}}"
        - id: long_for
          trigger:
            - trigger: state
              entity_id: switch.ac
              to: "off"
              for: {{days: 400}}
          action: [{{event: tick}}]
""")
    await rh.start()
    go(rh)
    await rh.clock.settle()
    assert "over 10000 characters" in rh.traces("long_text")[-1]["error"]
    assert "too long (12000 items" in rh.traces("joined")[-1]["error"]
    assert "a duration is at most 366 days" in rh.traces("forever_delay")[-1]["error"]
    [issue] = rh.engine.rules["long_for"].issues
    assert "long_for.trigger[0].for" in str(issue) and "at most 366 days" in str(issue)


@pytest.mark.parametrize("where, text, key", [
    ("description", "d" * (MAX_TEXT + 1), "big.description"),
    ("alias", "a" * 256, "big.alias"),
    ("log", "l" * (MAX_TEXT + 1), "big.action[0].log"),
    ("args", "v" * (MAX_TEXT + 1), "big.action[0].data.message"),
    ("trigger_id", "t" * 256, "big.trigger[0].id"),
])
async def test_every_text_field_is_bounded_and_named(rh, where, text, key):
    description = f"description: {text}" if where == "description" else ""
    alias = f"alias: {text}" if where == "alias" else ""
    trigger_id = f"id: {text}" if where == "trigger_id" else ""
    action = {
        "log": f"- log: {text}",
        "args": f"- event: note\n              event_data: {{message: {text}}}",
    }.get(where, "- event: tick")
    rh.write(f"""
        - id: big
          {description}
          {alias}
          trigger:
            - trigger: event
              event_type: go
              {trigger_id}
          action:
            {action}
""")
    await rh.start()
    lr = rh.engine.rules["big"]
    assert lr.rule is None
    messages = [str(i) for i in lr.issues]
    key = key.replace("data.message", "event_data.message")
    assert any(key in m and "at most" in m for m in messages), messages


async def test_a_yaml_alias_bomb_is_refused_not_expanded(rh):
    levels = "\n".join(f"            l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}]"
                       for i in range(1, 9))
    rh.write(f"""
        - id: bomb
          x:
            l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]
{levels}
{TRIGGER}
          action: [{{event: tick}}]
""")
    await rh.start()
    messages = [str(i) for i in rh.engine.rules["bomb"].issues]
    assert any("the rule is too large: more than 20000 values" in m for m in messages), messages


async def test_a_rules_file_over_the_size_limit_is_refused_by_name(rh, monkeypatch):
    from hub.rules import loader

    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 1000)
    path = rh.write("# " + "padding " * 200 + "\n- id: r\n" + TRIGGER + "          action: [{event: tick}]\n")
    await rh.start()
    assert "r" not in rh.engine.rules
    [issue] = rh.engine.issues
    assert str(path) in str(issue) and "a rules file may have at most 1000" in str(issue)


class FlakyTrigger:
    """A plugin trigger type that cannot be armed."""

    class Config(BaseModel):
        pass

    @hookimpl
    def hub_rule_triggers(self, register):
        def attach(config, fire):
            raise RuntimeError("radio is off")

        register("flaky", self.Config, attach)


async def test_a_wait_for_that_cannot_arm_leaves_no_listener_behind(tmp_path, clock):
    (tmp_path / "configuration.yaml").write_text("hub: {time_zone: UTC}\n")
    rh = RuleHub(tmp_path, clock, Home())
    rh.write(f"""
        - id: waits
{TRIGGER}
          action:
            - wait_for:
                trigger:
                  - trigger: state
                    entity_id: switch.fan
                  - trigger: flaky
""")
    rh.hub = Hub(tmp_path, scheduler=clock, entrypoints=False)
    rh.hub.plugins.register("home", rh.home)
    rh.hub.plugins.register("flaky", FlakyTrigger())
    await rh.hub.start()
    try:
        await clock.settle()
        go(rh)
        await clock.settle()
        [trace] = rh.traces("waits")
        assert trace["outcome"] == "error" and "radio is off" in trace["error"]
        assert "switch.fan" not in rh.engine._index
    finally:
        await rh.hub.stop()
