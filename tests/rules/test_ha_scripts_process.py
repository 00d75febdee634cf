"""Scripts through a real ``hub run``: POST /api/scripts/<id> with field values (checked: 422 naming
the field, 404, 401, 413), ``hub scripts run`` and ``hub scripts trace``, and scripts kept out of
``/api/rules``."""

from __future__ import annotations

import json

from tests.hubproc import HubProcess, run_cli

SCRIPTS = """\
dim:
  alias: Dim the living room
  fields:
    level:
      description: Brightness in percent
      required: true
      selector: {number: {min: 0, max: 100}}
  sequence:
    - action: light.turn_on
      target: {entity_id: light.living_room}
      data: {brightness_pct: "{{ level }}"}
fails:
  sequence:
    - stop: the kettle is empty
      error: true
slow:
  sequence:
    - delay: 600
"""


def test_a_script_runs_through_the_api_and_the_cli(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("demo:\n  seed: 1\n  motion_per_hour: 0\n")
    (data / "scripts.yaml").write_text(SCRIPTS)
    hub = HubProcess(data).start()
    try:
        status, body = hub.request("POST", "/api/scripts/dim?wait=true", {"level": 20})
        assert status == 200 and body["outcome"] == "finished", body
        assert hub.get("/api/states/light.living_room")["attributes"]["brightness"] == 51

        status, body = hub.request("POST", "/api/scripts/dim", {"levle": 20})
        assert status == 422 and "levle: script.dim has no field 'levle'; its fields: level" in body["message"], body
        status, body = hub.request("POST", "/api/scripts/dim", {})
        assert status == 422 and "needs its required field 'level'" in body["message"], body
        assert hub.request("POST", "/api/scripts/nope", {})[0] == 404
        assert hub.request("POST", "/api/scripts/dim", {"level": 1}, auth=False)[0] == 401
        status, body = hub.request("POST", "/api/scripts/dim", raw=json.dumps({"level": "x" * 70_000}).encode())
        assert status == 413, body

        status, body = hub.request("POST", "/api/scripts/fails?wait=true", {})
        assert status == 200 and body["outcome"] == "error" and body["error"] == "the kettle is empty", body
        assert hub.request("POST", "/api/scripts/slow", {})[0] == 200
        status, body = hub.request("POST", "/api/scripts/slow", {})
        assert status == 409 and "already running (mode: single)" in body["message"], body

        listed = {s["id"]: s for s in hub.get("/api/scripts")["scripts"]}["dim"]
        assert listed["id"] == "dim" and listed["status"] == "off" and listed["last_outcome"] == "finished"
        assert listed["fields"]["level"]["required"] is True
        assert all(r["id"] != "dim" for r in hub.get("/api/rules")["rules"])

        out = run_cli(data, "scripts", "run", "dim", "--var", "level=40", "--wait")
        assert out.returncode == 0 and "finished" in out.stdout, out.stdout + out.stderr
        assert hub.get("/api/states/light.living_room")["attributes"]["brightness"] == 102
        out = run_cli(data, "scripts", "run", "dim", "--var", "levle=40")
        assert out.returncode == 1 and "no field 'levle'" in out.stderr + out.stdout
        out = run_cli(data, "scripts", "trace", "dim")
        assert out.returncode == 0 and out.stdout.count(": finished") == 2, out.stdout
        out = run_cli(data, "scripts", "list")
        assert out.returncode == 0 and "dim" in out.stdout and "level*" in out.stdout, out.stdout
        out = run_cli(data, "scripts", "run", "fails", "--wait")
        assert out.returncode == 1 and "error (the kettle is empty)" in out.stdout, out.stdout
    finally:
        hub.stop()
