"""Home Assistant discovery in-process (a hub with the bridge and a small plugin of its own, against a
real mosquitto), for the cases a demo run does not reach: a config that depends on the state, bad
messages on the discovery topics, and discovery switched off after a run that announced."""

from __future__ import annotations

import asyncio
import json

import hub_mqtt
from hub import hookimpl
from hub.devices import Device, EntitySpec
from hub.runtime import Hub
from mqtt_testing import until

DOOR = "homeassistant/lock/hub1/lock_door/config"
PUMP = "homeassistant/switch/hub1/switch_pump/config"
HUB = "homeassistant/binary_sensor/hub1/ruffhub_status/config"


class Kit:
    @hookimpl
    def hub_discover(self, hub):
        self.ctx = hub
        self.handles = hub.add_device(Device(id="box", name="Box"), [
            EntitySpec(key="door", capability="lock", name="Door", object_id="door"),
            EntitySpec(key="pump", capability="switch", name="Pump", object_id="pump"),
        ])

    @hookimpl
    async def hub_handle_command(self, hub, entity, command, args):
        return None


async def started(tmp_path, port: int, extra: str = "") -> tuple[Hub, Kit]:
    (tmp_path / "configuration.yaml").write_text(
        f"hub: {{}}\nmqtt:\n  port: {port}\n  node_id: hub1\n  reconnect_max: 1\n"
        f"  commands:\n    include: ['*']\n{extra}")
    hub, kit = Hub(tmp_path, entrypoints=False), Kit()
    hub.plugins.register("mqtt", hub_mqtt)
    hub.plugins.register("kit", kit)
    await hub.start()
    return hub, kit


def config(client, topic):
    payload = client.latest.get(topic)
    return json.loads(payload) if payload else None


async def test_a_lock_asks_for_its_code_once_its_state_says_one_is_required(tmp_path, mosquitto, mqtt_client):
    ha = mqtt_client(subscribe="homeassistant/#")
    hub, kit = await started(tmp_path, mosquitto.port)
    try:
        door = await until(lambda: config(ha, DOOR), "the door's config")
        assert "code_format" not in door
        kit.handles["door"].set("locked", code_required=True)
        await until(lambda: "code_format" in (config(ha, DOOR) or {}), "the door's code format")
        sent = len(ha.messages)
        kit.handles["door"].set("unlocked")  # nothing the config says changed: not sent again
        kit.handles["pump"].set("on")
        await asyncio.sleep(0.2)
        assert [t for t, _, _ in ha.messages[sent:] if t == DOOR] == []
    finally:
        await hub.stop()


async def test_bad_messages_on_the_discovery_topics_are_skipped(tmp_path, mosquitto, mqtt_client, caplog):
    ha = mqtt_client(subscribe="homeassistant/#")
    # Retained before the hub comes, so the hub reads them as an earlier run's leftovers.
    for topic, payload in [("homeassistant/switch/hub1/junk/config", b"[" * 15000),
                           ("homeassistant/switch/hub1/junk2/config", b'{"o": "Ruff Hub"}'),
                           ("homeassistant/switch/hub1/junk3/config", b"[1, 2]"),
                           ("homeassistant/switch/hub1/other/config", b'{"name": "not ours"}')]:
        ha.publish(topic, payload, retain=True)
    hub, kit = await started(tmp_path, mosquitto.port)
    try:
        await until(lambda: config(ha, PUMP), "the pump's config")
        for payload in (b"\xff\xfe", b"x" * 100_000):
            ha.publish("homeassistant/status", payload)
        await until(lambda: "(100000 bytes)" in caplog.text, "the long status skipped")
        ha.publish(PUMP, b"", retain=True)  # Home Assistant restarted on an empty broker ...
        await until(lambda: ha.latest.get(PUMP) == b"", "the pump's config cleared")
        ha.publish("homeassistant/status", b"online")  # ... and says so: everything comes back
        await until(lambda: config(ha, PUMP), "the pump's config again")
        assert hub.plugins.info["mqtt"].status == "running"
        logged = caplog.text
        assert "homeassistant/status: skipped a status that is neither online nor offline" in logged
        assert "homeassistant/switch/hub1/junk/config: skipped a discovery config that is not JSON" in logged
        for junk in ("junk2", "junk3", "other"):
            assert f"homeassistant/switch/hub1/{junk}/config: a discovery config under this hub's node id" in logged
        assert ha.latest["homeassistant/switch/hub1/other/config"] == b'{"name": "not ours"}'  # not the hub's
    finally:
        await hub.stop()


