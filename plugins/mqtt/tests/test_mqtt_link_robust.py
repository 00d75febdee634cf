"""The link when the broker misbehaves, through a real ``hub run``: killed and restarted under load,
away longer than the queue holds, a wrong password, a certificate the hub does not trust, and a
broker with password and TLS that works."""

from __future__ import annotations

import json

from mqtt_testing import Client, Mosquitto, hub_yaml, secure_broker
from tests.hubproc import HubProcess, run_cli

P = "ruffhub/hub1"


#: Events, not states: a message per temperature reading, not retained, so an outage longer than
#: the queue drops the oldest (retained states only ever take one place per topic).
EVENTS = """
- id: every_reading
  mode: parallel
  trigger:
    - trigger: state
      entity_id: sensor.room_temperature
  action:
    - mqtt.publish:
        topic: "events/temperature"
        payload: "{{ trigger.to_state.state }}"
        qos: 1
"""


def _hub(tmp_path, port: int, extra: str = "", rules: str | None = None) -> HubProcess:
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(hub_yaml(port, extra=extra))
    if rules is not None:
        (data / "automations.yaml").write_text(rules)
    return HubProcess(data).start()


def _mqtt_note(hub: HubProcess) -> str | None:
    return next(p for p in hub.get("/api/plugins") if p["name"] == "mqtt")["note"]


def test_broker_killed_and_restarted_under_load(tmp_path, mosquitto):
    hub = _hub(tmp_path, mosquitto.port,
               "  queue_size: 10\n  publish:\n    qos: 1\n  commands:\n    include: ['switch.*']\n", rules=EVENTS)
    try:
        watcher = Client(mosquitto.port, subscribe=f"{P}/state/#")
        watcher.wait(f"{P}/state/sensor.room_temperature")
        watcher.close()
        mosquitto.kill()  # SIGKILL, while the demo writes a state every 50 ms
        hub.wait_for(lambda: not hub.get("/api/plugins/mqtt/status")["connected"], what="the hub seeing the broker gone")
        # Away longer than the queue holds: the oldest are dropped, and counted.
        status = hub.wait_for(lambda: (s := hub.get("/api/plugins/mqtt/status"))["dropped"] > 0 and s,
                              what="dropped messages counted")
        assert status["queued"] <= 10
        # The first error says the connection was lost, the next attempt that nothing listens.
        hub.wait_for(lambda: "broker unreachable" in hub.get("/api/plugins/mqtt/status")["last_error"],
                     what="a failed reconnection attempt")
        assert "broker unreachable" in _mqtt_note(hub)
        mosquitto.start()
        hub.wait_for(lambda: hub.get("/api/plugins/mqtt/status")["connections"] >= 2, timeout=20,
                     what="the reconnection")
        assert _mqtt_note(hub) is None
        hub.wait_for(lambda: "outgoing messages were dropped while the broker was away" in hub.log(),
                     what="one log line for the outage")
        assert hub.log().count("were dropped while the broker was away") == 1
        # Subscriptions are back: a command works again, and the retained states are current.
        c = Client(mosquitto.port, subscribe=[f"{P}/state/#", "answers/#"])
        c.publish(f"{P}/set/switch.smart_plug", {"command": "turn_on"}, response_topic="answers/1")
        assert c.wait_json("answers/1")["ok"] is True
        c.publish(f"{P}/set/switch.smart_plug", {"command": "turn_off"}, response_topic="answers/2")
        assert c.wait_json("answers/2")["ok"] is True
        c.wait_json(f"{P}/state/switch.smart_plug", lambda s: s["value"] == "off")
        for entity in ("lock.front_door", "select.water_heater_mode"):
            assert c.wait_json(f"{P}/state/{entity}")["value"] == hub.get(f"/api/states/{entity}")["value"]
        c.close()
    finally:
        hub.stop()


def test_wrong_password_is_a_clear_error_and_the_hub_stays_up(tmp_path):
    broker, _ = secure_broker(tmp_path / "broker", users={"hub": "right-password"})
    broker.start()
    try:
        hub = _hub(tmp_path, broker.port, "  username: hub\n  password: wrong-password\n")
        try:
            status = hub.wait_for(lambda: (s := hub.get("/api/plugins/mqtt/status"))["last_error"] and s,
                                  what="the refusal reported")
            assert status["connected"] is False and "not authorised" in status["last_error"]
            assert "not authorised" in _mqtt_note(hub)
            assert hub.get("/api/states/switch.smart_plug")  # the hub works without its broker
            out = run_cli(hub.data, "mqtt", "status", "--url", hub.url)
            assert "NOT connected" in out.stdout and "not authorised" in out.stdout, out
            hub.wait_for(lambda: hub.log().count("not authorised") >= 2, what="a retry")
            assert "wrong-password" not in hub.log()
        finally:
            hub.stop()
    finally:
        broker.kill()


def test_a_certificate_from_another_ca_is_refused_clearly(tmp_path):
    broker, files = secure_broker(tmp_path / "broker", tls=True)
    broker.start()
    try:
        hub = _hub(tmp_path, broker.port, f"  tls:\n    ca: {files['other_ca']}\n")
        try:
            status = hub.wait_for(lambda: (s := hub.get("/api/plugins/mqtt/status"))["last_error"] and s,
                                  what="the TLS failure reported")
            assert status["connected"] is False and "certificate" in status["last_error"]
            assert "TLS" in _mqtt_note(hub)
            assert hub.get("/api/health")
        finally:
            hub.stop()
    finally:
        broker.kill()


def test_password_and_tls_broker_works(tmp_path):
    broker, files = secure_broker(tmp_path / "broker", users={"hub": "s3cret-pw", "viewer": "v"}, tls=True)
    broker.start()
    try:
        hub = _hub(tmp_path, broker.port,
                   f"  username: hub\n  password: s3cret-pw\n  tls:\n    ca: {files['ca']}\n")
        try:
            viewer = Client(broker.port, subscribe=f"{P}/state/#", username="viewer", password="v",
                            tls={"ca_certs": str(files["ca"])})
            state = viewer.wait_json(f"{P}/state/switch.smart_plug")
            assert state["entity_id"] == "switch.smart_plug"
            viewer.close()
            status = hub.get("/api/plugins/mqtt/status")
            assert status["connected"] and status["tls"] and status["last_error"] is None
            out = run_cli(hub.data, "mqtt", "status", "--json", "--url", hub.url)
            assert json.loads(out.stdout)["connected"] is True
        finally:
            hub.stop()
    finally:
        broker.kill()
