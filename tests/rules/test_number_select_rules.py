"""Rules and the number and select capabilities: ``call`` actions to their commands, checked against
the entity's own range and options when the rule loads, and numeric_state triggers on a number."""

from __future__ import annotations

import pytest

from hub import hookimpl
from hub.core.events import CustomEvent
from hub.devices import Device, EntitySpec
from hub.testing import FakeScheduler
from tests.rules.conftest import START, RuleHub


class Boiler:
    """A set-point, a mode and a switch that rules act on; it applies what it is sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.h = {}

    @hookimpl
    def hub_discover(self, hub):
        self.h = hub.add_device(Device(id="boiler", name="Boiler"), [
            EntitySpec(key="sp", capability="number", device_class="temperature", object_id="set_point",
                       options={"min": 30, "max": 75, "step": 0.5}),
            EntitySpec(key="mode", capability="select", object_id="mode",
                       options={"options": ["eco", "comfort", "boost"]}),
            EntitySpec(key="pump", capability="switch", object_id="pump"),
        ])
        self.h["sp"].set(50.0)
        self.h["mode"].set("comfort")
        self.h["pump"].set("off")

    @hookimpl
    def hub_handle_command(self, entity, command, args):
        self.calls.append((entity.entity_id, command, args.model_dump()))
        if command == "set_value":
            entity.set(args.value)
        elif command == "select_option":
            entity.set(args.option)
        else:
            entity.set("on" if command == "turn_on" else "off")


@pytest.fixture
async def rh(tmp_path):
    (tmp_path / "configuration.yaml").write_text("hub: {time_zone: UTC, commit_interval: 0.01}\n")
    helper = RuleHub(tmp_path, FakeScheduler(START), Boiler())
    yield helper
    await helper.stop()


RULES = """
- id: boost_when_hot
  trigger:
    - trigger: numeric_state
      entity_id: number.set_point
      above: 60
  action:
    - call: select.select_option
      entity_id: select.mode
      args: {option: boost}
    - call: switch.turn_on
      entity_id: switch.pump
- id: eco_at_night
  trigger:
    - trigger: event
      event_type: night
  action:
    - call: number.set_value
      entity_id: number.set_point
      args: {value: "{{ trigger.event.data.target }}"}
    - call: select.select_first
      entity_id: select.mode
"""


async def test_call_actions_and_numeric_state_on_a_number(rh):
    rh.write(RULES)
    hub = await rh.start()
    assert rh.engine.issues == []
    await hub.commands.call("number.set_point", "set_value", {"value": 65})  # crosses 60: the rule fires
    await rh.clock.settle()
    assert hub.states.get("select.mode").value == "boost"
    assert hub.states.get("switch.pump").value == "on"

    hub.bus.publish(CustomEvent(hub.now(), "night", {"target": 42.5}))
    await rh.clock.settle()
    assert hub.states.get("number.set_point").value == 42.5
    assert hub.states.get("select.mode").value == "eco"
    # The driver is sent select_option: select_first is worked out by the hub.
    assert ("select.mode", "select_option", {"option": "eco"}) in rh.home.calls

    # A templated value out of range fails that run, with the field named, and leaves the number be.
    hub.bus.publish(CustomEvent(hub.now(), "night", {"target": 90}))
    await rh.clock.settle()
    outcomes = sorted((t["outcome"], t.get("error") or "") for t in rh.traces("eco_at_night"))
    assert outcomes == [("error", "action/0 (call): invalid arguments for number.set_value: "
                                  "value: Input should be less than or equal to 75"), ("finished", "")]
    assert hub.states.get("number.set_point").value == 42.5


async def test_a_value_or_option_the_entity_cannot_take_is_refused_when_the_rule_loads(rh):
    path = rh.write("""
- id: too_hot
  trigger:
    - trigger: hub_start
  action:
    - call: number.set_value
      entity_id: number.set_point
      args: {value: 80}
- id: no_such_mode
  trigger:
    - trigger: hub_start
  action:
    - call: select.select_option
      entity_id: select.mode
      args: {option: turbo}
""")
    await rh.start()
    text = {str(i) for i in rh.engine.issues}
    assert any(t.startswith(f"{path}:") and "too_hot.action[0].args.value" in t
               and "less than or equal to 75" in t for t in text), text
    assert any("no_such_mode.action[0].args.option" in t and "'eco', 'comfort' or 'boost'" in t for t in text), text
    assert rh.home.calls == []
