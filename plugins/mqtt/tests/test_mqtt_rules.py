"""The ``mqtt`` trigger and the ``mqtt.publish`` action in a real ``hub run`` on a real mosquitto."""

from __future__ import annotations

from mqtt_testing import hub_yaml
from tests.hubproc import HubProcess

RULES = """\
- id: button_lights
  trigger:
    - trigger: mqtt
      topic: house/+/button
      value_template: "{{ value_json.action }}"
      payload: "on"
  action:
    - call: light.turn_on
      entity_id: light.living_room
      args: {brightness: 77}

- id: tell_the_broker
  trigger:
    - trigger: state
      entity_id: light.living_room
      to: "on"
  action:
    - mqtt.publish:
        topic: "house/{{ trigger.entity_id }}/was"
        payload: {state: "{{ trigger.to_state.state }}", brightness: "{{ states('light.living_room') }}"}
        qos: 1
        retain: true
    - action: notify.phone
      data: {title: Light, message: "living room {{ trigger.to_state.state }}"}

- id: retained_at_start
  trigger:
    - trigger: mqtt
      topic: house/config
  action:
    - log: "config {{ trigger.payload }} retained={{ trigger.retain }}"

- id: live_config
  trigger:
    - trigger: mqtt
      topic: house/config
  condition:
    - "{{ not trigger.retain }}"
  action:
    - log: "live config {{ trigger.payload }}"

- id: flood
  mode: queued
  max: 3
  trigger:
    - trigger: mqtt
      topic: flood/#
  action:
    - delay: 1
"""

BAD = """\
- id: bad_filter
  trigger:
    - trigger: mqtt
      topic: "house/#/button"
  action:
    - log: never

- id: bad_qos
  trigger:
    - trigger: mqtt
      topic: house/x
      qos: 3
  action:
    - log: never

- id: bad_template
  trigger:
    - trigger: mqtt
      topic: house/x
      value_template: "{{ value_json.action ) }}"
  action:
    - log: never

- id: bad_publish
  trigger:
    - trigger: mqtt
      topic: house/y
  action:
    - mqtt.publish: {topic: "house/+/set", payload: x}
    - mqtt.publish: {topic: "house/y", colour: red}
"""


def _rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_mqtt_trigger_and_publish_action(tmp_path, mosquitto, mqtt_client):
    watcher = mqtt_client(subscribe=["house/#", "ruffhub/hub1/status", "ruffhub/hub1/notify"])
    watcher.publish("house/config", "v1", retain=True)
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(hub_yaml(mosquitto.port))
    (data / "automations.yaml").write_text(RULES)
    (data / "automations").mkdir()
    (data / "automations" / "bad.yaml").write_text(BAD)
    hub = HubProcess(data).start()
    try:
        watcher.wait("ruffhub/hub1/status", lambda p: p == b"online")
        rules = {r["id"]: r for r in hub.get("/api/rules")["rules"]}

        # Bad configuration is refused when the rule loads, each reason with its file, line and key.
        for rule_id, words in (("bad_filter", "'#' must be a whole level"), ("bad_qos", "qos"),
                               ("bad_template", "value_template"), ("bad_publish", "colour")):
            assert rules[rule_id]["status"] == "error", rules[rule_id]
            issues = " ".join(rules[rule_id]["issues"])
            assert "bad.yaml:" in issues and words in issues, issues
        assert "wildcards" in " ".join(rules["bad_publish"]["issues"])

        # A retained message delivered at subscription fires, as in Home Assistant, and says so.
        trace = hub.wait_for(lambda: hub.get("/api/rules/retained_at_start/traces"), what="retained fires")[0]
        assert trace["trigger"]["payload"] == "v1" and trace["trigger"]["retain"] is True
        watcher.publish("house/config", "v2")  # a live one; the rule that skips retained ones runs
        hub.wait_for(lambda: [t for t in hub.get("/api/rules/live_config/traces") if t["outcome"] != "condition_failed"],
                     what="the live message's run")

        # A message whose templated value does not match does nothing; one that matches turns the light on.
        assert hub.get("/api/states/light.living_room")["state"] == "off"
        watcher.publish("house/hall/button", {"action": "off"})
        watcher.publish("house/hall/notbutton/x", {"action": "on"})
        watcher.publish("house/hall/button", "not json")
        watcher.publish("house/hall/button", {"action": "on"})
        hub.wait_for(lambda: hub.get("/api/states/light.living_room")["state"] == "on", what="light on")
        traces = hub.get("/api/rules/button_lights/traces")
        assert len(traces) == 1
        assert traces[0]["trigger"]["topic"] == "house/hall/button"
        assert traces[0]["trigger"]["payload_json"] == {"action": "on"}
        assert traces[0]["trigger"]["retain"] is False

        # The light's state change publishes, templates rendered, retained as asked.
        sent = watcher.wait_json("house/light.living_room/was")
        assert sent == {"state": "on", "brightness": "on"}
        assert any(t == "house/light.living_room/was" and retained is False for t, _, retained in watcher.messages)

        # A rule's notification reaches the broker through the hub_notify hook, and the trace says so.
        note = watcher.wait_json("ruffhub/hub1/notify")
        assert note == {"service": "notify.phone", "message": "living room on", "title": "Light",
                        "source": "rule:tell_the_broker"}
        step = hub.get("/api/rules/tell_the_broker/traces")[0]["steps"][-1]
        assert step["action"] == "notify" and step["result"]["delivered_to"] == ["mqtt"], step

        # A flood: the rule's mode decides what is kept (3 queued, the rest skipped), and a second
        # flood costs no more memory than the first left behind.
        flood = mqtt_client(subscribe=None)
        rss = []
        for round_ in range(3):
            for i in range(3000):
                flood.client.publish(f"flood/{i % 7}", b"x" * 200, qos=0)
            flood.publish("flood/last", str(round_))
            hub.wait_for(lambda: any(t["trigger"].get("topic") == "flood/last" and t["trigger"]["payload"] == str(round_)
                                     for t in hub.get("/api/rules/flood/traces")), timeout=30, what="the flood's end")
            rss.append(_rss_kb(hub.proc.pid))
        traces = hub.get("/api/rules/flood/traces")
        assert len(traces) <= 20
        assert any(t["outcome"] == "skipped" and "queue full" in (t["error"] or "") for t in traces)
        rule = next(r for r in hub.get("/api/rules")["rules"] if r["id"] == "flood")
        assert rule["running"] <= 1
        print(f"RSS after each flood of 3000 trigger messages: {rss} kB")
        assert rss[2] - rss[1] < 8_000, rss
    finally:
        hub.stop()
    log = hub.log()
    assert "config v1 retained=True" in log and "live config v2" in log and "live config v1" not in log
    assert "Traceback" not in log, log[-3000:]
