"""Home Assistant's automation syntax as its users write it: service steps, targets, data
conversions, trigger ids, alias, enabled: false, continue_on_error; and the errors, each with its
file, line and key."""

import pytest
from pydantic import BaseModel, ConfigDict, Field

from hub import hookimpl
from hub.core.events import CustomEvent
from hub.runtime import Hub
from hub.rules.ha_services import SERVICES, ServiceDataError, light_on, lookup


def go(rh, **data):
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "go", data))


BAD = """\
- id: unknown_service
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: light.turn_up
      target: {entity_id: light.lamp}
- id: brightness_too_high
  triggers: [{trigger: event, event_type: go}]
  actions:
    - service: light.turn_on
      entity_id: light.lamp
      data:
        brightness_pct: 150
- id: unknown_data
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
      data: {speed: 3}
- id: by_area
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: light.turn_on
      target: {area_id: kitchen}
- id: helper
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: input_boolean.turn_on
      target: {entity_id: input_boolean.guest}
- id: script
  triggers: [{trigger: event, event_type: go}]
  actions:
    - service: script.turn_on
      target: {entity_id: script.bedtime}
- id: wrong_domain
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: light.turn_on
      target: {entity_id: switch.fan}
- id: no_target
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: switch.toggle
- id: templated_unknown_key
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: light.turn_on
      target: {entity_id: light.lamp}
      data: {brightnes: "{{ 3 }}"}
- id: good
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
"""


async def test_bad_service_steps_are_refused_with_file_line_and_key(rh):
    path = rh.write(BAD)
    await rh.start()
    text = [str(i) for i in rh.engine.issues]

    def issue(rule_id: str) -> str:
        [found] = [t for t in text if f" {rule_id}." in t]
        return found

    assert issue("unknown_service").startswith(f"{path}:4:")
    assert "unknown service 'light.turn_up'; light has light.toggle, light.turn_off, light.turn_on" in issue("unknown_service")
    assert issue("brightness_too_high").startswith(f"{path}:12:")
    assert "brightness_too_high.actions[0].data.brightness_pct: brightness_pct must be 0-100" in issue("brightness_too_high")
    assert "unknown_data.actions[0].data.speed: switch.turn_on has no data 'speed'; it takes no data" in issue("unknown_data")
    assert "by_area.actions[0].target.area_id: the hub has no areas yet" in issue("by_area")
    assert "input_boolean.turn_on: the hub has no helpers" in issue("helper")
    assert "unknown script 'bedtime'; there are no scripts (scripts.yaml)" in issue("script")
    assert "switch.fan is a switch: light.turn_on does not apply to it" in issue("wrong_domain")
    assert "switch.toggle needs a target" in issue("no_target")
    assert "templated_unknown_key.actions[0].data.brightnes: light.turn_on has no data 'brightnes'" in issue("templated_unknown_key")
    assert rh.engine.rules["good"].rule is not None
    go(rh)
    await rh.clock.settle()
    assert rh.calls("turn_on", "switch.fan") == [("switch.fan", "turn_on", {})]


MIXED = """\
- id: mixed
  alias: Both syntaxes in one rule
  description: "classic trigger/platform, 2024.10 conditions and action:"
  mode: queued
  max: 3
  trigger:
    - platform: event
      event_type: go
      id: first
      alias: the go event
    - trigger: event
      event_type: other
      enabled: false
  conditions:
    - condition: trigger
      id: first
    - condition: state
      entity_id: switch.ac
      state: "off"
      enabled: false
  action:
    - alias: lamp on, with a template in data
      action: light.turn_on
      target:
        entity_id: [light.lamp]
      data:
        brightness: "{{ trigger.event.data.level * 2 }}"
        transition: 2
    - service: homeassistant.toggle
      data:
        entity_id: switch.fan
    - action: switch.turn_off
      entity_id: switch.ac
      enabled: false
    - log: "done {{ trigger.id }}"
"""


async def test_both_syntaxes_mixed_with_trigger_id_alias_and_disabled_items(rh):
    rh.write(MIXED)
    await rh.start()
    assert rh.engine.issues == []
    lr = rh.engine.rules["mixed"]
    assert lr.rule.mode == "queued" and lr.rule.max == 3 and lr.rule.alias == "Both syntaxes in one rule"
    go(rh, level=60)
    await rh.clock.settle()
    assert rh.calls(entity_id="light.lamp") == [("light.lamp", "turn_on", {"brightness": 120, "transition": 2.0})]
    assert rh.calls(entity_id="switch.fan") == [("switch.fan", "toggle", {})]
    assert rh.calls(entity_id="switch.ac") == []  # the disabled step
    [trace] = rh.traces("mixed")
    assert trace["outcome"] == "finished"
    assert [c["condition"] for c in trace["conditions"]] == ["trigger"]  # the disabled condition is not there
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "other", {}))
    await rh.clock.settle()
    assert len(rh.traces("mixed")) == 1  # the disabled trigger does not fire


