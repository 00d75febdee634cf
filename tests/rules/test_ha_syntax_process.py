"""Home Assistant's syntax through a real ``hub run``: a rule in HA's words created through the API
runs against the demo, a bad one is a 422 naming its key, and ``hub rules check`` names the file and
line of a bad service in automations.yaml."""

from __future__ import annotations

from tests.hubproc import HubProcess, run_cli

HA_RULE = {
    "id": "ha_dim", "alias": "Dim the living room",
    "triggers": [{"trigger": "event", "event_type": "dim", "id": "dim"}],
    "conditions": [{"condition": "trigger", "id": "dim"}],
    "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.living_room"},
                 "data": {"brightness_pct": 20}, "metadata": {}}],
}


def test_an_ha_rule_runs_through_the_api_and_bad_ones_name_their_key(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("demo:\n  seed: 1\n  motion_per_hour: 0\n")
    (data / "automations.yaml").write_text(
        "- id: typo\n"
        "  trigger:\n"
        "    - platform: event\n"
        "      event_type: x\n"
        "  action:\n"
        "    - service: light.turn_onn\n"
        "      entity_id: light.living_room\n"
    )
    hub = HubProcess(data).start()
    try:
        status, body = hub.request("POST", "/api/rules", HA_RULE)
        assert status == 201, body
        hub.post("/api/events/dim")
        hub.wait_for(lambda: hub.get("/api/states/light.living_room")["attributes"].get("brightness") == 51,
                     what="the rule dimmed the light to 20 %")
        bad = {**HA_RULE, "id": "ha_bad", "actions": [{"action": "light.turn_on", "target": {"area_id": "kitchen"}}]}
        status, body = hub.request("POST", "/api/rules", bad)
        assert status == 422 and "target.area_id: the hub has no areas yet" in body["message"], body
        out = run_cli(data, "rules", "check")
        assert out.returncode == 1
        assert "automations.yaml:6:" in out.stdout and "unknown service 'light.turn_onn'" in out.stdout, out.stdout
    finally:
        hub.stop()
