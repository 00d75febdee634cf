"""Discovery configs that are wrong in every way a broker can make them wrong: each is skipped with
one log line naming its topic and the reason, and the hub keeps adopting the good ones. Also HA's
device-based discovery (``cmps``), ``discovery.ignore`` and ``discovery.max_devices``."""

from __future__ import annotations


from mqtt_testing import hub_yaml
from tests.hubproc import HubProcess

P = "homeassistant"
GOOD = {"name": "Good", "stat_t": "good/state", "cmd_t": "good/set", "uniq_id": "good1", "dev": {"ids": "good1"}}


def _start(tmp_path, port: int, extra: str = "") -> HubProcess:
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(hub_yaml(port, extra=extra))
    return HubProcess(data).start()


def _exists(hub: HubProcess, entity_id: str) -> bool:
    return hub.request("GET", f"/api/entities/{entity_id}")[0] == 200


MALFORMED = {
    f"{P}/switch/bad/json/config": (b'{"name": "x", ', "not JSON"),
    f"{P}/switch/bad/list/config": (b"[1, 2]", "not a JSON object"),
    f"{P}/vacuum/bad/unknown/config": (b'{"name": "x", "stat_t": "a/b"}', "component 'vacuum' is not one this hub adopts"),
    f"{P}/sensor/bad/nostate/config": (b'{"name": "x", "unit_of_meas": "W"}', "state_topic: Field required"),
    f"{P}/switch/bad/types/config": (b'{"name": "x", "cmd_t": "a/set", "qos": "high"}', "qos:"),
    f"{P}/switch/bad/deep/config": (b'{"a":' * 15000 + b"1" + b"}" * 15000, "not JSON: JSON nested too deeply"),
    f"{P}/sensor/bad/nan/config": (b'{"name": "x", "stat_t": "a/b", "unit_of_meas": "W", "exp_aft": NaN}', "not JSON"),
    f"{P}/sensor/bad/template/config": (b'{"name": "x", "stat_t": "a/b", "unit_of_meas": "W", '
                                        b'"val_tpl": "{{ value_json.x | map(\'y\') }}"}',
                                        "template \"{{ value_json.x | map('y') }}\" is not supported"),
    f"{P}/switch/bad/wildcard/config": (b'{"name": "x", "cmd_t": "a/+/set"}', "wildcards"),
}


def test_malformed_configs_are_skipped_with_their_topic_and_reason(tmp_path, mosquitto, mqtt_client):
    broker = mqtt_client(subscribe=None)
    hub = _start(tmp_path, mosquitto.port)
    try:
        for topic, (payload, _) in MALFORMED.items():
            broker.publish(topic, payload, retain=True)
        # Another Ruff Hub's own configs: hubs see each other through peers, never as HA devices.
        broker.publish(f"{P}/switch/hub2/switch_relay/config",
                       dict(GOOD, name="Other hub relay", uniq_id="hub2_relay", o={"name": "Ruff Hub", "sw": "0.1.0"}),
                       retain=True)
        broker.publish(f"{P}/switch/ok/good/config", GOOD, retain=True)
        hub.wait_for(lambda: _exists(hub, "switch.good"), 10, "the good switch adopted")
        log = hub.wait_for(lambda: (lambda text: text if all(t in text for t in MALFORMED) else None)(hub.log()),
                           10, "a line per malformed config")
        for topic, (_, reason) in MALFORMED.items():
            lines = [line for line in log.splitlines() if topic in line]
            assert len(lines) == 1 and reason in lines[0], (topic, lines)
        assert hub.get("/api/plugins/mqtt/status")["connected"] is True
        assert not _exists(hub, "switch.other_hub_relay") and "hub2/switch_relay" not in log
        # The good one still works after all that.
        broker.publish("good/state", "ON", retain=True)
        hub.wait_for(lambda: hub.get("/api/states/switch.good")["state"] == "on", 10, "the good switch's state")

        # Bad state messages: one line for the entity, its state kept, the next good one taken.
        broker.publish(f"{P}/sensor/ok/meter/config", {"name": "Meter", "stat_t": "meter/state", "unit_of_meas": "W",
                                                       "val_tpl": "{{ value_json.w }}", "uniq_id": "m1"}, retain=True)
        broker.publish("meter/state", {"w": 230}, retain=True)
        hub.wait_for(lambda: hub.request("GET", "/api/states/sensor.meter")[1].get("state") == 230, 10, "the meter")
        for bad in (b'{"w": "abc"}', b"[" * 15000 + b"]" * 15000, b'{"w": NaN}', b'{"x": 1}', b"\xff\xfe"):
            broker.publish("meter/state", bad)
        broker.publish("meter/state", {"w": 231})
        hub.wait_for(lambda: hub.get("/api/states/sensor.meter")["state"] == 231, 10, "the next good reading")
        lines = [line for line in hub.log().splitlines() if "sensor.meter" in line]
        assert len(lines) == 1 and "'abc' on meter/state is not a number" in lines[0], lines
    finally:
        hub.stop()


