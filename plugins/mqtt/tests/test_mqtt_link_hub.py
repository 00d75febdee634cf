"""States out and commands in, through a real ``hub run`` (the demo home) and a real mosquitto."""

from __future__ import annotations

import json

import pytest

from mqtt_testing import Client, hub_yaml
from tests.hubproc import HubProcess

P = "ruffhub/hub1"
CONFIG = ("  commands:\n    include: ['switch.*', 'lock.*']\n    exclude: ['switch.hidden*']\n"
          "  publish:\n    exclude: ['sensor.virtual_*']\n")


@pytest.fixture
def hub(tmp_path, mosquitto):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        hub_yaml(mosquitto.port, extra=CONFIG).replace("demo:\n", "demo:\n  lock_code: '4711'\n"))
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def _value(topic_payload: bytes):
    return json.loads(topic_payload)["value"]


def test_states_arrive_retained_and_a_late_subscriber_gets_them(hub, mosquitto, mqtt_client):
    early = mqtt_client(subscribe=f"{P}/state/#")
    state = early.wait_json(f"{P}/state/switch.smart_plug")
    assert state["entity_id"] == "switch.smart_plug" and state["state"] in ("on", "off")
    assert set(state) >= {"value", "available", "attributes", "last_changed", "last_updated"}
    # A subscriber that comes later gets every current state at once, as retained messages.
    late = mqtt_client(subscribe=f"{P}/state/#")
    late.wait(f"{P}/state/sensor.room_temperature")
    retained = {topic for topic, _, retain in late.messages if retain}
    assert {f"{P}/state/switch.smart_plug", f"{P}/state/lock.front_door"} <= retained
    # What the configuration leaves out is not published.
    assert not any("virtual_" in topic for topic in late.latest)
    status = hub.get("/api/plugins/mqtt/status")
    assert status["connected"] and status["protocol"] == "5" and status["published"] > 5
    assert status["commandable"] == 2  # the plug and the lock


def test_a_command_switches_the_plug_and_replies(hub, mqtt_client):
    watcher = mqtt_client(subscribe=[f"{P}/state/#", f"{P}/result/#", "answers/#"])
    watcher.wait_json(f"{P}/state/switch.smart_plug")
    for command, expected in (("turn_on", "on"), ("turn_off", "off")):
        # MQTT 5 request/response: the answer on the response topic, with the correlation data.
        watcher.publish(f"{P}/set/switch.smart_plug", {"command": command, "id": command},
                        response_topic="answers/mine", correlation=command.encode())
        reply = watcher.wait_json("answers/mine", lambda r: r["id"] == command)
        assert reply["ok"] is True and watcher.correlation["answers/mine"] == command.encode()
        assert watcher.wait_json(f"{P}/state/switch.smart_plug", lambda s: s["value"] == expected)
        assert hub.get("/api/states/switch.smart_plug")["value"] == expected
    # reply_to, for MQTT 3.1.1 senders
    watcher.publish(f"{P}/set/switch.smart_plug", {"command": "toggle", "id": 7, "reply_to": "answers/v3"})
    assert watcher.wait_json("answers/v3")["ok"] is True
    # neither: the hub's result topic
    watcher.publish(f"{P}/set/switch.smart_plug", {"command": "turn_off"})
    assert watcher.wait_json(f"{P}/result/switch.smart_plug")["ok"] is True


def test_refusals_get_error_replies_and_a_log_line(hub, mqtt_client):
    c = mqtt_client(subscribe="answers/#")
    cases = [
        ("sensor.room_temperature", {"command": "turn_on", "id": 1}, "not_exposed"),
        ("switch.smart_plug", b"not json {", "bad_payload"),
        ("switch.smart_plug", [1, 2], "bad_payload"),
        ("switch.smart_plug", {"args": {}}, "bad_payload"),
        ("switch.no_such_thing", {"command": "turn_on"}, "unknown_entity"),
        ("switch.smart_plug", {"command": "turn_on", "args": {"brightness": "x"}}, "invalid_arguments"),
        ("switch.smart_plug", {"command": "fly"}, "unknown_command"),
    ]
    for n, (entity, payload, code) in enumerate(cases):
        c.publish(f"{P}/set/{entity}", payload, response_topic=f"answers/{n}")
        reply = c.wait_json(f"answers/{n}")
        assert reply["ok"] is False and reply["error"] == code, (entity, payload, reply)
        assert reply["message"]
    # a deeply nested payload is a bad payload, not a crash
    c.publish(f"{P}/set/switch.smart_plug", "[" * 15000 + "]" * 15000, response_topic="answers/deep")
    assert c.wait_json("answers/deep")["error"] == "bad_payload"
    hub.wait_for(lambda: f"{P}/set/switch.no_such_thing" in hub.log(), what="the topic in the log")
    assert f"{P}/set/sensor.room_temperature" in hub.log()
    assert hub.get("/api/health")  # and the hub is fine


