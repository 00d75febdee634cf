"""``hub rules import``: a Home Assistant configuration folder written from HA's documentation
(automations from https://www.home-assistant.io/docs/automation/ (basics, trigger, templating),
scripts from /integrations/script/, scenes from /integrations/scene/, HA's own motion_light
blueprint, ``!secret`` from /docs/configuration/secrets/, ``!include_dir_merge_list`` from
/docs/configuration/splitting_configuration/), with HA's entity ids, imported into a hub with the
demo's entities: offline against its recorded entities, with a map, answering prompts, and into a
real ``hub run`` that then lists the rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hub.cli import main
from hub.store import Store
from tests.hubproc import DEMO, HubProcess, run_cli
from tests.rules.test_ha_scripts_blueprints import MOTION_LIGHT

CONFIGURATION = """\
default_config:
homeassistant:
  name: Home
  latitude: !secret home_latitude
http:
  ssl_certificate: !env_var SSL_CERT /ssl/fullchain.pem
automation: !include automations.yaml
automation manual: !include_dir_merge_list automations/
script: !include scripts.yaml
scene: !include scenes.yaml
sensor: !include sensors.yaml
"""

AUTOMATIONS = """\
- id: "1700000000001"
  alias: Hallway light on motion
  description: From the automation basics page, 2024.10 syntax
  mode: restart
  triggers:
    - trigger: state
      entity_id: binary_sensor.hall_motion
      to: "on"
  conditions:
    - condition: sun
      after: sunset
  actions:
    - action: light.turn_on
      target:
        entity_id: light.kitchen_ceiling
      data:
        brightness_pct: 60
- id: "1700000000002"
  alias: Too warm outside
  triggers:
    - trigger: template
      value_template: "{{ states('sensor.outdoor_temp') | float(0) > 25 }}"
  actions:
    - action: notify.notify
      data:
        message: "It is {{ states('sensor.outdoor_temp') }} °C outside"
- id: "1700000000003"
  alias: Webhook toggles the plug
  triggers:
    - trigger: webhook
      webhook_id: !secret plug_webhook
  actions:
    - action: switch.toggle
      target:
        entity_id: switch.tv_plug
- alias: Evening scene and wake-up script
  trigger:
    - platform: time
      at: "21:30:00"
  action:
    - service: scene.turn_on
      target:
        entity_id: scene.romantic
    - service: script.wakeup
- id: "1700000000005"
  alias: Guest mode
  triggers:
    - trigger: state
      entity_id: binary_sensor.hall_motion
      to: "on"
  actions:
    - action: input_boolean.turn_on
      target:
        entity_id: input_boolean.guest_mode
- id: hall_blueprint
  alias: Hall light by blueprint
  use_blueprint:
    path: homeassistant/motion_light.yaml
    input:
      motion_entity: binary_sensor.hall_motion
      light_target:
        entity_id: light.kitchen_ceiling
"""

MANUAL = """\
- id: door_locked_at_night
  alias: Lock the front door at 23:00
  trigger:
    - platform: time
      at: "23:00:00"
  condition: "{{ is_state('lock.front_door', 'unlocked') }}"
  action:
    - service: lock.lock
      entity_id: lock.front_door
"""

SCRIPTS = """\
wakeup:
  alias: Wake up
  sequence:
    - action: light.turn_on
      target:
        entity_id: light.kitchen_ceiling
      data:
        brightness: 100
    - delay: "00:01:00"
"""

SCENES = """\
- id: "1700000000100"
  name: Romantic
  entities:
    light.kitchen_ceiling:
      state: "on"
      brightness: 120
    switch.tv_plug: "off"
