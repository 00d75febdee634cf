"""A hub against other "hubs" that are plain MQTT clients: what a broken or hostile peer sends is
skipped with a log line naming its topic, and every answer a peer can give maps to the API's error."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import paho.mqtt.client as paho

from hub_mqtt.peers import MAX_PENDING, encode_device_id
from tests.hubproc import HubProcess

SWITCH = {"entity_id": "switch.pump", "unique_id": "relay:1:out", "platform": "relay", "device_id": "relay:1",
          "capability": "switch", "name": "Pump", "key": "out", "device_class": None, "unit": None,
          "options": {}, "commandable": True}
SENSOR = {**SWITCH, "entity_id": "sensor.flow", "key": "flow", "capability": "sensor", "name": "Flow",
          "device_class": "water", "unit": "L", "commandable": False}


def _state(hub: HubProcess, entity_id: str) -> str | None:
    status, body = hub.request("GET", f"/api/states/{entity_id}")
    return body["state"] if status == 200 else None


def _description(device_id: str, *entities: dict) -> dict:
    return {"device": {"id": device_id, "platform": "relay", "name": "Pump relay", "manufacturer": "ACME"},
            "entities": list(entities)}


class FakeHub:
    """A peer that answers each command on its set topics with what ``answers`` holds for the
    command (an error code, "ok", or nothing at all), to the MQTT 5 response topic."""

    def __init__(self, port: int, node: str) -> None:
        self.node = node
        self.answers: dict[str, str | None] = {}
        self.received: list[dict] = []
        self.release = threading.Event()  # set: answer; clear: hold every answer until it is set
        self.release.set()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._heard
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"ruffhub/{node}/set/#", qos=1)

    def _heard(self, client, userdata, msg) -> None:
        body = json.loads(msg.payload)
        self.received.append({**body, "response_topic": getattr(msg.properties, "ResponseTopic", None)})
        answer = self.answers.get(body["command"])
        if answer is None:
            return
        if not self.release.is_set():
            threading.Thread(target=self._later, args=(client, msg, body, answer), daemon=True).start()
            return
        self._answer(client, msg, body, answer)

    def _later(self, client, msg, body, answer) -> None:
        self.release.wait(30)
        self._answer(client, msg, body, answer)

    def _answer(self, client, msg, body, answer) -> None:
        reply = {"id": body["id"], "ok": True, "result": {"done": body["command"]}} if answer == "ok" else \
            {"id": body["id"], "ok": False, "error": answer, "message": f"{answer} from {self.node}"}
        props = paho.Properties(paho.PacketTypes.PUBLISH)
        props.CorrelationData = msg.properties.CorrelationData
        client.publish(msg.properties.ResponseTopic, json.dumps(reply), qos=1, properties=props)

    def publish(self, topic: str, payload, retain: bool = True) -> None:
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        self.client.publish(f"ruffhub/{self.node}/{topic}", payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_bad_descriptions_skipped_and_peer_answers_mapped(tmp_path, mosquitto, mqtt_client):
    fake = FakeHub(mosquitto.port, "fake")
    # A description this hub (hub_b) left on the broker in an earlier life, of a device it no longer has.
    FakeHub(mosquitto.port, "hub_b").publish("device/ghost", _description("ghost", SWITCH))
    fake.publish("status", "online")
    fake.publish("device/not_json", "{not json")
    fake.publish("device/deep", "[" * 15000 + "]" * 15000)
    fake.publish("device/wrong", {"device": {"id": "wrong"}, "entities": "none"})
    fake.publish("device/other", _description("relay:1", SWITCH))  # says it is another device
    fake.publish("device/mqtt:peer:hub:demo:x", _description("mqtt:peer:hub:demo:x", SWITCH))
    fake.publish("device/huge", _description("huge", *[{**SWITCH, "key": f"k{i}"} for i in range(300)]))
    odd = {**SENSOR, "key": "odd", "entity_id": "sensor.odd", "capability": "teleporter", "device_class": None}
    fake.publish("device/relay:1", _description("relay:1", SWITCH, SENSOR, odd))
    fake.publish("state/switch.pump", {"entity_id": "switch.pump", "value": "on", "available": True, "attributes": {}})
    fake.publish("state/sensor.flow", '{"value": NaN, "available": true, "attributes": {}}')

    data = tmp_path / "b"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"hub:\n  command_timeout: 1\nmqtt:\n  port: {mosquitto.port}\n  node_id: hub_b\n  reconnect_max: 1\n")
    watcher = mqtt_client(subscribe="ruffhub/hub_b/#")  # before the hub: it sees the withdrawal happen
    hub = HubProcess(data).start()
    try:
        device_id = "mqtt:peer:fake:relay:1"
        watcher.wait("ruffhub/hub_b/device/ghost", lambda p: p == b"")  # withdrawn
        hub.wait_for(lambda: _state(hub, "switch.fake_pump") == "on", what="the pump mirrored")
        devices = [d["id"] for d in hub.get("/api/devices")]
        assert devices == [device_id], devices  # only the good description became a device
        entities = sorted(e["entity_id"] for e in hub.get("/api/entities"))
        assert entities == ["sensor.fake_flow", "switch.fake_pump"]  # the unknown capability left out
        assert _state(hub, "sensor.fake_flow") == "unavailable"  # NaN is no state

        # Every answer a peer can give becomes the API's own error, with the peer's message.
        url = "/api/entities/switch.fake_pump/commands/"
        fake.answers = {"turn_on": "ok", "turn_off": "command_refused", "toggle": "entity_unavailable"}
        assert hub.post(url + "turn_on", {})["result"] == {"done": "turn_on"}
        status, body = hub.request("POST", url + "turn_off", {})
        assert status == 422 and body["message"] == "hub fake: command_refused from fake", body
        status, body = hub.request("POST", url + "toggle", {})
        assert status == 409 and "entity_unavailable from fake" in body["message"], body
        fake.answers = {"turn_on": "unknown_entity", "turn_off": None}
        status, body = hub.request("POST", url + "turn_on", {})
        assert status == 502 and "unknown_entity from fake" in body["message"], body
        status, body = hub.request("POST", url + "turn_off", {})  # no answer: the hub's command timeout
        assert status == 504, body
        sent = fake.received[0]
        assert sent["from"] == "hub_b" and sent["reply_to"] == "ruffhub/hub_b/reply"
        assert sent["response_topic"] == "ruffhub/hub_b/reply" and sent["args"] == {}
        assert hub.get("/api/plugins/mqtt/status")["connected"] is True

        # The peer removes the device (an empty retained description): it leaves this hub.
        fake.publish("device/relay:1", b"")
        hub.wait_for(lambda: hub.get("/api/devices") == [], what="the mirror removed")
        # The peer's last will: what it had is unavailable at once, and commands are not sent.
        fake.publish("device/relay:1", _description("relay:1", SWITCH))
        fake.publish("state/switch.pump", {"entity_id": "switch.pump", "value": "on", "available": True, "attributes": {}})
        hub.wait_for(lambda: _state(hub, "switch.fake_pump") == "on", what="mirrored again")
        fake.publish("status", "offline")
        hub.wait_for(lambda: _state(hub, "switch.fake_pump") == "unavailable", what="offline")

        # While this hub is down, the peer removes its device for good: the mirror this hub kept in
        # its store goes once the broker has had time to send every description.
        hub.stop()
        fake.publish("device/relay:1", b"")
        hub.start()
        hub.wait_for(lambda: hub.get("/api/devices") == [], timeout=20, what="the stale mirror pruned")
    finally:
        hub.stop()
        fake.close()
    log = hub.log()
    for topic in ("ruffhub/fake/device/not_json", "ruffhub/fake/device/deep", "ruffhub/fake/device/wrong",
                  "ruffhub/fake/device/other", "ruffhub/fake/device/mqtt:peer:hub:demo:x", "ruffhub/fake/device/huge",
                  "ruffhub/fake/device/relay:1 sensor.odd", "ruffhub/fake/state/sensor.flow"):
        assert f"{topic} skipped" in log, (topic, log[-4000:])
    assert "teleporter" in log
    assert "mqtt:peer:fake:relay:1: no hub describes it any more; removed" in log
    assert "Traceback" not in log, log[-4000:]


def test_device_ids_are_one_topic_level():
    for device_id in ("demo:smart_plug", "modbus:10.0.0.5/3", "x+y#z", "caf\u00e9 b%r", "zigbee:00124b00"):
        level = encode_device_id(device_id)
        assert not set(level) & set("/+# ") and unquote(level) == device_id, level
    assert encode_device_id("demo:smart_plug") == "demo:smart_plug"
    assert encode_device_id("modbus:10.0.0.5/3") == "modbus:10.0.0.5%2F3"


def test_commands_waiting_for_a_peer_are_bounded(tmp_path, mosquitto):
    """A peer that holds its answers cannot make this hub keep an unbounded number of commands:
    past the bound the next is refused at once, and the held ones complete when it answers."""
    fake = FakeHub(mosquitto.port, "slow")
    fake.publish("status", "online")
    fake.publish("device/relay:1", _description("relay:1", SWITCH))
    fake.publish("state/switch.pump", {"entity_id": "switch.pump", "value": "off", "available": True, "attributes": {}})
    fake.answers = {"turn_on": "ok"}
    fake.release.clear()
    data = tmp_path / "b"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"hub:\n  command_timeout: 20\nmqtt:\n  port: {mosquitto.port}\n  node_id: hub_b\n")
    hub = HubProcess(data).start()
    refused = threading.Event()

    def command(_: int) -> tuple[int, dict]:
        status, body = hub.request("POST", "/api/entities/switch.slow_pump/commands/turn_on", {})
        if status == 502:
            refused.set()
        return status, body

    try:
        hub.wait_for(lambda: _state(hub, "switch.slow_pump") == "off", what="the pump mirrored")
        # A device id too long for a local id of its own is mirrored under its digest.
        long_id = "relay:" + "x" * 150
        fake.publish(f"device/{long_id}", _description(long_id, {**SENSOR, "device_id": long_id}))
        hub.wait_for(lambda: any(d["id"].startswith("mqtt:peer:slow:sha256-") for d in hub.get("/api/devices")),
                     what="the long-named device mirrored")
        with ThreadPoolExecutor(MAX_PENDING + 20) as pool:
            futures = [pool.submit(command, i) for i in range(MAX_PENDING + 20)]
            assert refused.wait(30), "no command was refused"
            held = len(fake.received)
            fake.release.set()
            results = [f.result() for f in futures]
    finally:
        hub.stop()
        fake.close()
    # While the peer held its answers, no more than the bound were sent to it; the rest were refused
    # at once. (Commands still on their way when it answered may have gone through: that is fine.)
    assert held <= MAX_PENDING
    statuses = [status for status, _ in results]
    assert set(statuses) == {200, 502} and statuses.count(200) >= MAX_PENDING, statuses
    assert all("already wait" in body["message"] for status, body in results if status == 502)