async def test_trigger_condition_is_false_for_another_trigger(rh):
    rh.write("""\
- id: ids
  triggers:
    - {trigger: event, event_type: go, id: a}
    - {trigger: event, event_type: other}
    - {trigger: event, event_type: third, id: 7}
  conditions:
    - {condition: trigger, id: [a, 7]}
  actions:
    - choose:
        - alias: an option with a name, as HA's editor writes it
          conditions: [{condition: trigger, id: "7"}]
          sequence: [{action: switch.turn_on, target: {entity_id: "switch.fan, switch.ac"}}]
      default:
        - {action: switch.turn_on, target: {entity_id: switch.fan}}
""")
    await rh.start()
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "other", {}))
    await rh.clock.settle()
    assert rh.traces("ids")[-1]["outcome"] == "condition_failed"
    go(rh)
    await rh.clock.settle()
    assert rh.traces("ids")[-1]["outcome"] == "finished"
    assert rh.calls("turn_on") == [("switch.fan", "turn_on", {})]
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "third", {}))
    await rh.clock.settle()
    assert [c[0] for c in rh.calls("turn_on")] == ["switch.fan", "switch.fan", "switch.ac"]  # an int id is text


async def test_continue_on_error_on_any_step_keeps_the_run_going(rh):
    rh.home.fail_on.add("switch.fan")
    rh.write("""\
- id: tolerant
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: switch.turn_on
      target: {entity_id: [switch.fan, switch.ac]}
      continue_on_error: true
    - delay: "{{ 'soon' }}"
      continue_on_error: true
    - action: light.turn_on
      target: {entity_id: light.lamp}
- id: strict
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
    - action: light.turn_off
      target: {entity_id: light.lamp}
""")
    await rh.start()
    go(rh)
    await rh.clock.settle()
    tolerant = rh.traces("tolerant")[-1]
    assert tolerant["outcome"] == "finished"
    assert "error" in tolerant["steps"][1]  # recorded, not fatal
    assert rh.calls("turn_on", "light.lamp")
    assert rh.traces("strict")[-1]["outcome"] == "error"
    assert not rh.calls("turn_off", "light.lamp")


async def test_device_target_picks_the_entities_the_service_applies_to(rh):
    rh.write("""\
- id: by_device
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: switch.turn_off
      target: {device_id: "home:home"}
""")
    await rh.start()
    assert rh.engine.issues == []
    go(rh)
    await rh.clock.settle()
    assert sorted(c[0] for c in rh.calls("turn_off")) == ["switch.ac", "switch.fan"]  # not the light nor sensors


async def test_notify_publishes_a_notify_event(rh):
    rh.write("""\
- id: note
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: notify.mobile_app_phone
      data: {title: Hello, message: "temp {{ states('sensor.temp') }}"}
""")
    await rh.start()
    notes = []
    rh.hub.bus.subscribe("notify", notes.append)
    go(rh)
    await rh.clock.settle()
    assert [n.payload for n in notes] == [{"service": "notify.mobile_app_phone", "message": "temp 20.0", "title": "Hello"}]


class Notifier:
    """A plugin delivering notifications, the way a phone gateway or mail relay plugin would."""

    def __init__(self, serves: str, fail: BaseException | None = None) -> None:
        self.serves, self.fail, self.got = serves, fail, []

    @hookimpl
    def hub_notify(self, notification):
        if notification["service"] != self.serves:
            return None
        self.got.append(notification)
        if self.fail is not None:
            raise self.fail
        return "sent"


async def test_notify_reaches_the_plugins_notification_hook(rh):
    phone, mail = Notifier("notify.phone"), Notifier("notify.mail")
    rh.plugins.update(phone=phone, mail=mail)
    rh.write("""\
- id: note
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: notify.phone
      data: {title: Hot, message: "temp {{ states('sensor.temp') }}", data: {priority: high}}
    - action: persistent_notification.create
      data: {message: "seen", notification_id: hot}
""")
    await rh.start()
    go(rh)
    await rh.clock.settle()
    assert phone.got == [{"service": "notify.phone", "message": "temp 20.0", "title": "Hot",
                          "data": {"priority": "high"}, "source": "rule:note"}]
    assert mail.got == []  # each plugin picks the services it serves
    trace = rh.traces("note")[0]
    assert trace["outcome"] == "finished"
    assert [s["result"]["delivered_to"] for s in trace["steps"]] == [["phone"], []]


