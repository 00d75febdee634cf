"""Scenes and the shutdown trigger in a real ``hub run`` on the demo home: a scene applied through the
API and ``hub scenes``, and a ``homeassistant: shutdown`` rule whose commands reach the devices when
the hub is stopped with SIGTERM (the command log says so)."""

from __future__ import annotations

import sqlite3

from tests.hubproc import DEMO, HubProcess, run_cli

SCENES = """
- id: evening
  name: Evening in the living room
  entities:
    light.living_room:
      state: "on"
      brightness: 128
      color_mode: hs
      hs_color: [30, 60]
      rgb_color: [255, 178, 102]
      friendly_name: Living room light
    switch.smart_plug: "off"
- id: warm
  name: Warm white
  entities:
    light.living_room: {state: "on", color_temp_kelvin: 2700}
    climate.thermostat: dry
    switch.smart_plug: "on"
"""

RULES = """
- id: goodbye
  triggers:
    - trigger: homeassistant
      event: shutdown
  actions:
    - action: scene.turn_on
      target: {entity_id: scene.evening_in_the_living_room}
    - action: switch.turn_on
      target: {entity_id: switch.smart_plug}
"""


def logged(data, source_like: str) -> list[tuple[str, str, int]]:
    with sqlite3.connect(data / "hub.db") as db:
        return db.execute("SELECT entity_id, command, ok FROM command_log WHERE source LIKE ? ORDER BY id",
                          (source_like,)).fetchall()


def test_scenes_through_the_api_and_cli_and_a_shutdown_rule_on_sigterm(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("hub: {commit_interval: 0.1}\n" + DEMO)
    (data / "scenes.yaml").write_text(SCENES)
    (data / "automations.yaml").write_text(RULES)
    hub = HubProcess(data).start()
    try:
        listed = hub.get("/api/scenes")
        assert listed["issues"] == [] and [s["id"] for s in listed["scenes"]] == ["evening", "warm"]
        assert hub.get("/api/rules/goodbye")["status"] == "on"
        answer = hub.post("/api/scenes/evening")
        assert answer["ok"] is True and set(answer["entities"]) == {"light.living_room", "switch.smart_plug"}
        assert hub.request("POST", "/api/scenes/nope")[0] == 404
        state = hub.get("/api/states/light.living_room")
        assert state["state"] == "on" and state["attributes"]["brightness"] == 128
        cli = run_cli(data, "scenes", "apply", "scene.evening_in_the_living_room")
        assert cli.returncode == 0, cli.stderr
        assert "light.living_room: ok" in cli.stdout and "evening: applied" in cli.stdout
        cli = run_cli(data, "scenes", "list")
        assert cli.returncode == 0 and "scene.evening_in_the_living_room" in cli.stdout
        # the demo's thermostat has no 'dry' mode: it fails, the others are set all the same; the
        # demo's light has no colour temperature and gets it as RGB (its supported_color_modes)
        cli = run_cli(data, "scenes", "apply", "warm")
        assert cli.returncode == 1
        assert "climate.thermostat: mode 'dry' is not supported" in cli.stdout
        assert "light.living_room: ok" in cli.stdout
        assert "switch.smart_plug: ok" in cli.stdout and "warm: applied, with failures" in cli.stdout
        hub.post("/api/entities/switch.smart_plug/commands/turn_off")
    finally:
        assert hub.stop() == 0
    # the shutdown rule ran before the demo plugin stopped: its commands reached the devices
    assert logged(data, "rule:goodbye/scene:evening") == [("light.living_room", "turn_on", 1),
                                                          ("switch.smart_plug", "turn_off", 1)]
    assert logged(data, "rule:goodbye") == [("switch.smart_plug", "turn_on", 1)]
    assert len(logged(data, "api:%/scene:evening")) == 4  # the API's and the CLI's, two entities each
    assert sorted(logged(data, "api:%/scene:warm")) == [("climate.thermostat", "set_hvac_mode", 0),
                                                         ("light.living_room", "turn_on", 1),
                                                         ("switch.smart_plug", "turn_on", 1)]
    assert "their shutdown runs did not finish" not in hub.log()
    # with the hub stopped, `hub rules check` checks the scenes against the devices it recorded
    (data / "scenes.yaml").write_text(SCENES.replace("brightness: 128", "brightness: 300"))
    check = run_cli(data, "rules", "check")
    assert check.returncode == 1
    assert "evening.entities.light.living_room.brightness" in check.stdout and "brightness 300" in check.stdout
