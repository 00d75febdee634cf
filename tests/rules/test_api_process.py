"""Rules made through the API of a real ``hub run``: the embedded default's example rules stay when
the first rule is created, a runaway loop stops at its limit with a bounded trace and goes when
deleted, and oversized rules are refused naming the key."""

from __future__ import annotations

from tests.hubproc import HubProcess, run_cli

EXAMPLES = {"ac_off_when_cold", "hallway_light_on_motion", "plug_power_alert"}
NEW = {"id": "mine", "trigger": [{"trigger": "event", "event_type": "ping"}],
       "action": [{"call": "switch.toggle", "entity_id": "switch.smart_plug"}]}


def rule_ids(hub) -> dict[str, str]:
    return {r["id"]: r["managed_by"] for r in hub.get("/api/rules")["rules"]}


def test_the_first_api_rule_keeps_the_example_rules(tmp_path):
    data = tmp_path / "data"  # no configuration.yaml: the embedded demo home and its examples
    hub = HubProcess(data).start()
    try:
        assert set(rule_ids(hub)) == EXAMPLES
        hub.post("/api/rules/hallway_light_on_motion/disable")
        status, body = hub.request("POST", "/api/rules", NEW)
        assert status == 201, body
        assert "ac_off_when_cold" in body["note"] and "automations/api.yaml" in body["note"]
        assert rule_ids(hub) == {**{i: "api" for i in EXAMPLES}, "mine": "api"}
        listed = {r["id"]: r for r in hub.get("/api/rules")["rules"]}
        assert listed["hallway_light_on_motion"]["status"] == "disabled"
        assert all(not r["issues"] for r in listed.values())
        # the examples are now ordinary API rules: they can be deleted, and stay deleted
        status, body = hub.request("DELETE", "/api/rules/plug_power_alert")
        assert status == 200 and "note" not in body, body
    finally:
        hub.stop()
    hub = HubProcess(data).start()
    try:
        assert set(rule_ids(hub)) == EXAMPLES - {"plug_power_alert"} | {"mine"}
    finally:
        hub.stop()


def test_deleting_an_example_first_keeps_the_other_two(tmp_path):
    hub = HubProcess(tmp_path / "data").start()
    try:
        out = run_cli(hub.data, "rules", "delete", "ac_off_when_cold")
        assert out.returncode == 0 and "ac_off_when_cold: deleted" in out.stdout, out.stderr
        assert "note: the example rules (hallway_light_on_motion, plug_power_alert) were copied" in out.stdout
        assert set(rule_ids(hub)) == EXAMPLES - {"ac_off_when_cold"}
    finally:
        hub.stop()


def test_a_runaway_loop_stops_at_its_limit_and_goes_with_its_rule(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("demo:\n  seed: 1\n  motion_per_hour: 0\n")
    hub = HubProcess(data).start()
    try:
        refused = {**NEW, "id": "huge", "action": [{"repeat": {"count": 1_000_000_000, "sequence": [{"event": "tick"}]}}]}
        status, body = hub.request("POST", "/api/rules", refused)
        assert status == 422 and "count 1000000000 is above the limit of 10000" in body["message"], body
        loop = {**NEW, "id": "loop", "action": [{"repeat": {"while": ["True"], "sequence": [{"event": "tick"}]}}]}
        assert hub.request("POST", "/api/rules", loop)[0] == 201
        hub.post("/api/rules/loop/trigger")
        [trace] = hub.wait_for(lambda: [t for t in hub.get("/api/rules/loop/traces") if t["outcome"] != "running"],
                               timeout=60, what="the loop reaching its limit")
        assert trace["outcome"] == "error" and "limit of 10000 iterations" in trace["error"], trace["error"]
        assert len(trace["steps"]) == 100 and trace["steps_dropped"] == 10_001 - 100
        hub.wait_for(lambda: "rule loop: action/0 (repeat): stopped at the limit of 10000" in hub.log(), what="log line")
        out = run_cli(data, "rules", "trace", "loop")
        assert out.returncode == 0 and f"... {10_001 - 100} steps not kept ..." in out.stdout, out.stderr

        assert hub.request("DELETE", "/api/rules/loop")[0] == 200
        assert hub.request("GET", "/api/rules/loop/traces")[0] == 404
    finally:
        hub.stop()


def test_oversized_rules_are_refused_naming_the_key(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("demo:\n  seed: 1\n  motion_per_hour: 0\n")
    hub = HubProcess(data).start()
    try:
        status, body = hub.request("POST", "/api/rules", {**NEW, "description": "d" * 5000})
        assert status == 422 and "description: String should have at most 4096 characters" in body["message"], body
        status, body = hub.request("POST", "/api/rules", {**NEW, "alias": "a" * 300})
        assert status == 422 and "alias: String should have at most 255 characters" in body["message"], body
        status, body = hub.request("POST", "/api/rules", {**NEW, "description": "d" * 100_000})
        assert status == 413 and "at most 65536 bytes" in body["message"], body
        status, body = hub.request("POST", "/api/rules/check", {**NEW, "description": "d" * 100_000})
        assert status == 413, body
        assert "mine" not in rule_ids(hub)
    finally:
        hub.stop()
