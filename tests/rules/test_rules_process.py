"""Rules in a real ``hub run``: the API and CLI for rules, a kill -9 in the middle of a ``for:``,
and a hub with no network at all whose rules still fire."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time

import pytest

from tests.hubproc import HubProcess, hub_command, run_cli

FOR = 12  # seconds the light stays on before plug_off_when_light_on fires
CONFIG = "hub: {commit_interval: 0.2}\ndemo:\n  update_interval: 0.2\n  seed: 1\n  motion_per_hour: 0\n"
RULES = """
- id: plug_off_when_light_on
  alias: Light on for 12 s turns the plug off
  trigger:
    - trigger: state
      entity_id: light.living_room
      to: "on"
      for: 12
  action:
    - call: switch.turn_off
      entity_id: switch.smart_plug
- id: on_event
  trigger:
    - trigger: event
      event_type: wake_up
  action:
    - call: light.turn_on
      entity_id: light.living_room
      args: {brightness: "{{ trigger.event.data.level }}"}
"""


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "configuration.yaml").write_text(CONFIG)
    (d / "automations.yaml").write_text(RULES)
    return d


def rule_commands(data, command: str) -> list[float]:
    with sqlite3.connect(data / "hub.db") as db:
        try:
            return [ts for (ts,) in db.execute(
                "SELECT ts FROM command_log WHERE command = ? AND source LIKE 'rule:%' AND ok = 1 ORDER BY ts", (command,))]
        except sqlite3.OperationalError as exc:  # hub.db made, its tables not yet (a loaded machine)
            if "no such table" in str(exc):
                return []
            raise


def test_rules_api_and_cli(data):
    hub = HubProcess(data).start()
    try:
        listed = {r["id"]: r for r in hub.get("/api/rules")["rules"]}
        assert listed["on_event"]["status"] == "on" and listed["on_event"]["managed_by"] == "file"
        hub.post("/api/events/wake_up", {"level": 77})
        hub.wait_for(lambda: hub.get("/api/states/light.living_room")["attributes"].get("brightness") == 77, what="rule ran")
        out = run_cli(data, "rules", "trace", "on_event")
        assert out.returncode == 0 and "finished" in out.stdout and "light.living_room" in out.stdout, out.stderr

        # create, change, disable, delete through the API
        new = {"id": "api_rule", "trigger": [{"trigger": "event", "event_type": "ping"}],
               "action": [{"call": "switch.toggle", "entity_id": "switch.smart_plug"}]}
        status, body = hub.request("POST", "/api/rules", new)
        assert status == 201 and body["managed_by"] == "api", body
        status, body = hub.request("POST", "/api/rules", {**new, "id": "bad", "action": [{"call": "light.turn_on", "entity_id": "light.nowhere"}]})
        assert status == 422 and "unknown entity 'light.nowhere'" in body["message"]
        status, body = hub.request("PUT", "/api/rules/on_event", new)
        assert status == 409 and "automations.yaml" in body["message"]
        status, body = hub.request("PUT", "/api/rules/api_rule", {**new, "alias": "renamed"})
        assert status == 200 and body["alias"] == "renamed"
        assert run_cli(data, "rules", "disable", "api_rule").stdout.strip() == "api_rule: disabled"
        out = run_cli(data, "rules", "list", "--json")
        assert {r["id"]: r["status"] for r in json.loads(out.stdout)["rules"]}["api_rule"] == "disabled"
        assert hub.request("DELETE", "/api/rules/api_rule")[0] == 200
        assert "api_rule" not in {r["id"] for r in hub.get("/api/rules")["rules"]}

        # the same from the command line, with a rule in a YAML file
        rule_file = data.parent / "rule.yaml"
        rule_file.write_text("id: cli_rule\ntrigger: [{trigger: event, event_type: ping}]\naction: [{log: hi}]\n")
        out = run_cli(data, "rules", "create", str(rule_file))
        assert out.returncode == 0 and "cli_rule: created (on)" in out.stdout, out.stderr
        rule_file.write_text("id: cli_rule\ntrigger: [{trigger: event, event_type: ping}]\naction: [{log: {oops: 1}}]\n")
        out = run_cli(data, "rules", "change", "cli_rule", str(rule_file))
        assert out.returncode == 1 and "action[0].log: Input should be a valid string" in out.stderr, out.stderr
        assert run_cli(data, "rules", "delete", "cli_rule").returncode == 0

        # a broken edit of the file: reload reports it with its line, the other rules keep running
        (data / "automations.yaml").write_text(RULES + "- id: broken\n  trigger: []\n  action:\n    - call: light.explode\n      entity_id: light.living_room\n")
        out = run_cli(data, "rules", "reload")
        assert out.returncode == 1 and "automations.yaml:" in out.stdout and "no command 'explode'" in out.stdout
        out = run_cli(data, "rules", "check")
        assert out.returncode == 1 and "checked by the running hub" in out.stdout
        hub.post("/api/events/wake_up", {"level": 33})
        hub.wait_for(lambda: hub.get("/api/states/light.living_room")["attributes"].get("brightness") == 33, what="still runs")
    finally:
        hub.stop()
    out = run_cli(data, "rules", "check")  # the hub is stopped: checked from the files and the recorded devices
    assert out.returncode == 1 and "no command 'explode'" in out.stdout and f"against {data}" in out.stdout


def test_kill_9_in_the_middle_of_a_for_fires_once_on_time(data):
    hub = HubProcess(data).start()
    hub.post("/api/entities/light.living_room/commands/turn_off")
    started = time.time()
    hub.post("/api/entities/light.living_room/commands/turn_on")
    time.sleep(2.0)  # several commit intervals: the pending timer is on disk
    hub.kill()
    spawned = time.time()  # a timer started afresh by the new process would fire FOR s after this, or later
    again = HubProcess(data)
    again.start()
    try:
        again.wait_for(lambda: rule_commands(data, "turn_off") if again.get("/api/states/switch.smart_plug")["value"] == "off" else None,
                       timeout=FOR + 10, what="the rule fired after the restart")
        fired = rule_commands(data, "turn_off")
        assert len(fired) == 1
        # FOR s after the light went on (2 s before the kill), not FOR s after the restart: a loaded
        # machine may take up to FOR - 2.5 s to restart the hub and the two still differ.
        assert fired[0] - started >= FOR - 0.1
        assert fired[0] < spawned + FOR - 0.5, (fired[0] - started, spawned - started)
        time.sleep(max(0.0, spawned + FOR + 1.5 - time.time()))
        assert len(rule_commands(data, "turn_off")) == 1  # and not twice
    finally:
        again.stop()


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root for a network namespace")
def test_rules_fire_with_no_network_at_all(tmp_path):
    """No broker, no chain, and no network interface but loopback: a new network namespace."""
    assert shutil.which("unshare"), "util-linux unshare is needed"
    data = tmp_path / "offline"
    data.mkdir()
    (data / "configuration.yaml").write_text(CONFIG)
    (data / "automations.yaml").write_text("""
- id: blink
  trigger:
    - trigger: time_pattern
      seconds: "/1"
  action:
    - call: light.toggle
      entity_id: light.living_room
""")
    script = " ".join([*hub_command("run", "--data", str(data), "--port", "8123")])
    proc = subprocess.Popen(["unshare", "--net", "sh", "-c", f"ip link set lo up; ip -o link | grep -v ' lo:' && exit 3; exec {script}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and (not (data / "hub.db").exists() or len(rule_commands(data, "toggle")) < 3):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert proc.returncode == 0, output
    assert len(rule_commands(data, "toggle")) >= 3, output