"""

SECRETS = "home_latitude: 48.85\nplug_webhook: s3cret-w3bhook-id-0123456789\n"

MAP = """\
binary_sensor.hall_motion: binary_sensor.hallway_motion
light.kitchen_ceiling: light.living_room
sensor.outdoor_temp: sensor.outside_temperature
switch.tv_plug: switch.smart_plug
"""

#: The demo's entities, as a hub that ran the demo records them.
DEMO_ENTITIES = [
    ("light.living_room", "light", "light"), ("binary_sensor.hallway_motion", "motion", "binary_sensor"),
    ("sensor.outside_temperature", "outside", "sensor"), ("sensor.room_temperature", "room", "sensor"),
    ("switch.smart_plug", "outlet", "switch"), ("lock.front_door", "lock", "lock"),
    ("climate.thermostat", "climate", "climate"),
]


def write_ha(folder: Path) -> Path:
    files = {"configuration.yaml": CONFIGURATION, "automations.yaml": AUTOMATIONS, "automations/night.yaml": MANUAL,
             "scripts.yaml": SCRIPTS, "scenes.yaml": SCENES, "secrets.yaml": SECRETS,
             "blueprints/automation/homeassistant/motion_light.yaml": MOTION_LIGHT}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def ha(tmp_path) -> Path:
    return write_ha(tmp_path / "homeassistant")


@pytest.fixture
def data(tmp_path) -> Path:
    """A stopped hub's data directory: its configuration and the demo entities it recorded."""
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text("hub: {latitude: 48.8566, longitude: 2.3522, time_zone: UTC}\ndemo: {}\n")
    store = Store(data)
    try:
        for entity_id, key, capability in DEMO_ENTITIES:
            device = f"demo:{key}"
            store.save_device({"id": device, "platform": "demo", "name": key})
            store.save_entities([{"entity_id": entity_id, "unique_id": f"{key}:{key}", "platform": "demo",
                                  "device_id": device, "capability": capability, "name": key, "key": key}])
    finally:
        store.close()
    return data


def hub_cli(data: Path, *args: str, input: str | None = None):
    # No hub runs at this address: the command falls back to the data directory, as `rules check` does.
    return CliRunner().invoke(main, ["--data", str(data), "rules", "import", *args, "--url", "http://127.0.0.1:9"],
                              input=input, env={"COLUMNS": "250"}, catch_exceptions=False)


def rows(out: str) -> dict[str, str]:
    """Each item's table row (by name, its first cell) with the reasons listed for it below the table."""
    found = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) >= 5 and cells[0]:
            found.setdefault(cells[0], line)
    current = None
    for line in out.splitlines():
        head = next((name for name in found if line.startswith(f"{name} (")), None)
        if head is not None:
            current = head
            found[head] += "\n" + line
        elif current is not None and line.startswith("  "):
            found[current] += "\n" + line
        else:
            current = None
    return found


def test_without_a_map_unknown_ids_are_listed_and_the_secret_never_shown(ha, data):
    result = hub_cli(data, str(ha), "--no-input", "--dry-run")
    out = result.output
    assert result.exit_code == 1, out
    assert "s3cret" not in out
    table = rows(out)
    assert "uses !secret plug_webhook: pass --secrets" in table["1700000000003"]
    assert "not imported" in table["1700000000003"]
    # HA's ids are not the demo's: the rules naming them do not load, each with its reason.
    assert "not loaded" in table["1700000000001"] and "light.kitchen_ceiling" in out
    assert "loaded" in table["door_locked_at_night"] and "not loaded" not in table["door_locked_at_night"]
    # An automation without id gets one from its alias.
    assert "evening_scene_and_wake_up_script" in table
    for ha_id in ("binary_sensor.hall_motion", "light.kitchen_ceiling", "sensor.outdoor_temp", "switch.tv_plug",
                  "input_boolean.guest_mode"):
        assert ha_id in out.split("not on this hub, left as they are:")[1]
    assert "scene.romantic" not in out.split("left as they are:")[1]  # imported along: not unknown
    assert "dry run: nothing written" in out
    assert not (data / "automations").exists()


def test_a_map_rewrites_ids_everywhere_and_what_loads_is_written(ha, data):
    map_file = ha.parent / "map.yaml"
    map_file.write_text(MAP)
    result = hub_cli(data, str(ha), "--map", str(map_file), "--secrets")
    out = result.output
    assert result.exit_code == 1, out  # guest mode needs input_boolean, which the hub does not have
    table = rows(out)
    for rule in ("1700000000001", "1700000000002", "1700000000003", "door_locked_at_night", "hall_blueprint"):
        assert "not loaded" not in table[rule] and "loaded" in table[rule], (rule, out)
    assert "input_boolean.turn_on" in table["1700000000005"] and "not loaded" in table["1700000000005"]
    assert "s3cret" not in out
    written = yaml.safe_load((data / "automations" / "ha_import.yaml").read_text())
    by_id = {r["id"]: r for r in written}
    assert len(by_id) == 7
    assert by_id["1700000000001"]["actions"][0]["target"]["entity_id"] == "light.living_room"
    assert by_id["1700000000002"]["triggers"][0]["value_template"] == \
        "{{ states('sensor.outside_temperature') | float(0) > 25 }}"
    assert by_id["1700000000003"]["triggers"][0]["webhook_id"] == "s3cret-w3bhook-id-0123456789"  # --secrets
    assert by_id["hall_blueprint"]["use_blueprint"]["input"]["motion_entity"] == "binary_sensor.hallway_motion"
    assert yaml.safe_load((data / "scenes" / "ha_import.yaml").read_text())[0]["entities"] == \
        {"light.living_room": {"state": "on", "brightness": 120}, "switch.smart_plug": "off"}
    assert yaml.safe_load((data / "scripts" / "ha_import.yaml").read_text())["wakeup"]["sequence"][0]["target"] == \
        {"entity_id": "light.living_room"}
    blueprint = data / "blueprints" / "automation" / "homeassistant" / "motion_light.yaml"
    assert blueprint.read_text() == MOTION_LIGHT
    # The hub's own check agrees with the report: only guest mode is refused.
    check = CliRunner().invoke(main, ["--data", str(data), "rules", "check", "--url", "http://127.0.0.1:9"])
    assert check.exit_code == 1 and "1700000000005" in check.output
    assert "1700000000001" not in check.output and "door_locked_at_night" not in check.output