def test_a_lock_code_never_reaches_a_reply_or_the_log(hub, mqtt_client):
    c = mqtt_client(subscribe=[f"{P}/state/#", "answers/#"])
    c.publish(f"{P}/set/lock.front_door", {"command": "unlock", "args": {"code": "98765"}}, response_topic="answers/bad")
    reply = c.wait_json("answers/bad")
    assert reply["error"] == "command_refused"
    c.publish(f"{P}/set/lock.front_door", {"command": "unlock", "args": {"code": "4711"}}, response_topic="answers/ok")
    assert c.wait_json("answers/ok")["ok"] is True
    c.wait_json(f"{P}/state/lock.front_door", lambda s: s["value"] == "unlocked")
    hub.stop()
    text = hub.log() + json.dumps([m[1].decode(errors="replace") for m in c.messages])
    assert "98765" not in text and "4711" not in text


def test_a_retained_command_is_never_run(hub, mqtt_client):
    c = mqtt_client(subscribe=[f"{P}/state/#"])
    before = c.wait_json(f"{P}/state/switch.smart_plug")["value"]
    command = "turn_off" if before else "turn_on"
    c.publish(f"{P}/set/switch.smart_plug", {"command": command}, retain=True)
    hub.wait_for(lambda: "retained command ignored" in hub.log(), what="the retained command's log line")
    assert hub.get("/api/states/switch.smart_plug")["value"] == before
    c.publish(f"{P}/set/switch.smart_plug", b"", retain=True)  # clean up the broker


def test_a_flood_of_commands_gets_one_reply_each_and_oversized_messages_are_dropped(hub, mqtt_client):
    c = mqtt_client(subscribe="answers/#")
    for n in range(300):
        c.client.publish(f"{P}/set/lock.front_door",
                         json.dumps({"command": "lock" if n % 2 else "unlock", "args": {"code": "4711"},
                                     "id": n, "reply_to": "answers/flood"}), qos=0)
    c.wait("answers/flood", lambda p: json.loads(p)["id"] == 299, timeout=30)

    def replies() -> list[dict]:
        return [json.loads(p) for t, p, _ in list(c.messages) if t == "answers/flood"]

    hub.wait_for(lambda: len(replies()) >= 300, timeout=30, what="a reply to every command")
    answers = replies()
    assert sorted(r["id"] for r in answers) == list(range(300))  # one each, none twice
    assert all(r["ok"] or r["error"] in ("busy", "command_refused", "entity_unavailable") for r in answers)
    # A message past the 256 kB limit is dropped with a log line, and the hub goes on.
    c.publish(f"{P}/set/switch.smart_plug", b"x" * 300_000)
    hub.wait_for(lambda: hub.get("/api/plugins/mqtt/status")["oversized"] == 1, what="the oversized message counted")
    assert f"{P}/set/switch.smart_plug: a message of 300000 bytes dropped" in hub.log()
    c.publish(f"{P}/set/switch.smart_plug", {"command": "turn_on"}, response_topic="answers/after")
    assert c.wait_json("answers/after")["ok"] is True


def test_a_stopped_hub_says_offline(hub, mqtt_client):
    watcher = mqtt_client(subscribe=f"{P}/status")
    watcher.wait(f"{P}/status", lambda p: p == b"online")
    assert hub.stop() == 0
    # A clean disconnect makes the broker drop the last will: the hub says it itself.
    assert watcher.wait(f"{P}/status", lambda p: p == b"offline") == b"offline"
