"""Home Assistant's automation blueprints (``use_blueprint`` with ``!input``), loaded from
``blueprints/automation/`` beside the configuration as HA loads them.

The blueprint is Home Assistant's own ``homeassistant/motion_light.yaml`` as shipped with HA core
(homeassistant/components/automation/blueprints/motion_light.yaml, documented at
https://www.home-assistant.io/docs/automation/using_blueprints/), with the demo's entities.
"""

MOTION_LIGHT = """\
blueprint:
  name: Motion-activated Light
  description: Turn on a light when motion is detected.
  domain: automation
  source_url: https://github.com/home-assistant/core/blob/dev/homeassistant/components/automation/blueprints/motion_light.yaml
  author: Home Assistant
  input:
    motion_entity:
      name: Motion Sensor
      selector:
        entity:
          filter:
            device_class: occupancy
            domain: binary_sensor
    light_target:
      name: Light
      selector:
        target:
          entity:
            domain: light
    no_motion_wait:
      name: Wait time
      description: Time to leave the light on after last motion is detected.
      default: 120
      selector:
        number:
          min: 0
          max: 3600
          unit_of_measurement: seconds

mode: restart
max_exceeded: silent

triggers:
  trigger: state
  entity_id: !input motion_entity
  from: "off"
  to: "on"

actions:
  - alias: "Turn on the light"
    action: light.turn_on
    target: !input light_target
  - alias: "Wait until there is no motion from device"
    wait_for_trigger:
      trigger: state
      entity_id: !input motion_entity
      from: "on"
      to: "off"
  - alias: "Wait the number of seconds that has been set"
    delay: !input no_motion_wait
  - alias: "Turn off the light"
    action: light.turn_off
    target: !input light_target
"""

USES = """\
- id: hall_motion
  alias: Hall light on motion
  use_blueprint:
    path: homeassistant/motion_light.yaml
    input:
      motion_entity: binary_sensor.motion
      light_target:
        entity_id: light.lamp
      no_motion_wait: 30
- id: default_wait
  use_blueprint:
    path: homeassistant/motion_light.yaml
    input:
      motion_entity: binary_sensor.motion
      light_target: {entity_id: switch.fan}
"""


def blueprint(rh, text=MOTION_LIGHT, name="homeassistant/motion_light.yaml"):
    return rh.write(text, f"blueprints/automation/{name}")


async def test_motion_light_blueprint_runs_with_its_inputs(rh):
    blueprint(rh)
    rh.write(USES.split("- id: default_wait")[0])
    await rh.start()
    assert rh.engine.rules["hall_motion"].rule is not None, rh.engine.issues
    rh.home.set("motion", "on")
    await rh.clock.settle()
    assert rh.calls("turn_on", "light.lamp")
    rh.home.set("motion", "off")
    await rh.clock.advance(29)
    assert not rh.calls("turn_off", "light.lamp")
    await rh.clock.advance(1)  # the input's 30 s, not the blueprint's default 120
    assert rh.calls("turn_off", "light.lamp")


async def test_an_input_left_out_takes_the_blueprints_default(rh):
    blueprint(rh)
    rh.write(USES.split("- id: default_wait")[0].replace("      no_motion_wait: 30\n", ""))
    await rh.start()
    rh.home.set("motion", "on")
    await rh.clock.settle()
    rh.home.set("motion", "off")
    await rh.clock.advance(119)
    assert not rh.calls("turn_off", "light.lamp")
    await rh.clock.advance(1)
    assert rh.calls("turn_off", "light.lamp")


async def test_the_blueprints_content_is_checked_like_any_rule(rh):
    """A switch given where the blueprint calls light.turn_on is refused at the rule, not at run."""
    blueprint(rh)
    path = rh.write(USES)
    await rh.start()
    assert rh.engine.rules["hall_motion"].rule is not None
    assert rh.engine.rules["default_wait"].rule is None
    issues = [str(i) for i in rh.engine.issues if "light.turn_on does not apply" in str(i)]
    assert issues and all(i.startswith(f"{path}:10:") and "switch.fan" in i for i in issues)


async def test_missing_and_unknown_inputs_are_load_errors_with_their_line(rh):
    blueprint(rh)
    path = rh.write("""\
    - id: missing
      use_blueprint:
        path: homeassistant/motion_light.yaml
        input:
          light_target: {entity_id: light.lamp}
    - id: typo
      use_blueprint:
        path: homeassistant/motion_light.yaml
        input:
          motion_entity: binary_sensor.motion
          light_target: {entity_id: light.lamp}
          no_motion_wiat: 30
    - id: nowhere
      use_blueprint: {path: homeassistant/nope.yaml, input: {}}
    - id: escape
      use_blueprint: {path: ../../configuration.yaml, input: {}}
    """)
    await rh.start()
    for rule_id in ("missing", "typo", "nowhere", "escape"):
        assert rh.engine.rules[rule_id].rule is None
    text = [str(i) for i in rh.engine.issues]

    def issue(fragment):
        return next(t for t in text if fragment in t)

    assert issue("missing input 'motion_entity'").startswith(f"{path}:4:")
    assert issue("no input 'no_motion_wiat'").startswith(f"{path}:12:")
    assert "motion_entity" in issue("no input 'no_motion_wiat'")  # what it does have
    assert issue("no blueprint 'homeassistant/nope.yaml'").startswith(f"{path}:14:")
    assert issue("must stay inside").startswith(f"{path}:16:")


async def test_an_undeclared_input_is_reported_in_the_blueprint_file(rh):
    bp = blueprint(rh, MOTION_LIGHT.replace("delay: !input no_motion_wait", "delay: !input wait_time"))
    rh.write(USES.split("- id: default_wait")[0])
    await rh.start()
    assert rh.engine.rules["hall_motion"].rule is None
    [issue] = [str(i) for i in rh.engine.issues if "wait_time" in str(i)]
    assert issue.startswith(f"{bp}:51:") and "not declared under blueprint.input" in issue


async def test_an_input_tag_outside_a_blueprint_is_refused(rh):
    path = rh.write("""\
    - id: stray
      triggers: [{trigger: state, entity_id: !input motion_entity}]
      actions: [{action: light.turn_on, target: {entity_id: light.lamp}}]
    """)
    await rh.start()
    assert rh.engine.rules["stray"].rule is None
    [issue] = [str(i) for i in rh.engine.issues]
    assert issue.startswith(f"{path}:2:") and "!input 'motion_entity' belongs in a blueprint file" in issue


def test_an_input_tag_in_the_configuration_is_an_unsupported_tag(tmp_path):
    from hub.config import read_yaml

    path = tmp_path / "configuration.yaml"
    path.write_text("hub:\n  name: !input hub_name\n")
    _, doc = read_yaml(path, top_mapping=True)
    [issue] = doc.issues
    assert issue.line == 2 and "unsupported tag '!input'" in issue.message