def test_only_valid_writes_what_loads_and_a_blueprint_is_not_overwritten(ha, data):
    map_file = ha.parent / "map.yaml"
    map_file.write_text(MAP)
    mine = data / "blueprints" / "automation" / "homeassistant" / "motion_light.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text(MOTION_LIGHT.replace("default: 120", "default: 60"))
    out = hub_cli(data, str(ha), "--map", str(map_file), "--only-valid").output
    written = {r["id"] for r in yaml.safe_load((data / "automations" / "ha_import.yaml").read_text())}
    assert "1700000000005" not in written and "1700000000003" not in written  # refused; needs a secret
    assert "door_locked_at_night" in written and "hall_blueprint" in written
    assert "kept the hub's copy" in out and "default: 60" in mine.read_text()
    hub_cli(data, str(ha), "--map", str(map_file), "--only-valid", "--force")
    assert mine.read_text() == MOTION_LIGHT


def test_prompts_offer_the_closest_hub_entities(ha, data):
    # Asked in name order: binary_sensor.hall_motion, input_boolean.guest_mode, light.kitchen_ceiling,
    # sensor.outdoor_temp, switch.tv_plug.
    answers = "1\n\n1\nsensor.outside_temperature\n0\n"
    result = hub_cli(data, str(ha), "--input", "--dry-run", input=answers)
    out = result.output
    assert "binary_sensor.hall_motion (used by" in out and "1) binary_sensor.hallway_motion" in out
    assert "1) light.living_room" in out
    assert "input_boolean.guest_mode (used by 1700000000005) is not on this hub" in out
    mapped = out.split("mapped:")[1].splitlines()[0]
    assert "binary_sensor.hall_motion -> binary_sensor.hallway_motion" in mapped
    assert "light.kitchen_ceiling -> light.living_room" in mapped
    assert "sensor.outdoor_temp -> sensor.outside_temperature" in mapped
    assert "switch.tv_plug" not in mapped
    assert "loaded" in rows(out)["1700000000002"] and "not loaded" not in rows(out)["1700000000002"]


def test_write_map_makes_a_template_with_guesses(ha, data, tmp_path):
    template = tmp_path / "map.yaml"
    result = hub_cli(data, str(ha), "--write-map", str(template))
    text = template.read_text()
    assert "closest on the hub: light.living_room" in text
    assert yaml.safe_load(text)["light.kitchen_ceiling"] is None  # empty: left as it is until filled in
    assert "nothing else written" in result.output and not (data / "automations").exists()