async def test_a_removed_device_and_discovery_switched_off_leave_home_assistant(tmp_path, mosquitto, mqtt_client):
    ha = mqtt_client(subscribe="homeassistant/#")
    hub, kit = await started(tmp_path, mosquitto.port)
    try:
        await until(lambda: config(ha, PUMP) and config(ha, DOOR) and config(ha, HUB), "the configs")
        kit.ctx.remove_device("box")
        await until(lambda: ha.latest.get(PUMP) == b"" and ha.latest.get(DOOR) == b"", "the configs withdrawn")
        kit.ctx.add_device(Device(id="box", name="Box"), [EntitySpec(key="pump", capability="switch", name="Pump",
                                                                     object_id="pump")])
        await until(lambda: config(ha, PUMP), "the pump announced again when added again")
    finally:
        await hub.stop()

    hub, kit = await started(tmp_path, mosquitto.port, "  publish:\n    discovery: false\n")
    try:
        await until(lambda: ha.latest.get(PUMP) == b"" and ha.latest.get(HUB) == b"", "the earlier run's withdrawn")
    finally:
        await hub.stop()


class Many:
    @hookimpl
    def hub_discover(self, hub):
        hub.add_device(Device(id="rack", name="Rack"),
                       [EntitySpec(key=f"s{n}", capability="sensor", device_class="temperature", name=f"Probe {n}",
                                   object_id=f"probe_{n}") for n in range(500)])


async def test_announcing_many_entities_never_overflows_the_links_queue(tmp_path, mosquitto, mqtt_client):
    """A queue of 20 messages and 500 entities: the announcements (and the states sent again at the
    connection) wait for room instead of pushing each other out of the bounded queue, so every
    config and every state reaches the broker. (The 500 states written before the first connection
    overflow the queue, as an outage does; the connection sends them all again.)"""
    ha = mqtt_client(subscribe=["homeassistant/sensor/hub1/#", "ruffhub/hub1/state/#"])
    (tmp_path / "configuration.yaml").write_text(
        f"hub: {{}}\nmqtt:\n  port: {mosquitto.port}\n  node_id: hub1\n  queue_size: 20\n")
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("mqtt", hub_mqtt)
    hub.plugins.register("many", Many())
    await hub.start()
    try:
        await until(lambda: sum(1 for t, p in ha.latest.items() if p and t.startswith("homeassistant/")) == 500,
                    "500 configs", timeout=30)
        await until(lambda: sum(1 for t, p in ha.latest.items() if p and t.startswith("ruffhub/")) == 500,
                    "500 states", timeout=30)
    finally:
        await hub.stop()


async def test_a_broker_that_lost_everything_gets_every_config_again_on_reconnection(tmp_path, mosquitto):
    from mqtt_testing import Client

    hub, kit = await started(tmp_path, mosquitto.port)
    try:
        ha = Client(mosquitto.port, subscribe="homeassistant/#")
        await until(lambda: config(ha, PUMP) and config(ha, DOOR), "the configs")
        ha.close()
        mosquitto.kill()
        for saved in mosquitto.workdir.glob("*.db"):
            saved.unlink()  # a broker without persistence: its retained messages are gone
        mosquitto.start()
        ha = Client(mosquitto.port, subscribe="homeassistant/#")
        try:
            await until(lambda: config(ha, PUMP) and config(ha, DOOR) and config(ha, HUB), "the configs again",
                        timeout=20)
        finally:
            ha.close()
    finally:
        await hub.stop()
