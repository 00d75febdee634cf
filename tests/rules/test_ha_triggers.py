"""HA's ``homeassistant`` trigger: an automation written for HA's start runs at the hub's start."""

from tests.rules.conftest import RuleHub

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

SHUTDOWN_RULE = """
- id: ha_shutdown
  trigger:
    - trigger: homeassistant
      event: shutdown
  action:
    - log: bye
- id: fine
  trigger:
    - trigger: homeassistant
      event: start
  action:
    - log: hi
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


async def test_homeassistant_shutdown_is_refused_in_words(rh: RuleHub):
    path = rh.write(SHUTDOWN_RULE)
    await rh.start()
    assert rh.engine.rules["ha_shutdown"].rule is None
    assert rh.engine.rules["fine"].rule is not None
    issue = next(str(i) for i in rh.engine.issues if "shutdown" in str(i))
    assert issue.startswith(f"{path}:")
    assert "the hub runs no rules while it stops" in issue