@pytest.mark.parametrize("failure", [OSError("relay refused"), SystemExit(3)])
async def test_a_notifier_that_fails_fails_the_step_and_not_the_hub(rh, failure):
    broken, phone = Notifier("notify.phone", fail=failure), Notifier("notify.phone")
    rh.plugins.update(broken=broken, phone=phone)
    rh.write("""\
- id: strict
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: notify.phone
      data: {message: one}
    - action: switch.turn_on
      target: {entity_id: switch.fan}
- id: lenient
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: notify.phone
      continue_on_error: true
      data: {message: two}
    - action: switch.turn_on
      target: {entity_id: switch.ac}
""")
    await rh.start()
    go(rh)
    await rh.clock.settle()
    strict, lenient = rh.traces("strict")[0], rh.traces("lenient")[0]
    assert strict["outcome"] == "error" and "plugin broken" in strict["error"], strict
    assert [m["message"] for m in phone.got] == ["one", "two"]  # the other plugin still got both
    assert lenient["outcome"] == "finished"
    assert list(lenient["steps"][0]["result"]["errors"]) == ["broken"]
    assert [c[0] for c in rh.calls("turn_on")] == ["switch.ac"]  # the strict rule stopped at its failure


@pytest.mark.parametrize(("data", "args"), [
    ({"brightness_pct": 100}, {"brightness": 255}),
    ({"brightness_pct": 50, "transition": 3}, {"brightness": 128, "transition": 3}),
    ({"kelvin": 2700}, {"color_temp_kelvin": 2700}),
    ({"color_temp": 370}, {"color_temp_kelvin": 2703}),  # mireds
    ({"hs_color": [0, 100]}, {"rgb_color": [255, 0, 0]}),
    ({"xy_color": [0.701, 0.299]}, {"rgb_color": [255, 0, 0]}),
    ({"rgb_color": [1, 2, 3]}, {"rgb_color": [1, 2, 3]}),
])
def test_light_data_converts_to_the_hubs_scales(data, args):
    [(command, out)] = light_on("turn_on", data)
    assert command == "turn_on"
    if "xy_color" in data:  # the CIE conversion lands on red within rounding
        assert out["rgb_color"][0] == 255 and max(out["rgb_color"][1:]) <= 5
    else:
        assert out == args


def test_service_table_refusals_name_what_is_missing():
    with pytest.raises(ServiceDataError) as err:
        light_on("turn_on", {"flash": "short"})
    assert err.value.field == "flash"
    assert "climate.set_temperature" in SERVICES
    assert lookup("fan.turn_on").startswith("unknown service 'fan.turn_on'; the hub knows ")
    assert SERVICES["climate.set_temperature"].translate("set_temperature", {"temperature": 21, "hvac_mode": "heat"}) == [
        ("set_hvac_mode", {"hvac_mode": "heat"}), ("set_temperature", {"temperature": 21})]


async def test_variables_of_the_rule_and_of_a_step(rh):
    rh.write("""\
- id: vars
  variables:
    level: "{{ trigger.event.data.level }}"
    double: "{{ level * 2 }}"
  triggers: [{trigger: event, event_type: go}]
  conditions: ["double > 10"]
  actions:
    - variables:
        brightness: "{{ double + 1 }}"
    - action: light.turn_on
      target: {entity_id: light.lamp}
      data: {brightness: "{{ brightness }}"}
- id: bad_name
  variables: {trigger: 1}
  triggers: [{trigger: event, event_type: go}]
  actions: [{log: x}]
""")
    await rh.start()
    [issue] = rh.engine.issues
    assert "bad_name.variables.trigger: 'trigger' cannot be a variable name" in str(issue)
    go(rh, level=3)
    await rh.clock.settle()
    assert rh.traces("vars")[-1]["outcome"] == "condition_failed"
    go(rh, level=50)
    await rh.clock.settle()
    assert rh.calls("turn_on", "light.lamp") == [("light.lamp", "turn_on", {"brightness": 101})]