def test_device_based_discovery_ignore_and_the_bound_on_devices(tmp_path, mosquitto, mqtt_client):
    broker = mqtt_client(subscribe=None)
    extra = "  discovery:\n    max_devices: 2\n    ignore: ['homeassistant/*/noisy/*']\n"
    hub = _start(tmp_path, mosquitto.port, extra)
    try:
        # HA's device discovery: shared options outside "cmps", abbreviations and "~" inside.
        device = {"dev": {"ids": "ea334450945afc", "name": "Kitchen", "mf": "Bla electronics", "mdl": "xya"},
                  "o": {"name": "bla2mqtt", "sw": "2.1"}, "~": "kitchen/th", "avty_t": "~/status",
                  "cmps": {"t": {"p": "sensor", "dev_cla": "temperature", "unit_of_meas": "°C", "stat_t": "~/state",
                                 "val_tpl": "{{ value_json.temperature | float | round(1) }}", "uniq_id": "k_t"},
                           "h": {"p": "sensor", "dev_cla": "humidity", "unit_of_meas": "%", "stat_t": "~/state",
                                 "val_tpl": "{{ value_json.humidity }}", "uniq_id": "k_h"},
                           "bad": {"p": "sensor", "unit_of_meas": "%", "stat_t": "~/state",
                                   "val_tpl": "{% if 1 %}x{% endif %}", "uniq_id": "k_bad"}}}
        broker.publish(f"{P}/device/kitchen/config", device, retain=True)
        broker.publish("kitchen/th/status", "online", retain=True)
        broker.publish("kitchen/th/state", {"temperature": 21.456, "humidity": 40}, retain=True)
        hub.wait_for(lambda: hub.request("GET", "/api/states/sensor.kitchen_temperature")[1].get("state") == 21.5,
                     10, "the device's temperature")
        assert hub.get("/api/states/sensor.kitchen_humidity")["state"] == 40
        assert not _exists(hub, "sensor.kitchen")
        assert f"{P}/device/kitchen/config#bad skipped" in hub.log()  # one component, not the device
        # One component dropped from the device config: that entity goes, the rest stays.
        del device["cmps"]["h"]
        broker.publish(f"{P}/device/kitchen/config", device, retain=True)
        hub.wait_for(lambda: not _exists(hub, "sensor.kitchen_humidity"), 10, "humidity gone")
        assert hub.get("/api/states/sensor.kitchen_temperature")["state"] == 21.5

        broker.publish(f"{P}/switch/noisy/x/config", dict(GOOD, name="Noisy", uniq_id="n"), retain=True)
        for n in range(3):
            broker.publish(f"{P}/switch/many/s{n}/config",
                           {"name": f"Many {n}", "cmd_t": f"many/{n}/set", "uniq_id": f"many{n}"}, retain=True)
        hub.wait_for(lambda: _exists(hub, "switch.many_0"), 10, "the second device")
        hub.wait_for(lambda: "discovery.max_devices (2)" in hub.log(), 10, "the bound logged")
        assert not _exists(hub, "switch.many_1") and not _exists(hub, "switch.many_2")
        assert not _exists(hub, "switch.noisy")
    finally:
        hub.stop()