def test_unusable_input_exits_2_naming_file_and_line(ha, data, tmp_path):
    result = hub_cli(data, str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no such folder" in result.output
    (ha / "automations" / "night.yaml").write_text("- id: x\n  trigger: [\n")
    result = hub_cli(data, str(ha))
    assert result.exit_code == 2 and f"{ha / 'automations' / 'night.yaml'}:3: invalid YAML" in result.output
    (ha / "configuration.yaml").write_text("automation: !include ../elsewhere/automations.yaml\n")
    result = hub_cli(data, str(ha))
    assert result.exit_code == 2 and f"{ha / 'configuration.yaml'}:1: !include ../elsewhere" in result.output
    (ha / "configuration.yaml").write_text("automation: !include loop.yaml\n")
    (ha / "loop.yaml").write_text("!include loop.yaml\n")  # includes itself
    result = hub_cli(data, str(ha))
    assert result.exit_code == 2 and "includes nested deeper than" in result.output


def test_a_single_automations_file_and_templates_whole_ids_only(tmp_path, data):
    from hub.rules.ha_import import entity_refs, rewrite

    raw = {"value_template": "{{ is_state('light.kitchen', 'on') and states.light.kitchen_2.state == 'on' }}",
           "entity_id": "light.kitchen, light.kitchen_2"}
    assert entity_refs(raw) == {"light.kitchen", "light.kitchen_2"}
    assert rewrite(raw, {"light.kitchen": "light.living_room"}) == {
        "value_template": "{{ is_state('light.living_room', 'on') and states.light.kitchen_2.state == 'on' }}",
        "entity_id": "light.living_room, light.kitchen_2"}
    assert rewrite({"target": {"device_id": ["8f3e21aa", "other"]}}, {"8f3e21aa": "demo:plug"}) == \
        {"target": {"device_id": ["demo:plug", "other"]}}  # a map may name HA's device ids too
    single = tmp_path / "automations.yaml"
    single.write_text(MANUAL)
    result = hub_cli(data, str(single), "--no-input")
    assert result.exit_code == 0, result.output
    assert "1 of 1 loaded" in result.output


def test_import_into_a_running_hub_reloads_it(ha, tmp_path):
    data = tmp_path / "run-data"
    data.mkdir()
    (data / "configuration.yaml").write_text("hub: {latitude: 48.8566, longitude: 2.3522}\n" + DEMO)
    map_file = tmp_path / "map.yaml"
    map_file.write_text(MAP)
    hub = HubProcess(data).start()
    try:
        out = run_cli(data, "rules", "import", str(ha), "--map", str(map_file), "--no-input")
        assert out.returncode == 1, out.stdout + out.stderr  # guest mode
        assert "checked by the running hub's entities" in out.stdout
        assert "hub reloaded: added" in out.stdout and "1700000000001" in out.stdout.split("hub reloaded:")[1]
        listed = run_cli(data, "rules", "list", "--json")
        status = {r["id"]: r["status"] for r in yaml.safe_load(listed.stdout)["rules"]}
        assert status["1700000000001"] == "on" and status["hall_blueprint"] == "on"
        assert status["door_locked_at_night"] == "on" and status["1700000000005"] == "error"
    finally:
        hub.stop()


def test_nested_yaml_aliases_are_refused_not_expanded(tmp_path, data):
    """A "billion laughs" automation (9^11 uses of one list through nested aliases): the import and
    the hub's own loader refuse it as too large instead of walking every use."""
    lines = ["- id: laughs", "  trigger: {platform: event, event_type: x}", "  action: [{event: y}]",
             '  variables:', '    a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    folder = tmp_path / "ha"
    folder.mkdir()
    (folder / "automations.yaml").write_text("\n".join(lines) + "\n")
    result = hub_cli(data, str(folder), "--no-input")
    assert result.exit_code == 1 and "the rule is too large" in result.output, result.output
    check = CliRunner().invoke(main, ["--data", str(data), "rules", "check", "--url", "http://127.0.0.1:9"])
    assert check.exit_code == 1 and "laughs" in check.output and "too large" in check.output, check.output


def test_env_var_and_unknown_tags_are_reported_per_automation(tmp_path, data):
    folder = tmp_path / "ha"
    folder.mkdir()
    (folder / "automations.yaml").write_text(textwrap.dedent("""\
        - id: env
          triggers: [{trigger: webhook, webhook_id: !env_var HOOK_ID}]
          actions: [{action: switch.toggle, target: {entity_id: switch.smart_plug}}]
        - id: odd
          triggers: [{trigger: event, event_type: !custom x}]
          actions: []
        - id: fine
          triggers: [{trigger: event, event_type: x}]
          actions: [{action: switch.toggle, target: {entity_id: switch.smart_plug}}]
        """))
    out = hub_cli(data, str(folder), "--no-input", "--dry-run").output
    table = rows(out)
    assert "uses !env_var HOOK_ID: pass --secrets" in table["env"] and "not imported" in table["env"]
    assert "uses the YAML tag !custom" in table["odd"]
    assert "not loaded" not in table["fine"] and "loaded" in table["fine"]
    result = CliRunner().invoke(main, ["--data", str(data), "rules", "import", str(folder), "--no-input", "--secrets",
                                       "--url", "http://127.0.0.1:9"], env={"COLUMNS": "250", "HOOK_ID": "hook-0123456789"})
    assert "hook-0123456789" not in result.output and "not loaded" not in rows(result.output)["env"]
    written = (data / "automations" / "ha_import.yaml")
    assert "hook-0123456789" in written.read_text() and written.stat().st_mode & 0o077 == 0
