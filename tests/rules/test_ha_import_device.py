"""``hub rules import`` of automations made in Home Assistant's UI editor: *device* triggers,
conditions and actions, with ``entity_id`` a hash from HA's entity registry.

The shapes are those HA writes: a device item is what the integration's ``async_get_triggers`` /
``async_get_conditions`` / ``async_get_actions`` lists (``{"platform": "device", "device_id",
"domain", "entity_id": entry.id, "type"}``, homeassistant/components/binary_sensor/device_trigger.py
and the other ``device_*.py``), plus what the editor adds: ``for`` as ``{hours, minutes, seconds}``,
``above``/``below``, ``metadata: {secondary: false}``, ``id``; the 2024.10 ``trigger: device`` as in
the device automation page (https://www.home-assistant.io/integrations/device_automation/). The
registries are HA's ``.storage`` files (``{"version": 1, "minor_version", "key", "data":
{"entities"|"devices": [...], "deleted_...": [...]}}``, homeassistant/helpers/entity_registry.py,
device_registry.py). Each translated automation then runs on a hub (simulated clock) and does what HA
would: a state change fires it, its condition holds or not, its command reaches the device.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hub import hookimpl
from hub.core.events import CustomEvent
from hub.devices import Device, EntitySpec
from hub.rules.ha_device import Registries, Translator, read_registries
from tests.rules.test_ha_import import hub_cli, rows

# --- HA's registries ------------------------------------------------------------------------------
#: entity registry id -> (HA entity id, HA device id)
HA_ENTITIES = {
    "6c1a6b0f8a3e4d7f9b2c5e8d1a4f7b3c": ("binary_sensor.hall_motion", "dev_hall"),
    "0e5d2c9b8a7f4e3d2c1b0a9f8e7d6c5b": ("binary_sensor.front_door_contact", "dev_door"),
    "a1b2c3d4e5f60718293a4b5c6d7e8f90": ("light.kitchen", "dev_kitchen"),
    "f0e1d2c3b4a5968778695a4b3c2d1e0f": ("lock.front_door", "dev_lock"),
    "11223344556677889900aabbccddeeff": ("cover.garage", "dev_garage"),
    "ffeeddccbbaa00998877665544332211": ("climate.living_room", "dev_thermostat"),
    "0123456789abcdef0123456789abcdef": ("sensor.outdoor_temperature", "dev_weather"),
    "fedcba9876543210fedcba9876543210": ("button.doorbell", "dev_doorbell"),
    "5555aaaa5555aaaa5555aaaa5555aaaa": ("switch.tv_plug", "dev_plug"),
}
HA_DEVICES = {"dev_hall": "Hall motion", "dev_door": "Front door contact", "dev_kitchen": "Kitchen ceiling",
              "dev_lock": "Front door lock", "dev_garage": "Garage door", "dev_thermostat": "Thermostat",
              "dev_weather": "Weather station", "dev_doorbell": "Doorbell", "dev_plug": "TV plug",
              "dev_remote": "Hue dimmer switch"}
MOTION, DOOR, KITCHEN, LOCK, GARAGE, THERMOSTAT, OUTDOOR, DOORBELL, PLUG = HA_ENTITIES


def entity_registry() -> dict:
    entries = [{
        "aliases": [], "area_id": None, "categories": {}, "capabilities": None, "config_entry_id": "01JCONFIGENTRY",
        "config_subentry_id": None, "created_at": "2025-01-12T09:30:00+00:00", "device_class": None,
        "device_id": device, "disabled_by": None, "entity_category": None, "entity_id": entity_id,
        "has_entity_name": True, "hidden_by": None, "icon": None, "id": reg_id, "labels": [],
        "modified_at": "2025-01-12T09:30:00+00:00", "name": None, "options": {}, "original_device_class": None,
        "original_icon": None, "original_name": None, "platform": "zha", "previous_unique_id": None,
        "suggested_object_id": None, "supported_features": 0, "translation_key": None,
        "unique_id": f"00:17:88:01:{reg_id[:8]}", "unit_of_measurement": None,
    } for reg_id, (entity_id, device) in HA_ENTITIES.items()]
    deleted = [{"config_entry_id": "01JCONFIGENTRY", "config_subentry_id": None, "created_at": "2024-05-01T00:00:00+00:00",
                "entity_id": "light.old_lamp", "id": "deadbeefdeadbeefdeadbeefdeadbeef", "modified_at": "2024-06-01T00:00:00+00:00",
                "orphaned_timestamp": None, "platform": "hue", "unique_id": "old-lamp"}]
    return {"version": 1, "minor_version": 16, "key": "core.entity_registry",
            "data": {"entities": entries, "deleted_entities": deleted}}


def device_registry() -> dict:
    devices = [{
        "area_id": None, "config_entries": ["01JCONFIGENTRY"], "config_entries_subentries": {"01JCONFIGENTRY": [None]},
        "configuration_url": None, "connections": [], "created_at": "2025-01-12T09:30:00+00:00", "disabled_by": None,
        "entry_type": None, "hw_version": None, "id": device_id, "identifiers": [["zha", device_id]], "labels": [],
        "manufacturer": "Acme", "model": "X", "model_id": None, "modified_at": "2025-01-12T09:30:00+00:00",
        "name_by_user": None, "name": name, "primary_config_entry": "01JCONFIGENTRY", "serial_number": None,
        "sw_version": None, "via_device_id": None,
    } for device_id, name in HA_DEVICES.items()]
    return {"version": 1, "minor_version": 8, "key": "core.device_registry", "data": {"devices": devices, "deleted_devices": []}}


#: As HA's automation editor saves them (2024.10 syntax, one in the classic one).
AUTOMATIONS = f"""\
- id: "1736674200001"
  alias: Kitchen light on motion while the door is locked
  description: ""
  triggers:
    - trigger: device
      device_id: dev_hall
      domain: binary_sensor
      entity_id: {MOTION}
      type: motion
      id: motion
  conditions:
    - condition: device
      device_id: dev_lock
      domain: lock
      entity_id: {LOCK}
      type: is_locked
  actions:
    - device_id: dev_kitchen
      domain: light
      entity_id: {KITCHEN}
      type: turn_on
      brightness_pct: 60
  mode: single
