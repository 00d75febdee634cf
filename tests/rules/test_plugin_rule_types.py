"""Plugins contribute trigger and action types through hooks; rules use them like built-ins."""

from pydantic import BaseModel, ConfigDict

from hub import hookimpl
from hub.testing import FakeScheduler
from tests.rules.conftest import START, Home, RuleHub


class Buttons:
    """A plugin with a 'button' trigger (fired by the test) and a 'beep' action."""

    class Press(BaseModel):
        model_config = ConfigDict(extra="forbid")
        button: str

    class Beep(BaseModel):
        model_config = ConfigDict(extra="forbid")
        beep: int

    def __init__(self) -> None:
        self.armed: dict[str, list] = {}
        self.beeps: list[tuple[int, str]] = []

    @hookimpl
    def hub_rule_triggers(self, register):
        def attach(config, fire):
            self.armed.setdefault(config.button, []).append(fire)
            return lambda: self.armed[config.button].remove(fire)

        register("button", self.Press, attach)

    @hookimpl
    def hub_rule_actions(self, register):
        async def beep(config, variables):
            if config.beep < 0:
                raise ValueError("a beep cannot be negative")
            self.beeps.append((config.beep, variables["trigger"]["pressed_by"]))
            return {"beeped": config.beep}

        register("beep", self.Beep, beep)

    def press(self, button: str, who: str) -> None:
        for fire in list(self.armed.get(button, [])):
            fire({"pressed_by": who})


async def test_plugin_trigger_and_action(tmp_path):
    (tmp_path / "configuration.yaml").write_text("hub: {time_zone: UTC}\n")
    rh = RuleHub(tmp_path, FakeScheduler(START), Home())
    rh.write("""
        - id: doorbell
          trigger:
            - trigger: button
              button: front
          action:
            - beep: 3
        - id: negative
          trigger:
            - trigger: button
              button: back
          action:
            - beep: -1
        - id: typo
          trigger:
            - trigger: button
              buton: front
          action:
            - beep: 1
    """)
    buttons = Buttons()
    rh.hub = None
    from hub.runtime import Hub

    hub = Hub(tmp_path, scheduler=rh.clock, entrypoints=False)
    hub.plugins.register("home", rh.home)
    hub.plugins.register("buttons", buttons)
    await hub.start()
    try:
        assert hub.rules.rules["typo"].status == "error"
        issues = [str(i) for i in hub.rules.rules["typo"].issues]
        assert any("typo.trigger[0].button: Field required" in i for i in issues)
        assert any("typo.trigger[0].buton: Extra inputs are not permitted" in i for i in issues)
        buttons.press("front", "alice")
        buttons.press("back", "bob")
        await rh.clock.settle()
        assert buttons.beeps == [(3, "alice")]
        [ok] = [t.as_dict() for t in hub.rules.traces.for_rule("doorbell")]
        assert ok["steps"][0] == {**ok["steps"][0], "action": "beep", "result": {"beeped": 3}}
        [bad] = [t.as_dict() for t in hub.rules.traces.for_rule("negative")]
        assert bad["outcome"] == "error" and "a beep cannot be negative" in bad["error"]
        await hub.reload_rules()  # disarming calls the plugin's detach
        assert sum(len(v) for v in buttons.armed.values()) == 2
    finally:
        await hub.stop()
    assert sum(len(v) for v in buttons.armed.values()) == 0


async def test_time_trigger_from_a_timestamp_sensor(tmp_path):
    from hub.devices import Device, EntitySpec

    class Alarm(Home):
        @hookimpl
        def hub_discover(self, hub):
            super().hub_discover(hub)
            self.h.update(hub.add_device(Device(id="clock", name="Alarm clock"), [
                EntitySpec(key="at", capability="sensor", device_class="timestamp", object_id="alarm")]))
            self.h["at"].set(START + 300)

    (tmp_path / "configuration.yaml").write_text("hub: {time_zone: UTC}\n")
    rh = RuleHub(tmp_path, FakeScheduler(START), Alarm())
    rh.write("""
        - id: alarm
          trigger:
            - trigger: time
              at: sensor.alarm
          action:
            - log: ring
    """)
    await rh.start()
    try:
        await rh.clock.advance(299)
        assert rh.traces("alarm") == []
        await rh.clock.advance(1)
        assert len(rh.traces("alarm")) == 1
        rh.home.set("at", START + 900)  # the alarm is set again: the trigger follows
        await rh.clock.advance(600)
        assert len(rh.traces("alarm")) == 2
    finally:
        await rh.stop()