async def test_if_then_else_and_wait_for_trigger(rh):
    rh.write("""\
- id: branches
  mode: parallel
  triggers: [{trigger: event, event_type: go}]
  actions:
    - if:
        - condition: state
          entity_id: switch.ac
          state: "on"
      then:
        - action: switch.turn_on
          target: {entity_id: switch.fan}
      else:
        - action: switch.turn_off
          target: {entity_id: switch.fan}
    - wait_for_trigger:
        - trigger: state
          entity_id: binary_sensor.motion
          to: "on"
      timeout: "00:01:00"
      continue_on_timeout: false
    - action: light.turn_on
      target: {entity_id: light.lamp}
- id: bad_if
  triggers: [{trigger: event, event_type: go}]
  actions:
    - if: ["True"]
      than: []
""")
    await rh.start()
    [issue] = rh.engine.issues
    assert "bad_if.actions[0].than: unexpected key 'than'" in str(issue)
    go(rh)
    await rh.clock.settle()
    assert rh.calls("turn_on", "switch.fan")
    await rh.clock.advance(61)
    assert rh.traces("branches")[-1]["outcome"] == "stopped"  # timed out, not continuing
    assert not rh.calls("turn_on", "light.lamp")
    rh.home.set("ac", "off")
    go(rh)
    await rh.clock.settle()
    assert rh.calls("turn_off", "switch.fan")
    rh.home.set("motion", "on")
    await rh.clock.settle()
    assert rh.calls("turn_on", "light.lamp")


class Chime:
    """A plugin action named like a service, as ``mqtt.publish`` is."""

    class Ring(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)

        class Body(BaseModel):
            model_config = ConfigDict(extra="forbid")
            times: int = Field(ge=1)

        ring: Body = Field(alias="chime.ring")

    def __init__(self) -> None:
        self.rings: list[int] = []

    @hookimpl
    def hub_rule_actions(self, register):
        def ring(config, variables):
            self.rings.append(config.ring.times)

        register("chime.ring", self.Ring, ring)


async def test_a_plugin_action_is_called_like_a_service(rh):
    chime = Chime()
    rh.write("""\
- id: ring
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: chime.ring
      data: {times: 2}
    - chime.ring: {times: 3}
- id: bad_ring
  triggers: [{trigger: event, event_type: go}]
  actions:
    - action: chime.ring
      data: {times: 0}
""")
    rh.hub = Hub(rh.path, scheduler=rh.clock, entrypoints=False)
    rh.hub.plugins.register("home", rh.home)
    rh.hub.plugins.register("chime", chime)
    await rh.hub.start()
    await rh.clock.settle()
    [issue] = rh.engine.issues
    assert "bad_ring.actions[0].data.times: Input should be greater than or equal to 1" in str(issue)
    go(rh)
    await rh.clock.settle()
    assert chime.rings == [2, 3]


async def test_durations_read_as_home_assistant_reads_them(rh):
    """HA reads "00:05" as five minutes; the hub read it as five seconds, so a motion light brought
    from HA switched off after 5 s instead of 5 min."""
    rh.write("""\
- id: off_after
  triggers:
    - trigger: state
      entity_id: binary_sensor.motion
      to: "off"
      for: "00:05"
  actions:
    - action: light.turn_off
      target: {entity_id: light.lamp}
""")
    await rh.start()
    rh.home.set("motion", "on")
    await rh.clock.settle()
    rh.home.set("motion", "off")
    await rh.clock.advance(60)
    assert not rh.calls("turn_off", "light.lamp")
    await rh.clock.advance(241)
    assert rh.calls("turn_off", "light.lamp")


async def test_logic_shorthand_and_a_sequence_step(rh):
    rh.write("""\
- id: shorthand
  triggers: [{trigger: event, event_type: go}]
  conditions:
    - or:
        - condition: state
          entity_id: switch.ac
          state: "off"
        - not:
            - condition: state
              entity_id: light.lamp
              state: "on"
  actions:
    - sequence:
        - action: switch.turn_on
          target: {entity_id: switch.fan}
        - and: ["True"]
        - action: light.turn_on
          target: {entity_id: light.lamp}
""")
    await rh.start()
    assert rh.engine.issues == []
    go(rh)
    await rh.clock.settle()
    assert [c[0] for c in rh.calls("turn_on")] == ["switch.fan", "light.lamp"]
    go(rh)  # the lamp is on now and the ac on: the 'or' is false
    await rh.clock.settle()
    assert rh.traces("shorthand")[-1]["outcome"] == "condition_failed"