- id: "1736674200002"
  alias: Kitchen light off after two minutes without motion
  triggers:
    - trigger: device
      device_id: dev_hall
      domain: binary_sensor
      entity_id: {MOTION}
      type: no_motion
      for:
        hours: 0
        minutes: 2
        seconds: 0
      metadata:
        secondary: false
  actions:
    - device_id: dev_kitchen
      domain: light
      entity_id: {KITCHEN}
      type: turn_off
      metadata: {{}}
- id: "1736674200003"
  alias: Heat when it is cold outside
  trigger:
    - platform: device
      device_id: dev_weather
      domain: sensor
      entity_id: {OUTDOOR}
      type: temperature
      below: 5
      for: {{hours: 0, minutes: 5, seconds: 0}}
  condition: []
  action:
    - device_id: dev_thermostat
      domain: climate
      entity_id: {THERMOSTAT}
      type: set_hvac_mode
      hvac_mode: heat
- id: "1736674200004"
  alias: Door opened while heating half-opens the garage and unlocks
  triggers:
    - trigger: device
      device_id: dev_door
      domain: binary_sensor
      entity_id: {DOOR}
      type: opened
  conditions:
    - condition: device
      device_id: dev_thermostat
      domain: climate
      entity_id: {THERMOSTAT}
      type: is_hvac_mode
      hvac_mode: heat
  actions:
    - device_id: dev_garage
      domain: cover
      entity_id: {GARAGE}
      type: set_position
      position: 50
    - device_id: dev_lock
      domain: lock
      entity_id: {LOCK}
      type: unlock
