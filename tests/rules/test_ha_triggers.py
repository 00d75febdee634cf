"""HA's ``homeassistant``, ``sun``, ``template`` and ``webhook`` triggers, on a simulated clock: automations written for HA run
at the hub's start, at sunset and when a template turns true, and what the hub cannot do is refused in words at load."""

from datetime import date, timedelta

import httpx

from hub.api.app import create_app
from hub.api.webhook import MAX_WEBHOOK_BYTES
from hub.rules import sun
from hub.testing import FakeScheduler
from tests.rules.conftest import START, Home, RuleHub

START_RULES = """
- alias: on start
  id: ha_start
  triggers:
    - platform: homeassistant
      event: start
  actions:
    - condition: template
      value_template: "{{ trigger.platform == 'homeassistant' and trigger.event == 'start' }}"
    - action: light.turn_on
      target: {entity_id: light.lamp}
"""


async def test_homeassistant_start_runs_once_the_hub_has_started(rh: RuleHub):
    rh.write(START_RULES)
    await rh.start()
    assert rh.calls("turn_on", "light.lamp")
    assert rh.engine.rules["ha_start"].rule is not None
    traces = rh.traces("ha_start")
    assert len(traces) == 1
    assert traces[0]["trigger"]["platform"] == "homeassistant"
    assert traces[0]["trigger"]["event"] == "start"


SUN_RULE = """
- id: dusk
  trigger:
    - platform: sun
      event: sunset
      offset: "-00:30:00"
  action:
    - action: light.turn_on
      target: {entity_id: light.lamp}
"""


async def test_sun_trigger_fires_at_sunset_with_offset_each_day(rh: RuleHub):
    rh.write(SUN_RULE)
    await rh.start()
    assert rh.engine.rules["dusk"].rule is not None
    lat, lon = 48.8566, 2.3522  # the fixture's configuration.yaml
    first = sun.sunset(date(2026, 1, 1), lat, lon).timestamp() - 1800
    second = sun.sunset(date(2026, 1, 2), lat, lon).timestamp() - 1800
    await rh.clock.advance(first - 1 - rh.clock.now())
    assert not rh.calls("turn_on", "light.lamp")
    await rh.clock.advance(2)
    assert len(rh.calls("turn_on", "light.lamp")) == 1
    trace = rh.traces("dusk")[0]
    assert trace["trigger"]["platform"] == "sun" and trace["trigger"]["event"] == "sunset"
    assert trace["trigger"]["offset"] == -1800
    await rh.clock.advance(second + 1 - rh.clock.now())
    assert len(rh.calls("turn_on", "light.lamp")) == 2  # and again the next day, at that day's sunset
    assert second - first != timedelta(days=1).total_seconds()  # the days lengthen: not a fixed period


async def test_sun_trigger_without_a_location_is_refused_naming_the_keys(tmp_path, clock):
    (tmp_path / "configuration.yaml").write_text("hub: {time_zone: UTC, commit_interval: 0.01}\n")
    rh = RuleHub(tmp_path, clock, Home())
    path = rh.write(SUN_RULE)
    try:
        await rh.start()
        assert rh.engine.rules["dusk"].rule is None
        issue = next(str(i) for i in rh.engine.issues if "sun triggers" in str(i))
        assert issue.startswith(f"{path}:") and "hub.latitude" in issue
    finally:
        await rh.stop()


TEMPLATE_RULES = """
- id: hot
  trigger:
    - platform: template
      value_template: "{{ states('sensor.temp') | float(0) > 25 }}"
  action:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
- id: hot_for_5min
  trigger:
    - platform: template
      value_template: "{{ states('sensor.temp') | float(0) > 25 }}"
      for: "00:05:00"
  action:
    - action: light.turn_on
      target: {entity_id: light.lamp}
"""


async def test_template_trigger_fires_when_it_turns_true_and_honours_for(rh: RuleHub):
    rh.write(TEMPLATE_RULES)
    await rh.start()
    rh.home.set("temp", 26.0)
    await rh.clock.settle()
    assert len(rh.calls("turn_on", "switch.fan")) == 1
    rh.home.set("temp", 27.0)  # still true: not again
    await rh.clock.settle()
    assert len(rh.calls("turn_on", "switch.fan")) == 1
    await rh.clock.advance(120)
    rh.home.set("temp", 20.0)  # false before the 5 minutes: the wait ends
    await rh.clock.settle()
    await rh.clock.advance(600)
    assert not rh.calls("turn_on", "light.lamp")
    rh.home.set("temp", 30.0)  # true again: fires again, and this time it holds
    await rh.clock.settle()
    assert len(rh.calls("turn_on", "switch.fan")) == 2
    await rh.clock.advance(299)
    assert not rh.calls("turn_on", "light.lamp")
    await rh.clock.advance(2)
    assert len(rh.calls("turn_on", "light.lamp")) == 1
    assert rh.traces("hot")[0]["trigger"]["platform"] == "template"