- id: "1736674200005"
  alias: Doorbell brightens the kitchen, garage above 90 turns the plug on
  triggers:
    - trigger: device
      device_id: dev_doorbell
      domain: button
      entity_id: {DOORBELL}
      type: pressed
      id: bell
    - trigger: device
      device_id: dev_garage
      domain: cover
      entity_id: {GARAGE}
      type: position
      above: 90
      id: garage
  actions:
    - choose:
        - conditions:
            - condition: trigger
              id: bell
          sequence:
            - device_id: dev_kitchen
              domain: light
              entity_id: {KITCHEN}
              type: brightness_increase
      default:
        - device_id: dev_plug
          domain: switch
          entity_id: {PLUG}
          type: turn_on
- id: "1736674200008"
  alias: Kitchen light by device target when the lock unlocks
  triggers:
    - trigger: device
      device_id: dev_lock
      domain: lock
      entity_id: {LOCK}
      type: unlocked
  actions:
    - action: light.turn_on
      metadata: {{}}
      data:
        brightness_pct: 20
      target:
        device_id: dev_kitchen
- id: "1736674200009"
  alias: Dim on request
  triggers:
    - trigger: event
      event_type: dim
  actions:
    - action: script.dim_kitchen
- id: "1736674200006"
  alias: Dimmer button (ZHA) and an old lamp
  triggers:
    - trigger: device
      device_id: dev_remote
      domain: zha
      type: remote_button_short_press
      subtype: turn_on
  actions:
    - device_id: dev_kitchen
      domain: light
      entity_id: deadbeefdeadbeefdeadbeefdeadbeef
      type: toggle
- id: "1736674200007"
  alias: Eco preset when the lock jams
  triggers:
    - trigger: device
      device_id: dev_lock
      domain: lock
      entity_id: {LOCK}
      type: jammed
  actions:
    - device_id: dev_thermostat
      domain: climate
      entity_id: {THERMOSTAT}
      type: set_preset_mode
      preset_mode: eco
"""

#: A script with a device action, called by an automation.
SCRIPTS = f"""\
dim_kitchen:
  alias: Dim the kitchen
  sequence:
    - device_id: dev_kitchen
      domain: light
      entity_id: {KITCHEN}
      type: brightness_decrease