async def test_template_trigger_with_a_broken_template_is_refused_at_load(rh: RuleHub):
    path = rh.write("""
- id: broken
  trigger:
    - platform: template
      value_template: "{{ states('sensor.temp') > }}"
  action:
    - log: x
""")
    await rh.start()
    assert rh.engine.rules["broken"].rule is None
    assert any(str(i).startswith(f"{path}:") and "value_template" in str(i) for i in rh.engine.issues)


async def test_template_for_timer_survives_a_restart(rh: RuleHub):
    rh.write(TEMPLATE_RULES)
    await rh.start()
    rh.home.set("temp", 26.0)
    await rh.clock.advance(240)
    await rh.stop()
    again = RuleHub(rh.path, FakeScheduler(START + 250), Home())
    await again.start()
    try:
        await again.clock.advance(40)
        assert not again.calls("turn_on", "light.lamp")
        await again.clock.advance(20)  # 5 minutes after it turned true
        assert len(again.calls("turn_on", "light.lamp")) == 1
    finally:
        await again.stop()


WEBHOOK_RULE = """
- id: hook
  trigger:
    - platform: webhook
      webhook_id: doorbell-5f2c
  action:
    - action: light.turn_on
      target: {entity_id: light.lamp}
      data:
        brightness: "{{ trigger.json.level if trigger.json else trigger.data.level | int }}"
"""


async def test_webhook_fires_with_json_or_form_and_unknown_ids_are_a_bare_404(rh: RuleHub):
    rh.write(WEBHOOK_RULE)
    hub = await rh.start()
    transport = httpx.ASGITransport(app=create_app(hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        assert (await client.post("/api/webhook/doorbell-5f2c", json={"level": 40})).status_code == 200
        await rh.clock.settle()
        assert rh.calls("turn_on", "light.lamp")[-1][2].get("brightness") == 40
        answer = await client.post("/api/webhook/doorbell-5f2c", data={"level": "70"})
        assert answer.status_code == 200
        await rh.clock.settle()
        assert rh.calls("turn_on", "light.lamp")[-1][2].get("brightness") == 70
        unknown = await client.post("/api/webhook/doorbell-0000", json={"level": 1})
        assert unknown.status_code == 404 and "doorbell" not in unknown.text
        big = await client.post("/api/webhook/doorbell-5f2c", content=b"x" * (MAX_WEBHOOK_BYTES + 1),
                                headers={"content-type": "text/plain"})
        assert big.status_code == 413
        broken = await client.post("/api/webhook/doorbell-5f2c", content=b"{nope",
                                   headers={"content-type": "application/json"})
        assert broken.status_code == 422  # the app's own check of a JSON body, before the route
    await rh.clock.settle()
    assert len(rh.calls("turn_on", "light.lamp")) == 2


# From https://www.home-assistant.io/docs/automation/trigger/#webhook-trigger: allowed_methods and
# local_only, with HA's defaults (POST and PUT, local network only).
METHODS_RULE = """
- id: local_hook
  triggers:
    - trigger: webhook
      webhook_id: "some_hook_id"
      allowed_methods: [POST, PUT]
      local_only: true
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.fan}
- id: open_hook
  triggers:
    - trigger: webhook
      webhook_id: "open_hook_id"
      allowed_methods: [GET]
      local_only: false
  actions:
    - action: switch.turn_on
      target: {entity_id: switch.ac}
"""


async def test_webhook_allowed_methods_and_local_only(rh: RuleHub):
    rh.write(METHODS_RULE)
    hub = await rh.start()
    assert hub.rules.issues == []
    app = create_app(hub)
    local = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("192.168.1.20", 5000)), base_url="http://hub")
    remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("93.184.216.34", 5000)), base_url="http://hub")
    async with local, remote:
        assert (await local.get("/api/webhook/some_hook_id")).status_code == 405
        assert (await remote.put("/api/webhook/some_hook_id")).status_code == 200  # answered, not fired
        await rh.clock.settle()
        assert rh.calls("turn_on", "switch.fan") == []
        assert (await local.put("/api/webhook/some_hook_id")).status_code == 200
        await rh.clock.settle()
        assert len(rh.calls("turn_on", "switch.fan")) == 1
        assert (await remote.get("/api/webhook/open_hook_id?who=me")).status_code == 200
        await rh.clock.settle()
        assert len(rh.calls("turn_on", "switch.ac")) == 1
        assert rh.traces("open_hook")[0]["trigger"]["query"] == {"who": "me"}