"""

MAP = """\
binary_sensor.hall_motion: binary_sensor.motion
binary_sensor.front_door_contact: binary_sensor.door
light.kitchen: light.desk
cover.garage: cover.garage_door
climate.living_room: climate.thermostat
sensor.outdoor_temperature: sensor.temp
switch.tv_plug: switch.fan
"""


def write_ha(folder: Path) -> Path:
    (folder / ".storage").mkdir(parents=True)
    (folder / ".storage" / "core.entity_registry").write_text(json.dumps(entity_registry(), indent=2))
    (folder / ".storage" / "core.device_registry").write_text(json.dumps(device_registry(), indent=2))
    (folder / "automations.yaml").write_text(AUTOMATIONS)
    (folder / "scripts.yaml").write_text(SCRIPTS)
    return folder


class Devices:
    """The hub's side: the devices HA's automations command, doing what real ones do."""

    def __init__(self) -> None:
        self.h: dict = {}
        self.calls: list[tuple[str, str, dict]] = []

    @hookimpl
    def hub_discover(self, hub):
        self.h = hub.add_device(Device(id="house", name="House"), [
            EntitySpec(key="desk", capability="light", object_id="desk"),
            EntitySpec(key="lock", capability="lock", object_id="front_door"),
            EntitySpec(key="garage", capability="cover", device_class="garage", object_id="garage_door"),
            EntitySpec(key="thermostat", capability="climate", object_id="thermostat"),
            EntitySpec(key="bell", capability="button", object_id="doorbell"),
            EntitySpec(key="door", capability="binary_sensor", device_class="door", object_id="door"),
        ])
        for key, value, attrs in (("desk", "off", {}), ("lock", "locked", {}), ("garage", "closed", {"position": 0}),
                                  ("thermostat", "off", {"current_temperature": 20.0}), ("bell", 0.0, {}),
                                  ("door", "off", {})):
            self.h[key].set(value, **attrs)

    @hookimpl
    def hub_handle_command(self, entity, command, args):
        data = args.model_dump(exclude_none=True)
        self.calls.append((entity.entity_id, command, data))
        if entity.entity_id == "light.desk":
            if command == "turn_on":
                entity.set("on", brightness=data.get("brightness", entity.state.attributes.get("brightness") or 255))
            else:
                entity.set("off" if command == "turn_off" or entity.state.value == "on" else "on")
        elif entity.entity_id == "lock.front_door":
            entity.set({"lock": "locked", "unlock": "unlocked", "open": "open"}[command])
        elif entity.entity_id == "cover.garage_door":
            position = {"open": 100, "close": 0}.get(command, data.get("position"))
            entity.set("closed" if position == 0 else "open", position=position)
        elif entity.entity_id == "climate.thermostat" and command == "set_hvac_mode":
            entity.set(data["hvac_mode"])


@pytest.fixture
def ha(tmp_path) -> Path:
    return write_ha(tmp_path / "homeassistant")


@pytest.fixture
async def imported(rh, ha):
    """The hub ran once with its devices (so it recorded them), then HA's folder was imported with a
    map, offline, as a user does before starting the hub again."""
    devices = Devices()
    rh.plugins["devices"] = devices
    await rh.start()
    await rh.stop()
    map_file = ha.parent / "map.yaml"
    map_file.write_text(MAP)
    result = hub_cli(rh.path, str(ha), "--map", str(map_file))
    return result, devices


def why(out: str, name: str) -> str:
    """What the report lists under the table for one item (its notes and reasons), joined."""
    lines, inside = [], False
    for line in out.splitlines():
        if line.startswith(f"{name} ("):
            inside = True
        elif inside and line.startswith("  "):
            lines.append(line.strip())
        else:
            inside = False
    return " ".join(lines)


def written(data: Path) -> dict[str, dict]:
    return {r["id"]: r for r in yaml.safe_load((data / "automations" / "ha_import.yaml").read_text())}


async def test_the_report_counts_translations_and_says_why_per_automation(imported, rh):
    result, _ = imported
    out = result.output
    assert result.exit_code == 1, out  # the ZHA remote and the preset stay as they are
    table = rows(out)
    for rule in ("1736674200001", "1736674200002", "1736674200003", "1736674200004", "1736674200005", "1736674200008",
                 "1736674200009", "dim_kitchen"):
        assert "loaded" in table[rule] and "not loaded" not in table[rule], (rule, out)
    assert "translated from Home Assistant's device ids to entity ids: 1 trigger, 1 condition, 1 action" in out
    assert "entity ids: 2 triggers, 2 actions" in out  # the one inside a choose, and its default
    assert "entity ids: 1 trigger, 1 device target" in out
    assert "entity ids: 1 action" in why(out, "dim_kitchen")
    assert "not loaded" in table["1736674200006"] and "not loaded" in table["1736674200007"]
    remote = why(out, "1736674200006")
    assert ("1736674200006.triggers[0]: device trigger (zha remote_button_short_press turn_on) of "
            "'Hue dimmer switch' (dev_remote) left as it is: zha's device automations are that integration's own") in remote
    assert "1736674200006.actions[0]: device action (light toggle) of 'Kitchen ceiling' (dev_kitchen) left as it is: " \
           "entity_id deadbeefdeadbeefdeadbeefdeadbeef is not in .storage/core.entity_registry" in remote
    assert "1736674200007.actions[0]: device action (climate set_preset_mode) of 'Thermostat' (dev_thermostat) left " \
           "as it is: the hub's thermostats have no preset modes" in why(out, "1736674200007")
    # Resolved ids went through the map like any other; no registry hash is left to map.
    assert "light.kitchen -> light.desk" in out and "6c1a6b0f" not in out.split("mapped:")[1]
    rules = written(rh.path)
    assert rules["1736674200001"]["triggers"] == [
        {"trigger": "state", "entity_id": "binary_sensor.motion", "to": "on", "id": "motion"}]
    assert rules["1736674200001"]["conditions"] == [{"condition": "state", "entity_id": "lock.front_door", "state": "locked"}]
    assert rules["1736674200001"]["actions"] == [
        {"action": "light.turn_on", "target": {"entity_id": "light.desk"}, "data": {"brightness_pct": 60}}]
    assert rules["1736674200003"]["trigger"] == [{"platform": "numeric_state", "entity_id": "sensor.temp", "below": 5,
                                                 "for": {"hours": 0, "minutes": 5, "seconds": 0}}]
    assert rules["1736674200006"]["triggers"][0]["domain"] == "zha"  # kept as written
    assert rules["1736674200008"]["actions"][0]["target"] == {"entity_id": ["light.desk"]}


async def test_translated_automations_run_as_in_home_assistant(imported, rh, clock):
    _, devices = imported
    hub = await rh.start()
    issues = " ".join(str(i) for i in rh.engine.issues)
    assert not any(f"173667420000{n}" in issues for n in (1, 2, 3, 4, 5, 8, 9)) and "dim_kitchen" not in issues, issues
    home = rh.home
    # Motion while locked: the kitchen light at 60 %.
    home.set("motion", "on")
    await clock.settle()
    assert devices.calls[-1] == ("light.desk", "turn_on", {"brightness": 153})
    # Two minutes without motion (the for: HA's editor wrote as hours/minutes/seconds): off.
    home.set("motion", "off")
    await clock.advance(119)
    assert hub.states.get("light.desk").state == "on"
    await clock.advance(2)
    assert hub.states.get("light.desk").state == "off"
    # Unlocked, motion does nothing (the device condition is_locked).
    devices.h["lock"].set("unlocked")
    await clock.settle()  # (the lock unlocking turns the device target's light on at 20 %)
    assert devices.calls[-1] == ("light.desk", "turn_on", {"brightness": 51})
    calls = len(devices.calls)
    home.set("motion", "on")
    await clock.settle()
    assert len(devices.calls) == calls
    devices.h["lock"].set("locked")
    # Five minutes below 5 °C outside: heat.
    home.set("temp", 3.0)
    await clock.advance(301)
    assert hub.states.get("climate.thermostat").state == "heat"
    # The door opens while heating: garage to 50 % and the lock unlocked.
    devices.h["door"].set("on")
    await clock.settle()
    assert hub.states.get("cover.garage_door").attributes["position"] == 50
    assert hub.states.get("lock.front_door").state == "unlocked"
    # The doorbell brightens the kitchen light (on at 20 % again since the unlock) by HA's step:
    # 10 % of 255, 26; from 0 when it is off.
    assert devices.calls[-1] == ("light.desk", "turn_on", {"brightness": 51})
    devices.h["bell"].set(clock.now())
    await clock.settle()
    assert devices.calls[-1] == ("light.desk", "turn_on", {"brightness": 77})
    devices.h["desk"].set("off")
    devices.h["bell"].set(clock.now() + 1)
    await clock.settle()
    assert devices.calls[-1] == ("light.desk", "turn_on", {"brightness": 26})
    # The garage opening past 90 % switches the plug (the choose's default).
    devices.h["garage"].set("open", position=95)
    await clock.settle()
    assert ("switch.fan", "turn_on", {}) in home.calls
    # The script's brightness_decrease: 26 down from 200, and off when no more than 26 is left.
    devices.h["desk"].set("on", brightness=200)
    hub.bus.publish(CustomEvent(hub.now(), "dim", {}))
    await clock.settle()
    assert devices.calls[-1] == ("light.desk", "turn_on", {"brightness": 174})
    devices.h["desk"].set("on", brightness=20)
    hub.bus.publish(CustomEvent(hub.now(), "dim", {}))
    await clock.settle()
    assert devices.calls[-1] == ("light.desk", "turn_off", {})


def test_each_domain_translates_as_its_device_automation_module():
    regs = Registries(Path("/ha"), entities={"r1": "binary_sensor.window", "r2": "cover.blind", "r3": "light.lamp",
                                            "r4": "lock.door"}, found=True)
    tr = Translator(regs)

    def one(item):
        new, outcome = tr.translate([item], "a")
        return new[0], outcome

    # binary_sensor: HA's lock class is "on" when unlocked; window/door "opened" is on.
    assert one({"platform": "device", "domain": "binary_sensor", "device_id": "d", "entity_id": "r1",
                "type": "not_locked"})[0]["to"] == "on"
    assert one({"condition": "device", "domain": "binary_sensor", "device_id": "d", "entity_id": "r1",
                "type": "is_not_open", "for": "00:01:00"})[0] == \
        {"condition": "state", "entity_id": "binary_sensor.window", "state": "off", "for": "00:01:00"}
    # cover position: HA's defaults when one bound is missing, on the hub's position attribute.
    assert one({"trigger": "device", "domain": "cover", "device_id": "d", "entity_id": "r2", "type": "position",
                "below": 20})[0] == {"trigger": "numeric_state", "entity_id": "cover.blind", "attribute": "position",
                                     "above": -1, "below": 20}
    assert one({"condition": "device", "domain": "cover", "device_id": "d", "entity_id": "r2", "type": "is_position",
                "above": 10})[0] == {"condition": "numeric_state", "entity_id": "cover.blind", "attribute": "position",
                                     "above": 10}
    # climate: from any other mode to this one (not from unavailable), as climate/device_trigger.py.
    regs.entities["r5"] = "climate.hall"
    assert one({"platform": "device", "domain": "climate", "device_id": "d", "entity_id": "r5",
                "type": "hvac_mode_changed", "to": "cool", "for": 60, "enabled": False})[0] == {
        "platform": "state", "entity_id": "climate.hall", "from": ["off", "heat", "heat_cool", "auto", "dry", "fan_only"],
        "to": "cool", "for": 60, "enabled": False}
    # brightness_decrease: a light stepped below 26 turns off, as HA's brightness_step does.
    step = one({"device_id": "d", "domain": "light", "entity_id": "r3", "type": "brightness_decrease", "alias": "dim"})[0]
    assert step["alias"] == "dim" and step["then"] == [{"action": "light.turn_off", "target": {"entity_id": "light.lamp"}}]
    # An old automation's entity_id is already an entity id.
    assert one({"device_id": "d", "domain": "lock", "entity_id": "lock.door", "type": "open"})[0] == \
        {"action": "lock.open", "target": {"entity_id": "lock.door"}}
    # Left as written, each with why.
    for item, why in (
        ({"platform": "device", "domain": "light", "device_id": "d", "entity_id": "r3", "type": "turn_on"},
         "light has no device trigger type 'turn_on'"),
        ({"platform": "device", "domain": "cover", "device_id": "d", "entity_id": "r2", "type": "tilt_position",
          "above": 1}, "no tilt"),
        ({"device_id": "d", "domain": "light", "entity_id": "r3", "type": "flash"}, "do not flash"),
        ({"device_id": "d", "domain": "light", "entity_id": "r1", "type": "toggle"}, "is not of domain light"),
        ({"condition": "device", "domain": "sensor", "device_id": "d", "entity_id": "sensor.t", "type": "is_value"},
         "needs above, below or both"),
        ({"platform": "device", "domain": "lock", "device_id": "d", "entity_id": "r4", "type": "locked",
          "subtype": "x"}, "'subtype', which this type does not take"),
    ):
        new, outcome = one(item)
        assert new == item and outcome.count == 0 and why in outcome.left[0], (item, outcome.left)
    # A device target: the device's entities of the service's domain (any for homeassistant.*), not
    # its diagnostic ones, nor a sensor for homeassistant.*; the hub's own device ids stay, uncounted.
    regs.device_of.update({"light.lamp": "hue1", "sensor.lamp_signal": "hue1", "switch.lamp_power": "hue1",
                           "sensor.lamp_energy": "hue1"})
    regs.secondary.add("sensor.lamp_signal")
    step = {"action": "light.turn_on", "target": {"device_id": "hue1", "entity_id": "light.other"}}
    assert one(step)[0] == {"action": "light.turn_on", "target": {"entity_id": ["light.other", "light.lamp"]}}
    step = {"action": "homeassistant.turn_off", "target": {"device_id": ["hue1", "demo:plug"]}}
    assert one(step)[0]["target"] == {"entity_id": ["light.lamp", "switch.lamp_power"], "device_id": "demo:plug"}
    new, outcome = one({"action": "switch.toggle", "target": {"device_id": "demo:plug"}})
    assert new == {"action": "switch.toggle", "target": {"device_id": "demo:plug"}} and outcome.count == 0
    new, outcome = one({"action": "cover.open_cover", "target": {"device_id": "hue1"}})
    assert outcome.count == 0 and "has no cover entity" in outcome.left[0]
    # Without HA's registry, a registry id cannot be resolved: said so.
    _, outcome = Translator(Registries(Path("/ha"))).translate(
        [{"device_id": "d", "domain": "lock", "entity_id": "r4", "type": "lock"}], "a")
    assert "there is no .storage/core.entity_registry in /ha" in outcome.left[0]


def test_registries_are_read_from_the_storage_folder_and_a_broken_one_is_named(ha, tmp_path):
    regs = read_registries(ha)
    assert regs.entities[KITCHEN] == "light.kitchen" and regs.devices["dev_kitchen"] == "Kitchen ceiling"
    assert "deadbeefdeadbeefdeadbeefdeadbeef" not in regs.entities  # a deleted entity is not resolved
    (ha / ".storage" / "core.entity_registry").write_text('{"version": 1, "data": {"entities": [}')
    data = tmp_path / "data"
    data.mkdir()
    result = hub_cli(data, str(ha), "--dry-run", "--no-input")
    assert result.exit_code == 2 and f"{ha / '.storage' / 'core.entity_registry'}:1: not JSON" in result.output


def test_write_map_lists_the_resolved_entity_ids(ha, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    template = tmp_path / "map.yaml"
    hub_cli(data, str(ha), "--write-map", str(template))
    keys = set(yaml.safe_load(template.read_text()))
    assert {"light.kitchen", "binary_sensor.hall_motion", "cover.garage", "button.doorbell"} <= keys
    assert all("." in k for k in keys)  # no registry hash left to map


def test_import_into_a_running_demo_hub_and_a_device_trigger_fires(tmp_path):
    """Through real processes: ``hub rules import`` asks the running hub for its entities, writes the
    translated automation, reloads the hub, and turning the light on through the API fires it."""
    from tests.hubproc import HubProcess, run_cli

    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("demo:\n  seed: 1\n  motion_per_hour: 0\n")
    folder = tmp_path / "ha"
    (folder / ".storage").mkdir(parents=True)
    registry = entity_registry()
    registry["data"]["entities"] = [
        {**registry["data"]["entities"][0], "id": reg_id, "entity_id": entity_id, "device_id": device}
        for reg_id, entity_id, device in (("aa" * 16, "light.living_room", "dev_light"),
                                          ("bb" * 16, "switch.smart_plug", "dev_plug"),
                                          ("cc" * 16, "lock.front_door", "dev_lock"))]
    (folder / ".storage" / "core.entity_registry").write_text(json.dumps(registry))
    (folder / "automations.yaml").write_text(f"""\
- id: "1736674200100"
  alias: Light on, plug on and door locked
  triggers:
    - trigger: device
      device_id: dev_light
      domain: light
      entity_id: {"aa" * 16}
      type: turned_on
  actions:
    - action: switch.turn_on
      target:
        device_id: dev_plug
    - device_id: dev_lock
      domain: lock
      entity_id: {"cc" * 16}
      type: lock
""")
    hub = HubProcess(data).start()
    try:
        for entity_id, command in (("light.living_room", "turn_off"), ("switch.smart_plug", "turn_off"),
                                   ("lock.front_door", "unlock")):
            hub.post(f"/api/entities/{entity_id}/commands/{command}")
        out = run_cli(data, "rules", "import", str(folder), "--no-input")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "1 trigger, 1 action, 1 device target" in out.stdout and "hub reloaded: added 1736674200100" in out.stdout
        hub.post("/api/entities/light.living_room/commands/turn_on")
        hub.wait_for(lambda: hub.get("/api/states/switch.smart_plug")["state"] == "on"
                     and hub.get("/api/states/lock.front_door")["state"] == "locked", what="the device trigger fired")
    finally:
        hub.stop()
